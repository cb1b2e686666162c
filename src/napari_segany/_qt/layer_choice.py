"""Which napari layers the widget works on: the image being annotated, its prompt layers, and
the Labels layer its objects go into, remembered per image.

Layers are known by ``unique_id`` and by the tags the widget puts in their metadata, never by
``is`` or ``id()``: a plugin sees napari's proxies of the layers, which compare unequal to the
layers themselves. Prompt layers are made when an image is first annotated (a click on it, or
the Point or Box tool), hidden while another image is annotated, and adopted again when the
widget reopens.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.layers import Image, Labels, Layer
from napari.utils.events import Event
from napari.utils.notifications import show_warning
from napari.viewer import Viewer
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QComboBox

from .connections import disconnect_all
from .layer_slice import spatial_shape
from .messages import unsupported_reason
from .prompt_layers import PromptLayers, committed_colormap, role_of

NEW_LABELS_ITEM = "New labels layer"
# Above this many pixels a new labels layer is uint16 rather than int32: 800 MB instead of
# 1.6 GB for a 20000 x 20000 image.
_WIDE_LABELS_PIXELS = 1 << 26
# A press and release this close together on the canvas (screen pixels) is a click.
_CLICK_SLACK_PX = 4.0


class LayerChoice(QObject):
    """Owns the chosen image layer, the prompt layers of each image and the two layer pickers.

    The image follows the "Image" picker and the viewer's active image layer, and moves on to
    the newest image when the chosen one is removed (its prompt layers go with it).
    """

    image_changed = Signal()
    """Another image layer (or none) is now the one being annotated."""
    image_data_changed = Signal()
    """The chosen image's pixels were replaced."""
    contrast_changed = Signal()
    """The chosen image's contrast limits moved."""
    prompt_layers_added = Signal(object)
    """New PromptLayers for the chosen image; the point mode and edits are the widget's."""
    image_clicked = Signal(object)
    """A click (no drag) on the chosen image layer itself, at this data position."""
    layers_changed = Signal()
    """Layers came or went, after the choice moved on and the pickers were refilled."""
    image_removed = Signal(object)
    """An image layer (this unique_id) left the viewer: whatever was kept for it can go."""

    def __init__(
        self, viewer: Viewer, image_combo: QComboBox, labels_combo: QComboBox,
        parent: QObject | None = None,
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.viewer = viewer
        self.image_combo = image_combo
        self.labels_combo = labels_combo
        self._prompt_layers: dict[Any, PromptLayers] = {}
        self._targets: dict[Any, Any] = {}  # image unique_id -> labels unique_id (None: new)
        self._image: Image | None = None
        image_combo.currentIndexChanged.connect(self._on_image_chosen)
        labels_combo.activated.connect(self._on_target_chosen)
        viewer.layers.events.inserted.connect(self._on_layers_changed)
        viewer.layers.events.removed.connect(self._on_layer_removed)
        viewer.layers.selection.events.active.connect(self.follow_active_layer)

    # ---- what is chosen ------------------------------------------------------------------------

    @property
    def image(self) -> Image | None:
        """The image layer being annotated, or None when the viewer has none."""
        return self._image

    @property
    def image_id(self) -> Any:
        return None if self._image is None else self._image.unique_id

    @property
    def prompt_layers(self) -> PromptLayers | None:
        """The current image's prompt layers, once it has been annotated."""
        layers = self._prompt_layers.get(self.image_id)
        return layers if layers is not None and layers.alive() else None

    def own_layer_ids(self) -> set:
        return {uid for pl in self._prompt_layers.values() for uid in pl.layer_ids}

    def image_layers(self) -> list[Image]:
        """The viewer's Image layers, bottom to top."""
        return [layer for layer in self.viewer.layers if isinstance(layer, Image)]

    def ensure_prompt_layers(self) -> PromptLayers | None:
        """The current image's prompt layers, made (or adopted) now if it has none."""
        if self._image is None:
            return None
        existing = self.prompt_layers
        if existing is not None:
            return existing
        problem = unsupported_reason(self._image)
        if problem:
            show_warning(problem)
            return None
        prompts = PromptLayers.adopt(self.viewer, self._image) or PromptLayers.create(
            self.viewer, self._image
        )
        self._prompt_layers[self.image_id] = prompts
        self.prompt_layers_added.emit(prompts)
        self.refresh_choices()
        return prompts

    # ---- the labels layer objects go into ------------------------------------------------------

    def fitting_labels(self) -> list[Labels]:
        """Labels layers an object of the current image can go into: the image's shape, not
        one of the widget's own previews."""
        if self._image is None:
            return []
        shape = spatial_shape(self._image)
        return [
            layer for layer in self.viewer.layers
            if isinstance(layer, Labels) and role_of(layer) is None
            and tuple(layer.data.shape) == shape
        ]  # fmt: skip

    def target_labels(self, create: bool) -> Labels | None:
        """The Labels layer the current image's objects go into.

        With "New labels layer" picked, ``create`` adds an empty one the size of the image
        below its prompt layers and picks it; without ``create`` the answer is None.
        """
        uid = self.labels_combo.currentData()
        for layer in self.fitting_labels():
            if layer.unique_id == uid:
                return layer
        if not create or self._image is None:
            return None
        image = self._image
        shape = spatial_shape(image)
        dtype = np.uint16 if np.prod(shape[-2:]) > _WIDE_LABELS_PIXELS else np.int32
        layer = self.viewer.add_labels(
            np.zeros(shape, dtype=dtype), name=f"{image.name} labels",
            scale=image.scale, translate=image.translate,
        )  # fmt: skip
        layer.colormap = committed_colormap()
        prompts = self.prompt_layers
        if prompts is not None:  # below the prompt layers, where it does not hide them
            index = min(self.viewer.layers.index(lay) for lay in prompts.layers)
            self.viewer.layers.move(self.viewer.layers.index(layer), index)
        self._targets[image.unique_id] = layer.unique_id
        self.refresh_choices()
        return layer

    # ---- pickers and the viewer's events -------------------------------------------------------

    def refresh_choices(self) -> None:
        """Refill both pickers from the viewer's layers; choose an image if none is chosen yet."""
        images = self.image_layers()
        ids = [layer.unique_id for layer in images]
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        for layer in images:
            self.image_combo.addItem(layer.name, layer.unique_id)
        if self.image_id in ids:
            self.image_combo.setCurrentIndex(ids.index(self.image_id))
        self.image_combo.blockSignals(False)
        if self._image is None and images:
            self._set_image(images[-1])
            return  # _set_image refilled the labels picker
        self._fill_labels()

    def _fill_labels(self) -> None:
        fitting = self.fitting_labels()
        wanted = self._targets.get(self.image_id)
        if wanted is None and self._image is not None:
            # A labels layer named after the image is where its objects go by default.
            default = [lay for lay in fitting if lay.name == f"{self._image.name} labels"]
            wanted = default[0].unique_id if default else None
        self.labels_combo.blockSignals(True)
        self.labels_combo.clear()
        self.labels_combo.addItem(NEW_LABELS_ITEM, None)
        for layer in fitting:
            self.labels_combo.addItem(layer.name, layer.unique_id)
        index = self.labels_combo.findData(wanted) if wanted is not None else 0
        self.labels_combo.setCurrentIndex(max(0, index))
        self.labels_combo.blockSignals(False)

    def follow_active_layer(self, event: Event | None = None) -> None:
        """Annotate the viewer's active layer when it is an image."""
        active = self.viewer.layers.selection.active
        if isinstance(active, Image) and active.unique_id != self.image_id:
            self._set_image(active)

    def disconnect_viewer(self) -> None:
        """Stop following the viewer's layers (the layers themselves stay as they are)."""
        self._detach_image()
        disconnect_all(
            [
                (self.viewer.layers.events.inserted, self._on_layers_changed),
                (self.viewer.layers.events.removed, self._on_layer_removed),
                (self.viewer.layers.selection.events.active, self.follow_active_layer),
            ]
        )

    def _on_layers_changed(self, event: Event | None = None) -> None:
        self.refresh_choices()
        self.layers_changed.emit()

    def _on_layer_removed(self, event: Event) -> None:
        removed = event.value
        uid = removed.unique_id
        if isinstance(removed, Image):
            self.image_removed.emit(uid)
        if uid == self.image_id:
            prompts = self._prompt_layers.pop(uid, None)
            self._detach_image()
            self._image = None
            if prompts is not None:
                prompts.remove()
            images = self.image_layers()
            if images:
                self._set_image(images[-1])
            else:
                self._fill_labels()
                self.image_changed.emit()
        elif isinstance(removed, Image) and uid in self._prompt_layers:
            self._prompt_layers.pop(uid).remove()
        self.refresh_choices()
        self.layers_changed.emit()

    def _on_image_chosen(self, index: int) -> None:
        uid = self.image_combo.itemData(index)
        for layer in self.image_layers():
            if layer.unique_id == uid and uid != self.image_id:
                self._set_image(layer)

    def _on_target_chosen(self, index: int) -> None:
        if self._image is not None:
            self._targets[self.image_id] = self.labels_combo.itemData(index)

    def _on_image_data_changed(self, event: Event | None = None) -> None:
        self.image_data_changed.emit()

    def _on_contrast_changed(self, event: Event | None = None) -> None:
        self.contrast_changed.emit()

    # ---- choosing an image ------------------------------------------------------------------

    def _set_image(self, layer: Image) -> None:
        """Make ``layer`` the image being annotated; only its prompt layers are shown."""
        self._detach_image()
        self._image = layer
        layer.events.data.connect(self._on_image_data_changed)
        layer.events.contrast_limits.connect(self._on_contrast_changed)
        layer.mouse_drag_callbacks.append(self._on_image_click)
        for uid, prompts in self._prompt_layers.items():
            if prompts.alive():
                prompts.set_visible(uid == layer.unique_id)
        idx = self.image_combo.findData(layer.unique_id)
        if idx >= 0 and idx != self.image_combo.currentIndex():
            self.image_combo.blockSignals(True)
            self.image_combo.setCurrentIndex(idx)
            self.image_combo.blockSignals(False)
        if self.image_id not in self._prompt_layers:
            adopted = PromptLayers.adopt(self.viewer, layer)
            if adopted is not None:  # made by an earlier widget on this viewer
                self._prompt_layers[self.image_id] = adopted
                self.prompt_layers_added.emit(adopted)
        self._fill_labels()
        self.image_changed.emit()

    def _detach_image(self) -> None:
        if self._image is not None:
            disconnect_all(
                [
                    (self._image.events.data, self._on_image_data_changed),
                    (self._image.events.contrast_limits, self._on_contrast_changed),
                ]
            )
            callbacks = self._image.mouse_drag_callbacks
            if self._on_image_click in callbacks:
                callbacks.remove(self._on_image_click)

    def _on_image_click(self, layer: Layer, event: Any):
        """A press and release without a drag on the image itself: a prompt, not a pan."""
        if event.type != "mouse_press" or getattr(event, "button", 1) != 1:
            return
        position = np.asarray(layer.world_to_data(event.position), dtype=float)
        pressed_at = np.asarray(getattr(event, "pos", (0, 0)), dtype=float)
        yield
        while event.type == "mouse_move":
            moved = np.asarray(getattr(event, "pos", pressed_at), dtype=float) - pressed_at
            if np.hypot(*moved[:2]) > _CLICK_SLACK_PX:
                return  # a drag pans the view
            yield
        self.image_clicked.emit(position)
