"""Automatic segmentation from the widget: the jobs that segment everything, or segment
instances with the model's decoder (AIS, APG), on the displayed slice, and where their objects
go."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning

from ..errors import Cancelled
from .everything_result import add_everything_result
from .layer_slice import ImageSlice
from .progress_view import DOWNLOADING

if TYPE_CHECKING:
    from .controller import AnnotationController
    from .everything_panel import EverythingPanel

# mode -> (progress stage, what the status line says, the new layer's name after the image's)
_WORDS = {
    "amg": ("Segmenting everything", "Segment everything", "everything"),
    "ais": ("Segmenting instances", "Instances (AIS)", "instances"),
    "apg": ("Segmenting instances from prompts", "Instances (APG)", "instances"),
}


def start_automatic(c: AnnotationController, panel: EverythingPanel) -> None:
    """Run the method chosen in ``panel`` on the displayed slice."""
    mode, only = panel.mode(), panel.only_unlabeled_check.isChecked()
    if mode == "amg":
        start_segment_everything(c, panel.params("amg"), only)
    else:
        start_segment_instances(c, mode, panel.params(mode), only)


def start_segment_everything(
    c: AnnotationController, params: dict[str, Any], only_unlabeled: bool
) -> None:
    """Queue segment-everything on the displayed slice: progress, Cancel, and the result in a
    new labels layer, or only in the unlabeled pixels of the "Commit into" layer."""
    session, relay = c.session, c.relay

    def segment(key, image_slice: ImageSlice, should_stop):
        relay.progress.emit(_WORDS["amg"][0], 0, 0)
        records = yield from session.iter_segment_everything(
            key, image_slice.data, image_slice.contrast_limits, params,
            encode_progress=_encoder_progress(relay, should_stop),
        )  # fmt: skip
        from ..automatic import masks_to_labels

        return masks_to_labels(records, image_slice.shape), len(records)

    _start(c, "amg", segment, only_unlabeled)


def start_segment_instances(
    c: AnnotationController, mode: str, params: dict[str, Any], only_unlabeled: bool
) -> None:
    """Queue instance segmentation (``ais`` or ``apg``) with the model's decoder on the
    displayed slice, reusing the slice's embedding when clicks already encoded it."""
    session, relay = c.session, c.relay

    def segment(key, image_slice: ImageSlice, should_stop):
        relay.progress.emit(_WORDS[mode][0], 0, 0)
        labels = yield from session.iter_segment_instances(
            key, image_slice.data, image_slice.contrast_limits, mode, params,
            notify=relay.notice.emit, encode_progress=_encoder_progress(relay, should_stop),
        )  # fmt: skip
        return labels, int(len(np.unique(labels[labels > 0])))

    _start(c, mode, segment, only_unlabeled)


def _encoder_progress(relay, should_stop) -> Callable[[int, int], None]:
    """Encoder block progress for the status bar, which also stops the encoder between two
    blocks once Cancel is pressed (a slice or tile takes seconds to encode on a CPU)."""

    def report(done: int, total: int) -> None:
        if should_stop():
            raise Cancelled
        relay.progress.emit("Encoding slice", done, total)

    return report


def _start(c: AnnotationController, mode: str, segment, only_unlabeled: bool) -> None:
    """The shared part: checks, the job with progress and Cancel, and writing the result."""
    stage, title, suffix = _WORDS[mode]
    image_slice = c.current_slice()
    if image_slice is None or c.session.model_name is None:
        return
    if only_unlabeled and c.layers.target_labels(False) is None:
        show_warning(
            "'Only unlabeled regions' adds to an existing labels layer: pick one under "
            "'Commit into' first."
        )
        return
    key = c.key_of(image_slice)
    session, relay, image_id = c.session, c.relay, c.layers.image_id
    started = time.perf_counter()

    def work(should_stop):
        relay.progress.emit("Loading model", 0, 0)
        session.ensure_model(lambda d, t: relay.progress.emit(DOWNLOADING, d, t))
        return (yield from segment(key, image_slice, should_stop))

    def step(value) -> None:
        relay.progress.emit(stage, *value)

    def done(result) -> None:
        c.end_work()
        objects, count = result
        if c.layers.image_id != image_id:
            return
        into = c.layers.target_labels(False) if only_unlabeled else None
        if only_unlabeled and into is None:
            show_warning("The labels layer to add to was removed; nothing was written.")
            return
        try:
            layer, ids = add_everything_result(
                c.viewer, c.layers.image, image_slice.slice_key, objects, into, suffix
            )
        except ValueError as exc:
            show_error(str(exc))
            return
        c.state.added_automatically(ids, image_slice.slice_key, time.perf_counter() - started)
        found = f"{count} masks" if mode == "amg" else f"{count} objects"
        if into is not None:
            message = f"{title}: {found}, {len(ids)} new object(s) in '{layer.name}'."
        else:
            # AIS and APG objects are the layer's objects; only AMG's masks can overlap
            kept = f"{found}, {len(ids)} objects" if mode == "amg" else found
            message = f"{title}: {kept} in the new layer '{layer.name}'."
        c.state.set_status(message)
        show_info(message)
        c.return_to_prompts()

    def cancelled() -> None:
        c.end_work()
        c.state.set_status(f"{title.lower()} cancelled: no layer was changed")

    c.state.set_busy(stage.lower())
    c.state.set_status(f"{stage.lower()}…")
    c.jobs.submit(
        "everything", work, done, c.work_failed, replace_queued=False,
        on_yield=step, on_cancel=cancelled,
    )  # fmt: skip
