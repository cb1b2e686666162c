"""What the widget's buttons and keys do: encode, decode, commit, clear and undo.

The controller runs the model work on a worker thread (:class:`SerialJobs`), writes the
results into the layers of the image being annotated (:class:`LayerChoice`) and keeps the
evented :class:`AnnotationState` up to date; the widget only connects controls to it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from napari.viewer import Viewer
from qtpy.QtCore import QObject, Signal

from ..annotation.labels import CommitMode
from ..annotation.prediction import Prediction
from ..annotation.prompts import points_on_slice, rectangles_on_slice
from ..annotation.session import InteractiveSession
from ..annotation.state import AnnotationState
from ..errors import Cancelled
from ..geometry import clip_to_image, inside_image
from .jobs import SerialJobs
from .labels_writer import ids_text, label_under_first_point, write_objects
from .layer_choice import LayerChoice
from .layer_slice import ImageSlice, displayed_slice
from .messages import explain_error, unsupported_reason
from .progress_view import DOWNLOADING
from .prompt_layers import PromptLayers
from .tile_overlay import remove_tile_grid, show_tile_grid

THREE_D = "Segment Anything works on 2-D views: switch the viewer to 2D (Ctrl+Y)."


class Relay(QObject):
    """Carries progress and notices from worker threads to the GUI thread (queued signals)."""

    progress = Signal(str, int, int)
    notice = Signal(str)


class AnnotationController(QObject):
    """Model work and layer writes for one widget."""

    def __init__(
        self, viewer: Viewer, session: InteractiveSession, state: AnnotationState,
        layers: LayerChoice, parent: QObject,
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.viewer = viewer
        self.session = session
        self.state = state
        self.layers = layers
        self.jobs = SerialJobs(parent)
        self.relay = Relay(self)
        self.relay.notice.connect(show_warning)
        self.tool = "point"
        self.positive = True
        self.revision = 0  # bumped by every edit; a decode of an older revision is dropped
        self._versions: dict[Any, int] = {}  # image unique_id -> version of its pixels
        self._commits: list[tuple[Any, int]] = []  # (labels unique_id, objects recorded)
        self._encoding: tuple | None = None  # the key being encoded now
        self.show_grid = False  # the tile grid of a tiled slice, drawn over it

    # ---- where we are --------------------------------------------------------------------------

    def current_slice(self, quiet: bool = False) -> ImageSlice | None:
        image = self.layers.image
        problem = None
        if image is None:
            problem = "No image layer: open an image (File > Open, or File > Open Sample)."
        else:
            problem = unsupported_reason(image)
        if problem is None:
            try:
                return displayed_slice(self.viewer, image)
            except ValueError as exc:
                problem = str(exc)
        if not quiet:
            show_warning(problem)
        return None

    def _source(self) -> tuple:
        uid = self.layers.image_id
        return (uid, self._versions.get(uid, 0))

    def key_of(self, image_slice: ImageSlice) -> tuple:
        return self.session.key(self._source(), image_slice.slice_key, image_slice.contrast_limits)

    def data_changed(self) -> None:
        """The image's pixels were replaced: its embeddings and a running encoding are stale."""
        uid = self.layers.image_id
        self._versions[uid] = self._versions.get(uid, 0) + 1
        self.session.drop_where(lambda key: key[0][0] == uid)
        self.state.set_status("image changed: will re-encode")
        self.edited()

    def image_removed(self, uid: Any) -> None:
        self.session.drop_where(lambda key: key[0][0] == uid)
        remove_tile_grid(self.viewer, uid)

    def edited(self) -> None:
        self.revision += 1
        self.state.prompts_edited()

    # ---- tools ---------------------------------------------------------------------------------

    def set_tool(self, tool: str) -> None:
        """Point or Box: the next click on the canvas adds a point, or a drag draws a box."""
        self.tool = tool
        prompts = self.layers.ensure_prompt_layers()
        if prompts is not None:
            prompts.activate(tool)

    def return_to_prompts(self) -> None:
        """After any action, the current image's prompt layer is active again, so the next
        click on the canvas is a prompt (the image itself when it has none yet)."""
        prompts = self.layers.prompt_layers
        if prompts is not None:
            prompts.activate(self.tool)
        elif self.layers.image is not None:
            self.viewer.layers.selection.active = self.layers.image

    def image_clicked(self, position: np.ndarray) -> None:
        """A click on the image layer itself (no prompt layer was active): a prompt."""
        if self.viewer.dims.ndisplay != 2:
            show_warning(THREE_D)
            return
        prompts = self.layers.ensure_prompt_layers()
        if prompts is None:
            return
        if self.tool == "point":
            prompts.points.add(np.asarray(position, dtype=float)[None])
        prompts.activate(self.tool)

    def prompts_added(self, prompts: PromptLayers) -> None:
        prompts.set_positive_mode(self.positive)

    # ---- encoding and decoding ----------------------------------------------------------------

    def encode_current_slice(self, then_decode: bool = False) -> None:
        """Compute the displayed slice's embedding on a worker thread (cached afterwards)."""
        image_slice = self.current_slice()
        if image_slice is None or self.session.model_name is None:
            return
        key = self.key_of(image_slice)
        if self.session.has_embedding(key):
            tiled = self.session.tiled_status(key)
            self.state.set_status(tiled or "slice encoded (cached)")
            self.refresh_tile_grid()
            if not then_decode and tiled is not None:
                self.encode_all_tiles(key)
            if then_decode:
                self.request_decode()
            return
        if self._encoding == key:
            return  # already on its way; its end decodes the latest prompts
        relay, session = self.relay, self.session

        def work(should_stop):
            relay.progress.emit("Loading model", 0, 0)
            session.ensure_model(lambda d, t: relay.progress.emit(DOWNLOADING, d, t))

            def encode_progress(done: int, total: int) -> None:
                if should_stop():
                    raise Cancelled
                relay.progress.emit("Encoding slice", done, total)

            session.encode(
                key, image_slice.data, image_slice.contrast_limits,
                notify=relay.notice.emit, encode_progress=encode_progress, tiles=True,
            )  # fmt: skip
            return session.last_encode_seconds

        def done(seconds: float | None) -> None:
            self.end_work()
            uid, version = key[0]
            gone = uid not in {layer.unique_id for layer in self.layers.image_layers()}
            if gone or version != self._versions.get(uid, 0):  # removed, or new pixels
                session.drop_where(lambda k: k == key)
                self.request_decode()
                return
            where = f"slice {image_slice.slice_key}" if image_slice.slice_key else "image"
            tiled = session.tiled_status(key)
            if tiled is not None:
                self.state.set_status(f"{where} {tiled}: tiles are encoded where you click")
                self.refresh_tile_grid()
                if not then_decode:  # Encode slice: every tile
                    self.encode_all_tiles(key)
            elif session.last_from_store:
                self.state.set_status(f"{where} loaded from precomputed embeddings")
            else:
                timing = f" in {seconds:.1f} s" if seconds is not None else ""
                self.state.set_status(f"{where} encoded{timing}")
            self.request_decode()

        def cancelled() -> None:
            self.end_work()
            self.state.set_status("encoding cancelled: click again or press Encode slice")

        self._encoding = key
        self.state.set_busy("encoding")
        self.state.set_status("encoding…")
        self.jobs.submit(
            "encode", work, done, self.work_failed, replace_queued=False, on_cancel=cancelled
        )

    def request_decode(self) -> None:
        """Decode the current slice's prompts (encoding it first if needed) into the preview."""
        prompts = self.layers.prompt_layers
        image_slice = self.current_slice(quiet=True)
        if prompts is None or image_slice is None:
            self.state.clear_prediction()  # e.g. the 3-D view: no stale 2-D preview
            return
        points, labels = points_on_slice(
            prompts.points.data, prompts.positive_flags(), image_slice.slice_key
        )
        inside = inside_image(points, image_slice.shape)
        if not inside.all():
            show_warning(f"{int((~inside).sum())} point(s) outside the image are ignored.")
            points, labels = points[inside], labels[inside]
        boxes = rectangles_on_slice(prompts.boxes.data, image_slice.slice_key)
        if len(boxes):
            boxes = clip_to_image(boxes.reshape(-1, 2), image_slice.shape).reshape(-1, 4)
        if len(points) == 0 and len(boxes) == 0:
            self.state.clear_prediction()
            return
        if self.session.model_name is None:
            return
        key = self.key_of(image_slice)
        if not self.session.has_embedding(key):
            self.encode_current_slice(then_decode=True)
            return
        revision, image_id, session = self.revision, self.layers.image_id, self.session
        relay, tiled = self.relay, session.tiled_status(key) is not None

        def work(should_stop) -> Prediction:
            def encode_progress(done: int, total: int) -> None:
                if should_stop():
                    raise Cancelled
                relay.progress.emit("Encoding tile", done, total)

            return session.predict(
                key, points, labels, boxes, notify=relay.notice.emit,
                encode_progress=encode_progress if tiled else None,
            )  # fmt: skip

        def done(prediction: Prediction) -> None:
            if tiled:
                self.state.set_status(session.tiled_status(key) or "")
                self.refresh_tile_grid()
            if revision != self.revision or image_id != self.layers.image_id:
                return  # prompts changed meanwhile; a newer decode is queued
            self.state.show(prediction, image_slice.slice_key)

        def cancelled() -> None:
            self.state.set_status("encoding the tile cancelled: click again to encode it")

        self.jobs.submit("decode", work, done, self.work_failed, on_cancel=cancelled)

    def encode_all_tiles(self, key: tuple) -> None:
        """Encode every tile of a tiled slice on the worker, with progress and Cancel."""
        relay, session = self.relay, self.session

        def work(should_stop) -> int:
            def tiles_done(done: int, total: int) -> None:
                relay.progress.emit(f"Encoding tiles ({done} of {total} done)", done, total)

            def blocks(done: int, total: int) -> None:
                if should_stop():
                    raise Cancelled

            return session.encode_tiles(key, tiles_done, blocks)

        def done(count: int) -> None:
            self.end_work()
            status = session.tiled_status(key) or ""
            self.state.set_status(f"{status} ({count} now, saved in the embedding store)")
            self.refresh_tile_grid()

        def cancelled() -> None:
            self.end_work()
            status = session.tiled_status(key) or ""
            self.state.set_status(f"{status}: encoding the tiles cancelled")
            self.refresh_tile_grid()

        self.state.set_busy("encoding")
        self.jobs.submit(
            "encode", work, done, self.work_failed, replace_queued=False, on_cancel=cancelled
        )

    # ---- the tile grid -------------------------------------------------------------------------

    def set_tile_grid_shown(self, shown: bool) -> None:
        """Draw the displayed slice's tile grid over it (when the slice is tiled), or not."""
        self.show_grid = bool(shown)
        if not self.show_grid:
            remove_tile_grid(self.viewer)
            return
        if not self.refresh_tile_grid():
            show_info(
                "The tile grid appears once a large image is tiled: click on it, or press "
                "Encode slice. Images up to about 1.5 times the model's input are not tiled."
            )

    def refresh_tile_grid(self) -> bool:
        """Redraw the grid (encoded tiles stand out) if it is shown; whether there is one."""
        if not self.show_grid:
            return False
        image_slice = self.current_slice(quiet=True)
        tiled = None if image_slice is None else self.session.tiled.get(self.key_of(image_slice))
        image = self.layers.image
        if tiled is None or image is None:
            remove_tile_grid(self.viewer)
            return False
        show_tile_grid(self.viewer, image, tiled.grid, tiled.encoded_tiles())
        return True

    # ---- committing ----------------------------------------------------------------------------

    def commit(self, mode: CommitMode) -> None:
        """Write the preview into the image's labels layer as new objects, then clear prompts."""
        refusal = self.state.commit_refusal()
        image_slice = self.current_slice()
        if image_slice is None:
            return
        if refusal is None and self.state.prediction_slice != image_slice.slice_key:
            refusal = "Nothing to commit on this slice: click on an object or draw a box first."
        if refusal is not None:
            show_info(refusal)
            return
        prediction, rank = self.state.prediction, self.state.candidate_rank
        target = self.layers.target_labels(create=True)
        prompts = self.layers.prompt_layers
        if target is None or prompts is None:
            return
        key = image_slice.slice_key
        replaced = 0
        if mode == CommitMode.REPLACE:
            points, labels = points_on_slice(prompts.points.data, prompts.positive_flags(), key)
            replaced = label_under_first_point(target, key, points, labels)
        try:
            ids = write_objects(
                target, key, prediction.objects(rank), prediction.window[:2], mode, replaced
            )
        except ValueError as exc:
            show_error(str(exc))
            return
        if len(ids) == 0:
            show_warning(
                "The object lies entirely on existing labels, so nothing was written. Choose "
                "'Overwrite existing labels' as the commit mode to paint over them."
            )
            return
        source = "box" if len(prompts.boxes.data) and not prediction.multimask else "click"
        # Known before the record announces the commit, so Undo is offered at once.
        self._commits.append((target.unique_id, len(ids)))
        self.state.committed(ids, key, source)
        prompts.clear_slice(key)
        self.state.clear_prediction()
        self.state.set_status(
            f"Committed {len(ids)} object(s) to '{target.name}' ({ids_text(ids)}). "
            "'Undo commit' takes it back."
        )
        self.return_to_prompts()

    def record_commit(self, target, ids, slice_key: tuple[int, ...], source: str) -> None:
        """A commit made outside :meth:`commit` (a propagated object): for Undo and the record."""
        self._commits.append((target.unique_id, len(ids)))
        self.state.committed(ids, slice_key, source)

    def undo_last_commit(self) -> None:
        """Take back the last commit, in whichever layer it went, whatever is selected."""
        if not self._commits:
            show_info("Nothing to undo: no commit in this session yet.")
            return
        uid, recorded = self._commits.pop()
        layer = next((lay for lay in self.viewer.layers if lay.unique_id == uid), None)
        if layer is None:
            show_warning("The labels layer of the last commit was removed; nothing to undo.")
            return
        layer.undo()
        if recorded:
            del self.state.record.objects[-recorded:]
        self.state.record_changed.emit()
        self.state.set_status(f"Undid the last commit in '{layer.name}'.")
        self.return_to_prompts()

    @property
    def can_undo(self) -> bool:
        return bool(self._commits)

    def clear(self) -> None:
        """Discard the prompts and preview of the displayed slice."""
        prompts = self.layers.prompt_layers
        image_slice = self.current_slice(quiet=True)
        if prompts is None:
            return
        prompts.clear_slice(image_slice.slice_key if image_slice else ())
        self.state.clear_prediction()
        self.state.record.discard()
        self.return_to_prompts()

    # ---- the end of work -----------------------------------------------------------------------

    def cancel(self) -> None:
        """Drop queued work and stop the running job at its next step."""
        self.jobs.cancel_all()

    def end_work(self) -> None:
        self._encoding = None
        self.state.set_busy(None)

    def work_failed(self, exc: Exception) -> None:
        self.end_work()
        message = explain_error(exc, self.session.model_name)
        # The notification says what to do in a few words; the status line keeps the detail.
        self.state.set_status(f"failed: {str(exc) or message}")
        show_error(message)
