"""Segment everything from the widget: the job that runs it on the displayed slice, and where
its objects go."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from napari.utils.notifications import show_error, show_info, show_warning

from .everything_result import add_everything_result
from .progress_view import DOWNLOADING

if TYPE_CHECKING:
    from .controller import AnnotationController


def start_segment_everything(
    c: AnnotationController, params: dict[str, Any], only_unlabeled: bool
) -> None:
    """Queue segment-everything on the displayed slice: progress, Cancel, and the result in a
    new labels layer, or only in the unlabeled pixels of the "Commit into" layer."""
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
        relay.progress.emit("Segmenting everything", 0, 0)
        records = yield from session.iter_segment_everything(
            key, image_slice.data, image_slice.contrast_limits, params
        )
        from ..automatic import masks_to_labels

        return masks_to_labels(records, image_slice.shape), len(records)

    def step(value) -> None:
        relay.progress.emit("Segmenting everything", *value)

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
                c.viewer, c.layers.image, image_slice.slice_key, objects, into
            )
        except ValueError as exc:
            show_error(str(exc))
            return
        c.state.added_automatically(ids, image_slice.slice_key, time.perf_counter() - started)
        where = f"new object(s) in '{layer.name}'" if into else f"the new layer '{layer.name}'"
        message = f"Segment everything: {count} masks, {len(ids)} {where}."
        c.state.set_status(message)
        show_info(message)
        c.return_to_prompts()

    def cancelled() -> None:
        c.end_work()
        c.state.set_status("segment everything cancelled: no layer was changed")

    c.state.set_busy("segmenting everything")
    c.state.set_status("segmenting everything…")
    c.jobs.submit(
        "everything", work, done, c.work_failed, replace_queued=False,
        on_yield=step, on_cancel=cancelled,
    )  # fmt: skip
