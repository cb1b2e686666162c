"""What Propagate, Propagate all, Commit and Discard do for an object carried through a stack.

Propagate takes the preview of the displayed slice (the shown candidate) as the object's seed,
decodes the prompts of any other slice of the stack into further seeds (a slice with only
negative points marks where the object ends), and runs the core's propagation on the
controller's worker: the "propagation" labels layer fills in slice by slice while the user
scrolls. Nothing is written into the user's labels until Commit, which writes the whole object
as one undoable step.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Labels
from napari.utils.colormaps import DirectLabelColormap
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QObject

from ..annotation.labels import CommitMode
from ..annotation.prompts import points_on_slice, rectangles_on_slice
from ..annotation.stack_propagation import (
    PROPAGATING,
    PlanePrompts,
    StackSeeds,
    iter_propagate_stack,
)
from ..annotation.volume_labels import plan_volume_commit
from ..volumes.seeding import is_stop, prompted_planes, stack_key, stop_marks
from .labels_writer import ids_text, label_under_first_point
from .layer_slice import ImageSlice, spatial_shape
from .progress_view import DOWNLOADING
from .prompt_layers import META, PREVIEW_RGBA, role_of
from .propagation_panel import TIME_LAPSE, PropagationPanel

if TYPE_CHECKING:
    from .controller import AnnotationController

ROLE = "propagation"
TWO_D = (
    "Propagate carries an object through the slices of a 3-D image or the frames of a "
    "time-lapse, and this image is 2-D: commit the preview instead (Shift-C)."
)
# The propagation layer is redrawn at most this often while results come in: each redraw
# costs the GUI (and, with software OpenGL, the worker's cores) a full repaint.
REDRAW_INTERVAL_S = 0.3


@dataclass
class Propagated:
    """A propagation's result waiting for Commit: the object ids through one stack.

    slice_key / axis: the displayed slice and the leading axis the stack runs along;
    objects: (Z, H, W) view of the propagation layer along that stack; keep_ids: the objects
    are those of layer ``target_id`` (Propagate all), not new ones.
    """

    image_id: Any
    slice_key: tuple[int, ...]
    axis: int
    objects: np.ndarray
    ranges: dict[int, tuple[int, int]]
    prompted: tuple[int, ...]  # planes whose prompts were used (seeds and stop marks)
    keep_ids: bool
    target_id: Any = None


class Propagation(QObject):
    """The actions of the propagation panel, on the controller's layers, session and jobs."""

    def __init__(
        self, controller: AnnotationController, panel: PropagationPanel, parent: QObject
    ) -> None:
        super().__init__(parent)
        self.c = controller
        self.panel = panel
        self.result: Propagated | None = None
        self.running = False
        self._redrawn = 0.0
        controller.layers.image_changed.connect(self._show_current_image_only)
        controller.layers.image_removed.connect(self._image_removed)

    # ---- starting ------------------------------------------------------------------------------

    def propagate(self) -> None:
        """Carry the displayed slice's preview (and the seeds on other slices) through the stack."""
        c = self.c
        image_slice = self._stack_slice()
        if image_slice is None:
            return
        refusal = self._preview_refusal(image_slice)
        if refusal is not None:
            show_info(refusal)
            return
        prompts = c.layers.prompt_layers
        key = image_slice.slice_key
        axis = self._axis(key)
        prediction, rank = c.state.prediction, c.state.candidate_rank
        start = prompts.preview_objects(prediction, rank)
        planes = prompted_planes(prompts.points.data, prompts.boxes.data, key, axis)
        others: dict[int, PlanePrompts] = {}
        stops: list[int] = []
        for z in planes:
            if z == key[axis]:
                continue
            pts, labels = points_on_slice(
                prompts.points.data, prompts.positive_flags(), stack_key(key, axis, z)
            )
            boxes = rectangles_on_slice(prompts.boxes.data, stack_key(key, axis, z))
            if is_stop(labels, len(boxes)):
                stops.append(z)
            elif len(pts) or len(boxes):
                others[z] = PlanePrompts(pts, labels, boxes)
        n_objects = int(start.max())
        if n_objects > 1 and others:
            show_info(
                f"The preview holds {n_objects} objects, so each is carried from this slice "
                f"alone and the prompts on slice(s) {_planes_text(others)} are left out: "
                "seeds on other slices are for a single object."
            )
            others = {}
        marks = stop_marks([key[axis], *others], stops)
        if self.panel.mode == TIME_LAPSE:
            marks = replace(marks, lower=None)  # a track only goes forward
        if marks.ignored:
            show_info(
                f"Slice(s) {_planes_text(marks.ignored)} hold only negative points between "
                "seeded slices, which marks no end there: they are segmented like the others."
            )
        prompted = (key[axis], *others, *(z for z in (marks.lower, marks.upper) if z is not None))
        seeds = StackSeeds(key[axis], start, others, marks)
        self._start(image_slice, axis, seeds, tuple(sorted(prompted)))

    def propagate_all(self) -> None:
        """Carry every object of the "Commit into" layer found on the displayed slice."""
        c = self.c
        image_slice = self._stack_slice()
        if image_slice is None:
            return
        target = c.layers.target_labels(create=False)
        if target is None:
            show_warning(
                "'Propagate all' carries the objects of the 'Commit into' labels layer: pick "
                "a labels layer there that has objects on this slice."
            )
            return
        key = image_slice.slice_key
        axis = self._axis(key)
        plane = np.asarray(target.data[key])
        ids = np.unique(plane[plane > 0])
        if ids.size == 0:
            show_info(
                f"'{target.name}' has no objects on this slice: commit some here first, or "
                "go to a slice that has them."
            )
            return
        slab = np.asarray(target.data[_stack_index(key, axis)])
        carried = StackSeeds(key[axis], np.where(np.isin(slab, ids), slab, 0), carried=True)
        self._start(image_slice, axis, carried, (), target_id=target.unique_id)

    def _start(
        self,
        image_slice: ImageSlice,
        axis: int,
        seeds: StackSeeds,
        prompted: tuple[int, ...],
        target_id: Any = None,
    ) -> None:
        """Queue the job; ``target_id``: the labels layer whose objects are carried (Propagate
        all), whose ids Commit keeps."""
        c = self.c
        key = image_slice.slice_key
        image = c.layers.image
        index = _stack_index(key, axis)
        volume = (image.data[0] if image.multiscale else image.data)[index]
        n_planes = int(np.shape(volume)[0])
        keys = {z: c.key_of(replace(image_slice, slice_key=stack_key(key, axis, z))) for z in
                range(n_planes)}  # fmt: skip
        top = int(seeds.start.max())
        layer = self._layer(create=True, dtype=np.int32 if top < 2**31 else np.int64)
        layer.data[...] = 0
        layer.refresh()
        out = layer.data[index]
        self.result = None
        smoothing = self.panel.motion_smoothing if self.panel.mode == TIME_LAPSE else None
        session, relay, settings = c.session, c.relay, self.panel.settings()
        limits = image_slice.contrast_limits

        def work(should_stop) -> Generator[tuple[str, int, int], None, Any]:
            relay.progress.emit("Loading model", 0, 0)
            session.ensure_model(lambda d, t: relay.progress.emit(DOWNLOADING, d, t))
            return (
                yield from iter_propagate_stack(
                    session, volume, keys, seeds, out, settings, limits, smoothing
                )
            )

        def step(value: tuple[str, int, int]) -> None:
            relay.progress.emit(*value)
            if value[0] == PROPAGATING:
                self._redraw(layer)

        def done(result: tuple[np.ndarray, Any]) -> None:
            self._ended()
            if not self._alive(layer) or c.layers.image_id != image.unique_id:
                return
            layer.refresh()
            ranges = result[1]
            self.result = Propagated(
                image.unique_id, key, axis, out, ranges, prompted, target_id is not None,
                target_id,
            )  # fmt: skip
            text = _reached_text(ranges, out)
            self.panel.result_label.setText(text)
            c.state.set_status(
                f"{text}. Commit ({_commit_key()}) writes it into the labels layer as one "
                "step; Discard drops it."
            )

        def cancelled() -> None:
            self._ended()
            self._empty(layer)
            self.panel.result_label.setText("Propagation cancelled")
            c.state.set_status(
                "propagation cancelled: nothing was kept. The slices encoded so far stay "
                "encoded, so Propagate runs faster next time."
            )

        def failed(exc: Exception) -> None:
            self._ended()
            self._empty(layer)
            c.work_failed(exc)

        self.panel.result_label.setText("Propagating…")
        c.state.set_busy("propagating")
        c.state.set_status("propagating…")
        self.running = c.jobs.submit(
            "propagate", work, done, failed, replace_queued=False, on_yield=step,
            on_cancel=cancelled,
        ) is not None  # fmt: skip

    # ---- committing ----------------------------------------------------------------------------

    def commit(self, mode: CommitMode) -> bool:
        """Write the propagated result of the current image, if there is one, as one step.

        Returns whether there was one to commit (else the 2-D preview is the commit's)."""
        c, result = self.c, self.result
        if result is None or result.image_id != c.layers.image_id or self.running:
            return False
        layer = self._layer(create=False)
        if layer is None:
            self.result = None
            return False
        target = self._commit_target(result)
        if target is None:
            return True
        index = _stack_index(result.slice_key, result.axis)
        objects = result.objects
        filled = np.flatnonzero(objects.reshape(len(objects), -1).any(axis=1))
        if filled.size == 0:
            show_info("The propagated object is empty: nothing to commit.")
            return True
        z0, z1 = int(filled[0]), int(filled[-1]) + 1
        if mode == CommitMode.REPLACE:  # the redrawn objects' old voxels go on every plane
            z0, z1 = 0, len(objects)
        slab = np.asarray(target.data[index])
        replaced = 0
        prompts = c.layers.prompt_layers
        if mode == CommitMode.REPLACE and not result.keep_ids and prompts is not None:
            points, labels = points_on_slice(
                prompts.points.data, prompts.positive_flags(), result.slice_key
            )
            replaced = label_under_first_point(target, result.slice_key, points, labels)
        try:
            plan = plan_volume_commit(
                slab[z0:z1], objects[z0:z1], mode, replaced, result.keep_ids,
                all_labels=target.data, name=f"'{target.name}'",
            )  # fmt: skip
        except ValueError as exc:
            show_error(str(exc))
            return True
        planes, rows, cols = plan.indices
        if rows.size == 0:
            show_warning(
                "The propagated object lies entirely on existing labels, so nothing was "
                "written. Choose 'Overwrite existing labels' as the commit mode to paint over "
                "them."
            )
            return True
        indices = tuple(
            planes + z0 if i == result.axis else np.full(rows.shape, k)
            for i, k in enumerate(result.slice_key)
        ) + (rows, cols)
        with target.block_history():  # one step in the layer's undo history
            target.data_setitem(indices, plan.values)
        c.record_commit(target, plan.ids, result.slice_key, "propagation")
        if prompts is not None:
            for z in result.prompted:
                prompts.clear_slice(stack_key(result.slice_key, result.axis, z))
        c.state.clear_prediction()
        self.discard()
        first, last = int(filled[0]), int(filled[-1])
        how = "extended" if result.keep_ids else "committed"
        c.state.set_status(
            f"{how.capitalize()} {len(plan.ids)} object(s) in '{target.name}' "
            f"({ids_text(plan.ids)}) through slices {first}–{last}. 'Undo commit' takes it back."
        )
        c.return_to_prompts()
        return True

    def _commit_target(self, result: Propagated) -> Labels | None:
        c = self.c
        if not result.keep_ids:
            return c.layers.target_labels(create=True)
        for layer in c.layers.fitting_labels():
            if layer.unique_id == result.target_id:
                return layer
        show_warning("The labels layer the objects came from was removed; nothing was written.")
        return None

    def discard(self) -> None:
        """Drop the propagated result (the user's labels stay as they are)."""
        if self.running:
            return
        self.result = None
        layer = self._layer(create=False)
        if layer is not None:
            self._empty(layer)
        self.panel.result_label.setText("Nothing propagated yet")

    # ---- checks ---------------------------------------------------------------------------------

    def _stack_slice(self) -> ImageSlice | None:
        """The displayed slice, if a propagation can start from it (else the user is told)."""
        c = self.c
        if self.running:
            show_info("A propagation is running: wait for it, or press Cancel.")
            return None
        image_slice = c.current_slice()
        if image_slice is None:
            return None
        if not image_slice.slice_key:
            show_info(TWO_D)
            return None
        if c.session.model_name is None:
            show_info("No model chosen: pick one in the model list.")
            return None
        return image_slice

    def _preview_refusal(self, image_slice: ImageSlice) -> str | None:
        c = self.c
        state = c.state
        if c.layers.prompt_layers is None or state.prediction is None:
            return (
                "Nothing to propagate: click on the object in this slice first; Propagate "
                "carries its preview through the stack."
            )
        if state.prediction_slice != image_slice.slice_key:
            return "The preview is of another slice: wait for this slice's preview to appear."
        if len(state.prediction.empty(state.candidate_rank)) == state.prediction.n_objects:
            return "Nothing to propagate: SAM's mask is empty here. Move the prompts."
        return None

    def _axis(self, slice_key: tuple[int, ...]) -> int:
        """The leading axis propagated along: z (the slider above the plane) for a volume,
        t (the first slider) for a time-lapse."""
        return 0 if self.panel.mode == TIME_LAPSE else len(slice_key) - 1

    # ---- the propagation layer -------------------------------------------------------------------

    def _layer(self, create: bool, dtype: Any = np.int32) -> Labels | None:
        """The current image's propagation layer (made, the image's shape, when ``create``)."""
        c = self.c
        image = c.layers.image
        if image is None:
            return None
        for layer in c.viewer.layers:
            if isinstance(layer, Labels) and role_of(layer) == (ROLE, image.unique_id):
                if create and layer.data.dtype != np.dtype(dtype):
                    layer.data = np.zeros(layer.data.shape, dtype=dtype)
                return layer
        if not create:
            return None
        layer = c.viewer.add_labels(
            np.zeros(spatial_shape(image), dtype=dtype), name=f"{image.name} propagation",
            scale=image.scale, translate=image.translate, opacity=0.5,
            metadata={META: {"role": ROLE, "image": image.unique_id}},
        )  # fmt: skip
        layer.colormap = DirectLabelColormap(
            color_dict={None: np.array(PREVIEW_RGBA), 0: np.zeros(4)}
        )
        layer.editable = False
        prompts = c.layers.prompt_layers
        if prompts is not None:  # under the prompts, so points stay visible and clickable
            below = min(c.viewer.layers.index(lay) for lay in prompts.layers)
            c.viewer.layers.move(c.viewer.layers.index(layer), below)
        c.return_to_prompts()
        return layer

    def _alive(self, layer: Labels) -> bool:
        return layer.unique_id in {lay.unique_id for lay in self.c.viewer.layers}

    def _redraw(self, layer: Labels) -> None:
        now = time.monotonic()
        if now - self._redrawn >= REDRAW_INTERVAL_S and self._alive(layer):
            self._redrawn = now
            layer.refresh()

    def _empty(self, layer: Labels) -> None:
        if self._alive(layer) and layer.data.any():
            layer.data[...] = 0
            layer.refresh()

    def _ended(self) -> None:
        self.running = False
        self.c.end_work()

    def _show_current_image_only(self) -> None:
        image = self.c.layers.image
        # Only an image with slices has anything to propagate through.
        self.panel.setVisible(image is not None and len(spatial_shape(image)) > 2)
        current = self.c.layers.image_id
        for layer in self.c.viewer.layers:
            tag = role_of(layer)
            if tag is not None and tag[0] == ROLE:
                layer.visible = tag[1] == current

    def _image_removed(self, uid: Any) -> None:
        if self.result is not None and self.result.image_id == uid:
            self.result = None
        for layer in list(self.c.viewer.layers):
            if role_of(layer) == (ROLE, uid):
                self.c.viewer.layers.remove(layer)


def _stack_index(slice_key: tuple[int, ...], axis: int) -> tuple:
    """Index of the stack through ``slice_key`` along ``axis`` in the image's data."""
    return tuple(slice(None) if i == axis else k for i, k in enumerate(slice_key))


def _planes_text(planes) -> str:
    return ", ".join(str(int(z)) for z in sorted(planes))


def _reached_text(ranges: dict[int, tuple[int, int]], objects: np.ndarray) -> str:
    filled = np.flatnonzero(objects.reshape(len(objects), -1).any(axis=1))
    if filled.size == 0:
        return "Propagated, but the object came out empty"
    span = f"slices {int(filled[0])}–{int(filled[-1])} ({filled.size} slice(s) with the object)"
    if len(ranges) == 1:
        return f"Propagated through {span}"
    return f"Propagated {len(ranges)} objects through {span}"


def _commit_key() -> str:
    from .keys import KEYS

    return KEYS["commit"][0]
