"""Which napari layers the widget works on: the image being annotated, its prompt layers, and
the Labels layer that committed objects go into. It follows the viewer's layer list and tells
the widget through Qt signals what changed."""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.layers import Image, Labels
from napari.utils.events import Event
from napari.utils.notifications import show_warning
from napari.viewer import Viewer
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QComboBox

from .connections import disconnect_all
from .layer_slice import spatial_shape
from .messages import unsupported_reason
from .prompt_layers import PromptLayers

NEW_LABELS_ITEM = "New labels layer"


class LayerChoice(QObject):
    """Owns the chosen image layer, the prompt layers of each image, and the two layer pickers.

    The image follows the "Image" picker and the viewer's active image layer, and moves on to
    the newest image when the chosen one is removed. A chosen image without live prompt layers
    gets new ones; one that SAM cannot work on gets a warning instead.
    """

    image_changed = Signal()
    """Another image layer is now the one being annotated."""
    image_data_changed = Signal()
    """The chosen image's pixels were replaced."""
    contrast_changed = Signal()
    """The chosen image's contrast limits moved."""
    prompt_layers_added = Signal(object)
    """New PromptLayers for the chosen image; the point mode and edits are the widget's."""
    layer_removed = Signal(object)
    """A layer left the viewer, after the choice moved on and the pickers were refilled."""

    def __init__(
        self,
        viewer: Viewer,
        image_combo: QComboBox,
        labels_combo: QComboBox,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.image_combo = image_combo
        self.labels_combo = labels_combo
        self._prompt_layers: dict[Any, PromptLayers] = {}
        self._image: Image | None = None
        image_combo.currentIndexChanged.connect(self._on_image_chosen)
        viewer.layers.events.inserted.connect(self.refresh_choices)
        viewer.layers.events.removed.connect(self._on_layer_removed)
        viewer.layers.selection.events.active.connect(self.follow_active_layer)

    @property
    def image(self) -> Image | None:
        """The image layer being annotated, or None when the viewer has none."""
        return self._image

    @property
    def prompt_layers(self) -> PromptLayers | None:
        """The prompt layers of the current image (created when the image is chosen)."""
        if self._image is None:
            return None
        layers = self._prompt_layers.get(self._image.unique_id)
        return layers if layers is not None and layers.alive() else None

    def image_layers(self) -> list[Image]:
        """The viewer's Image layers, bottom to top."""
        return [layer for layer in self.viewer.layers if isinstance(layer, Image)]

    def refresh_choices(self, event: Event | None = None) -> None:
        """Refill both pickers from the viewer's layers; choose an image if none is chosen yet."""
        images = self.image_layers()
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        for layer in images:
            self.image_combo.addItem(layer.name, layer.unique_id)
        if self._image is not None and self._image in images:
            self.image_combo.setCurrentIndex(images.index(self._image))
        self.image_combo.blockSignals(False)
        if self._image is None and images:
            self._set_image(images[-1])

        # The prompt layers' own Labels (the previews) are no place to commit into.
        own = {id(lay) for pl in self._prompt_layers.values() for lay in pl.layers}
        current = self.labels_combo.currentData()
        self.labels_combo.clear()
        self.labels_combo.addItem(NEW_LABELS_ITEM, None)
        for layer in self.viewer.layers:
            if isinstance(layer, Labels) and id(layer) not in own:
                self.labels_combo.addItem(layer.name, layer.unique_id)
        if current is not None and self.labels_combo.findData(current) >= 0:
            self.labels_combo.setCurrentIndex(self.labels_combo.findData(current))

    def follow_active_layer(self, event: Event | None = None) -> None:
        """Annotate the viewer's active layer when it is an image."""
        active = self.viewer.layers.selection.active
        if isinstance(active, Image) and active is not self._image:
            self._set_image(active)

    def target_labels(self, create: bool) -> Labels | None:
        """The Labels layer picked under "Commit into".

        With "New labels layer" picked, ``create`` adds an empty one the size of the image
        and picks it; without ``create`` the answer is None.
        """
        uid = self.labels_combo.currentData()
        for layer in self.viewer.layers:
            if isinstance(layer, Labels) and layer.unique_id == uid:
                return layer
        if not create or self._image is None:
            return None
        shape = spatial_shape(self._image)
        layer = self.viewer.add_labels(
            np.zeros(shape, dtype=np.int32),
            name=f"{self._image.name} labels",
            scale=self._image.scale,
            translate=self._image.translate,
        )
        self.refresh_choices()
        self.labels_combo.setCurrentIndex(self.labels_combo.findData(layer.unique_id))
        # Adding the layer made it active; the user goes on clicking points.
        if self.prompt_layers is not None:
            self.viewer.layers.selection.active = self.prompt_layers.points
        return layer

    def disconnect_viewer(self) -> None:
        """Stop following the viewer's layers (the layers themselves stay as they are)."""
        self._detach_image()
        disconnect_all(
            [
                (self.viewer.layers.events.inserted, self.refresh_choices),
                (self.viewer.layers.events.removed, self._on_layer_removed),
                (self.viewer.layers.selection.events.active, self.follow_active_layer),
            ]
        )

    # ---- viewer and picker events -----------------------------------------------------------

    def _on_layer_removed(self, event: Event) -> None:
        removed = event.value
        if removed is self._image:
            self._detach_image()
            self._image = None
            images = self.image_layers()
            if images:
                self._set_image(images[-1])
        self.refresh_choices()
        self.layer_removed.emit(removed)

    def _on_image_chosen(self, index: int) -> None:
        uid = self.image_combo.itemData(index)
        for layer in self.image_layers():
            if layer.unique_id == uid and layer is not self._image:
                self._set_image(layer)

    def _on_image_data_changed(self, event: Event | None = None) -> None:
        self.image_data_changed.emit()

    def _on_contrast_changed(self, event: Event | None = None) -> None:
        self.contrast_changed.emit()

    # ---- choosing an image ------------------------------------------------------------------

    def _set_image(self, layer: Image) -> None:
        """Make ``layer`` the image being annotated and give it prompt layers."""
        self._detach_image()
        self._image = layer
        layer.events.data.connect(self._on_image_data_changed)
        layer.events.contrast_limits.connect(self._on_contrast_changed)
        idx = self.image_combo.findData(layer.unique_id)
        if idx >= 0 and idx != self.image_combo.currentIndex():
            self.image_combo.blockSignals(True)
            self.image_combo.setCurrentIndex(idx)
            self.image_combo.blockSignals(False)
        if self.prompt_layers is None:
            self._create_prompt_layers(layer)
        self.image_changed.emit()

    def _create_prompt_layers(self, layer: Image) -> None:
        problem = unsupported_reason(layer)
        if problem:
            show_warning(problem)
            return
        prompts = PromptLayers(self.viewer, layer)
        self.prompt_layers_added.emit(prompts)
        self._prompt_layers[layer.unique_id] = prompts
        # Leave the user in "add points" mode on the new points layer: click to segment.
        self.viewer.layers.selection.active = prompts.points
        prompts.points.mode = "add"

    def _detach_image(self) -> None:
        if self._image is not None:
            disconnect_all(
                [
                    (self._image.events.data, self._on_image_data_changed),
                    (self._image.events.contrast_limits, self._on_contrast_changed),
                ]
            )
