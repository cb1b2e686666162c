"""The Points, Shapes and preview Labels layers that hold one image's prompts and preview."""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels, Points, Shapes
from napari.viewer import Viewer

from ..annotation.prompts import SliceKey, on_slice
from .layer_slice import spatial_shape

POSITIVE_COLOR = "#00e05a"  # green: include this
NEGATIVE_COLOR = "#ff2d6f"  # red-magenta: exclude this
BOX_COLOR = "#ffd400"


class PromptLayers:
    """Creates and owns the prompt layers of one image layer, in its data coordinates."""

    def __init__(self, viewer: Viewer, image: Image) -> None:
        self.viewer = viewer
        self.image = image
        nd = image.ndim
        shape = spatial_shape(image)
        scale, translate = np.asarray(image.scale), np.asarray(image.translate)
        point_size = max(4.0, 0.02 * max(shape[-2:])) * float(np.mean(scale[-2:]))
        self.points: Points = viewer.add_points(
            np.empty((0, nd)),
            ndim=nd,
            name=f"{image.name} points",
            scale=scale,
            translate=translate,
            features={"positive": np.zeros(0, dtype=bool)},
            size=point_size,
            face_color=POSITIVE_COLOR,
            border_color="white",
            border_width=0.15,
        )
        self.points.feature_defaults = {"positive": True}
        self.boxes: Shapes = viewer.add_shapes(
            ndim=nd,
            name=f"{image.name} boxes",
            scale=scale,
            translate=translate,
            edge_color=BOX_COLOR,
            face_color="transparent",
            edge_width=max(1.0, 0.004 * max(shape[-2:])),
        )
        self.boxes.current_edge_color = BOX_COLOR
        self.boxes.current_face_color = "transparent"
        self.preview: Labels = viewer.add_labels(
            np.zeros(shape[-2:], dtype=np.int32),
            name=f"{image.name} preview",
            scale=scale[-2:],
            translate=translate[-2:],
            opacity=0.55,
        )
        self.preview.editable = False
        self.points.events.data.connect(self._recolor)
        self.points.events.features.connect(self._recolor)

    @property
    def layers(self) -> tuple[Points, Shapes, Labels]:
        return self.points, self.boxes, self.preview

    def alive(self) -> bool:
        """Whether all three layers are still in the viewer (the user may delete them)."""
        return all(layer in self.viewer.layers for layer in self.layers)

    # ---- point mode -------------------------------------------------------------------------

    def set_positive_mode(self, positive: bool) -> None:
        """New points are positive (include) or negative (exclude)."""
        self.points.feature_defaults = {"positive": bool(positive)}
        # Without the block, napari would also recolour the selected points.
        with self.points.block_update_properties():
            self.points.current_face_color = POSITIVE_COLOR if positive else NEGATIVE_COLOR

    def positive_flags(self) -> np.ndarray:
        """(N,) bool, one per point: True for positive."""
        if len(self.points.data) == 0:
            return np.zeros(0, dtype=bool)
        return np.asarray(self.points.features["positive"], dtype=bool)

    def _recolor(self, event=None) -> None:
        action = getattr(event, "action", None)
        if action is not None and str(action).lower().endswith("ing"):
            return  # wait for the end of the change
        n = len(self.points.data)
        if n == 0:
            return
        flags = self.positive_flags()
        colors = np.where(flags[:, None], _rgba(POSITIVE_COLOR), _rgba(NEGATIVE_COLOR))
        if not np.array_equal(np.asarray(self.points.face_color), colors):
            self.points.face_color = colors

    # ---- slice edits ------------------------------------------------------------------------

    def clear_slice(self, slice_key: SliceKey) -> None:
        """Remove the points and boxes of one slice; the preview is emptied too."""
        if len(self.points.data):
            doomed = np.nonzero(on_slice(self.points.data, slice_key))[0]
            if doomed.size:
                self.points.selected_data = set(int(i) for i in doomed)
                self.points.remove_selected()
        doomed_shapes = [i for i, s in enumerate(self.boxes.data) if on_slice(s, slice_key).all()]
        if doomed_shapes:
            self.boxes.selected_data = set(doomed_shapes)
            self.boxes.remove_selected()
        self.show_preview(None)

    def show_preview(self, objects: np.ndarray | None) -> None:
        """Show (H, W) object indices (0 = none) in the preview layer; None empties it."""
        if objects is None:
            if self.preview.data.any():
                self.preview.data = np.zeros_like(self.preview.data)
            return
        self.preview.data = objects.astype(np.int32, copy=False)


def _rgba(color: str) -> np.ndarray:
    from napari.utils.colormaps.standardize_color import transform_color

    return transform_color(color)[0]
