"""The Points, Shapes and preview Labels layers that hold one image's prompts and preview.

Each layer carries ``metadata["napari_segany"] = {"role": ..., "image": <image unique_id>}``,
so the widget knows its own layers by a stable identity (napari hands plugins a proxy of the
viewer, through which ``is`` and ``id()`` never match) and adopts them again when it reopens.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels, Layer, Points, Shapes
from napari.utils.colormaps import DirectLabelColormap
from napari.viewer import Viewer

from ..annotation.prediction import Prediction
from ..annotation.prompts import SliceKey, on_slice
from .layer_slice import spatial_shape

POSITIVE_COLOR = "#00e05a"  # green: include this
NEGATIVE_COLOR = "#ff2d6f"  # red-magenta: exclude this
BOX_COLOR = "#ffd400"
# The preview has one colour of its own; label layers the widget creates leave its hue out
# (see committed_colormap), so a preview never looks like a committed object.
PREVIEW_RGBA = (0.0, 0.9, 1.0, 1.0)
META = "napari_segany"
ROLES = ("points", "boxes", "preview")
# Layers made beside those three (a propagated volume, the tile grid); never a "Commit into"
# target.
OTHER_ROLES = ("propagation", "tiles")


def role_of(layer: Layer) -> tuple[str, object] | None:
    """(role, image unique_id) of a layer this plugin made, else None."""
    tag = layer.metadata.get(META) if isinstance(layer.metadata, dict) else None
    if isinstance(tag, dict) and tag.get("role") in ROLES + OTHER_ROLES:
        return tag["role"], tag.get("image")
    return None


class PromptLayers:
    """The prompt layers of one image layer, in its data coordinates."""

    def __init__(self, viewer: Viewer, image: Image, layers: dict[str, Layer]) -> None:
        self.viewer = viewer
        self.image_id = image.unique_id
        self.points: Points = layers["points"]
        self.boxes: Shapes = layers["boxes"]
        self.preview: Labels = layers["preview"]
        self._image_scale = np.asarray(image.scale[-2:], dtype=float)
        self._image_translate = np.asarray(image.translate[-2:], dtype=float)
        self.points.events.data.connect(self._recolor)
        self.points.events.features.connect(self._recolor)

    # ---- making and finding them ---------------------------------------------------------------

    @classmethod
    def create(cls, viewer: Viewer, image: Image) -> PromptLayers:
        """New prompt layers for ``image``, added above it."""
        nd = image.ndim
        shape = spatial_shape(image)
        scale, translate = np.asarray(image.scale), np.asarray(image.translate)
        point_size = max(4.0, 0.02 * max(shape[-2:])) * float(np.mean(scale[-2:]))

        def tag(role: str) -> dict:
            return {META: {"role": role, "image": image.unique_id}}

        points = viewer.add_points(
            np.empty((0, nd)), ndim=nd, name=f"{image.name} points", scale=scale,
            translate=translate, features={"positive": np.zeros(0, dtype=bool)},
            size=point_size, face_color=POSITIVE_COLOR, border_color="white",
            border_width=0.15, metadata=tag("points"),
        )  # fmt: skip
        points.feature_defaults = {"positive": True}
        boxes = viewer.add_shapes(
            ndim=nd, name=f"{image.name} boxes", scale=scale, translate=translate,
            edge_color=BOX_COLOR, face_color="transparent",
            edge_width=max(1.0, 0.004 * max(shape[-2:])), metadata=tag("boxes"),
        )  # fmt: skip
        boxes.current_edge_color = BOX_COLOR
        boxes.current_face_color = "transparent"
        # The preview holds only the window its masks cover, placed by its translate: a
        # click on a huge image costs the size of its object.
        preview = viewer.add_labels(
            np.zeros((1, 1), dtype=np.uint8), name=f"{image.name} preview",
            scale=scale[-2:], translate=translate[-2:], opacity=0.6, metadata=tag("preview"),
        )  # fmt: skip
        preview.colormap = DirectLabelColormap(
            color_dict={None: np.array(PREVIEW_RGBA), 0: np.zeros(4)}
        )
        preview.editable = False
        # The preview sits under the prompts, so points stay visible and clickable.
        viewer.layers.move(viewer.layers.index(preview), viewer.layers.index(points))
        return cls(viewer, image, {"points": points, "boxes": boxes, "preview": preview})

    @classmethod
    def adopt(cls, viewer: Viewer, image: Image) -> PromptLayers | None:
        """The prompt layers an earlier widget made for ``image``, if all are still there."""
        found: dict[str, Layer] = {}
        for layer in viewer.layers:
            tag = role_of(layer)
            if tag is not None and tag[1] == image.unique_id and tag[0] in ROLES:
                found.setdefault(tag[0], layer)
        if set(found) != set(ROLES) or found["points"].ndim != image.ndim:
            return None
        return cls(viewer, image, found)

    @property
    def layers(self) -> tuple[Points, Shapes, Labels]:
        return self.points, self.boxes, self.preview

    @property
    def layer_ids(self) -> set:
        return {layer.unique_id for layer in self.layers}

    def alive(self) -> bool:
        """Whether all three layers are still in the viewer (the user may delete them)."""
        present = {layer.unique_id for layer in self.viewer.layers}
        return self.layer_ids <= present

    def set_visible(self, visible: bool) -> None:
        for layer in self.layers:
            layer.visible = visible

    def remove(self) -> None:
        """Take the layers out of the viewer (their image is gone)."""
        for layer in self.layers:
            if layer.unique_id in {lay.unique_id for lay in self.viewer.layers}:
                self.viewer.layers.remove(layer)

    # ---- tools -------------------------------------------------------------------------------

    def activate(self, tool: str = "point") -> None:
        """Make the points (``point``) or boxes (``box``) layer active, in its adding mode, so
        the next click on the canvas adds a prompt."""
        layer = self.boxes if tool == "box" else self.points
        self.viewer.layers.selection.active = layer
        layer.mode = "add_rectangle" if tool == "box" else "add"

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

    def prompt_count(self, slice_key: SliceKey) -> int:
        """Points plus boxes on one slice."""
        n = int(on_slice(self.points.data, slice_key).sum()) if len(self.points.data) else 0
        return n + sum(1 for s in self.boxes.data if on_slice(s, slice_key).all())

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

    def show_preview(self, prediction: Prediction | None, rank: int = 0) -> None:
        """Show a prediction's shown candidates in its window; None empties the preview."""
        if prediction is None:
            if self.preview.data.any():
                self.preview.data = np.zeros((1, 1), dtype=np.uint8)
            return
        objects = prediction.objects(rank)
        dtype = np.uint8 if prediction.n_objects < 255 else np.int32
        r0, c0 = prediction.window[:2]
        self.preview.translate = self._image_translate + self._image_scale * (r0, c0)
        self.preview.data = objects.astype(dtype, copy=False)

    def preview_objects(self, prediction: Prediction | None, rank: int) -> np.ndarray | None:
        """The shown preview as (H, W) object indices over the whole image, or None."""
        if prediction is None:
            return None
        full = prediction.whole_objects(rank)
        return full if full.any() else None


def committed_colormap(n_colors: int = 64):
    """Distinct colours for committed objects that leave out the preview's cyan."""
    from napari.utils.colormaps import CyclicLabelColormap

    golden = 0.618033988749895
    colors = [[0.0, 0.0, 0.0, 0.0]]
    hue = 0.0
    while len(colors) < n_colors + 1:
        hue = (hue + golden) % 1.0
        if 0.42 < hue < 0.58:  # cyan and its neighbours belong to the preview
            continue
        colors.append([*_hsv(hue, 0.85, 1.0), 1.0])
    return CyclicLabelColormap(colors=np.array(colors), background_value=0)


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    import colorsys

    return colorsys.hsv_to_rgb(h, s, v)


def _rgba(color: str) -> np.ndarray:
    from napari.utils.colormaps.standardize_color import transform_color

    return transform_color(color)[0]
