"""The "Segment Anything" dock widget: click or box an object, see its mask, commit it."""

from __future__ import annotations

import os
import time

import numpy as np
from napari.layers import Image, Layer
from napari.utils.notifications import show_error, show_info, show_warning
from napari.viewer import Viewer
from qtpy.QtCore import QObject, Qt, QTimer, Signal
from qtpy.QtWidgets import QFileDialog, QVBoxLayout, QWidget

from ..annotation.prediction import Prediction
from ..annotation.prompts import points_on_slice, rectangles_on_slice
from ..annotation.session import InteractiveSession
from ..geometry import clip_to_image, inside_image
from .connections import disconnect_all
from .everything_panel import EverythingPanel
from .everything_result import add_everything_result
from .jobs import SerialJobs
from .keys import KEYS
from .labels_writer import write_new_objects
from .layer_choice import LayerChoice
from .layer_slice import ImageSlice, displayed_slice, spatial_shape
from .messages import explain_error, unsupported_reason
from .panels import LabelsPanel, PromptPanel, SetupPanel, StatusPanel
from .prompt_layers import PromptLayers

IMPORT_ITEM = "Import checkpoint…"
DOWNLOADING = "Downloading model"
DECODE_DEBOUNCE_MS = 60
CONTRAST_DEBOUNCE_MS = 400
PROGRESS_INTERVAL_S = 1.0


class _Relay(QObject):
    """Carries progress and notices from worker threads to the GUI thread (queued signals)."""

    progress = Signal(str, int, int)
    notice = Signal(str)


class SegmentAnythingWidget(QWidget):
    """Interactive SAM annotation of the selected image layer."""

    def __init__(self, napari_viewer: Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.session = InteractiveSession()
        self.jobs = SerialJobs(self)
        self._relay = _Relay(self)
        self._prediction: Prediction | None = None
        self._prediction_slice: tuple[int, ...] | None = None
        self._candidate_rank = 0
        self._revision = 0
        self._status_embedding = "no image encoded yet"
        self._progress_shown: tuple[str, int, float] = ("", 0, 0.0)  # stage, total, when

        self._build_ui()
        self._decode_timer = _single_shot(self, DECODE_DEBOUNCE_MS, self.request_decode)
        self._contrast_timer = _single_shot(self, CONTRAST_DEBOUNCE_MS, self._on_contrast_settled)
        self._relay.progress.connect(self._show_progress)
        self._relay.notice.connect(show_warning)
        self.jobs.busy_changed.connect(self._on_busy_changed)

        self.layer_choice = LayerChoice(self.viewer, self.image_combo, self.labels_combo, self)
        self.layer_choice.image_changed.connect(self._on_image_changed)
        self.layer_choice.image_data_changed.connect(self._on_image_data_changed)
        self.layer_choice.contrast_changed.connect(self._on_contrast_changed)
        self.layer_choice.prompt_layers_added.connect(self._on_prompt_layers_added)
        self.layer_choice.layer_removed.connect(self._on_layer_removed)
        self.viewer.dims.events.current_step.connect(self._on_slice_changed)
        self._bind_keys()
        self.layer_choice.refresh_choices()
        self.layer_choice.follow_active_layer()
        self._update_status()

    # ---- construction ---------------------------------------------------------------------

    def _build_ui(self) -> None:
        layout = QVBoxLayout(self)
        self.setup = SetupPanel()
        self.prompts_panel = PromptPanel()
        self.labels_panel = LabelsPanel()
        self.everything = EverythingPanel()
        self.status_panel = StatusPanel()
        for section in (
            self.setup, self.prompts_panel, self.labels_panel, self.everything, self.status_panel
        ):  # fmt: skip
            layout.addWidget(section)
        layout.addStretch(1)
        # The controls by name, as tests and scripts drive them.
        for panel in (self.setup, self.prompts_panel, self.labels_panel, self.status_panel):
            for name, control in vars(panel).items():
                if not name.startswith("_"):
                    setattr(self, name, control)

        self._fill_models()
        self.model_combo.activated.connect(self._on_model_activated)
        self.device_combo.currentTextChanged.connect(self._on_model_changed)
        self.precision_combo.currentTextChanged.connect(self._on_model_changed)
        self.encode_button.clicked.connect(self.encode_current_slice)
        self.positive_radio.toggled.connect(self._on_mode_toggled)
        self.next_candidate_button.clicked.connect(self.next_candidate)
        self.commit_button.clicked.connect(self.commit)
        self.clear_button.clicked.connect(self.clear)
        self.everything.run_button.clicked.connect(self.segment_everything)
        self.cancel_button.clicked.connect(self.cancel)

    def _fill_models(self) -> None:
        from ..weights import default_model, list_models

        current = self.model_combo.currentData() if self.model_combo.count() else None
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for info in list_models():
            self.model_combo.addItem(info.name, info.name)
            self.model_combo.setItemData(
                self.model_combo.count() - 1, info.description, Qt.ItemDataRole.ToolTipRole
            )
        try:
            wanted = current or default_model()
        except ValueError as exc:
            show_warning(str(exc))
            wanted = "vit_b"
        if self.model_combo.findData(wanted) < 0:
            label = os.path.basename(wanted) if os.path.sep in wanted else wanted
            self.model_combo.addItem(label, wanted)
        self.model_combo.addItem(IMPORT_ITEM, None)
        self.model_combo.setCurrentIndex(self.model_combo.findData(wanted))
        self.model_combo.blockSignals(False)

    def _bind_keys(self) -> None:
        actions = {
            "toggle_point_mode": lambda viewer: self.toggle_point_mode(),
            "next_candidate": lambda viewer: self.next_candidate(),
            "commit": lambda viewer: self.commit(),
            "clear": lambda viewer: self.clear(),
        }
        for action, func in actions.items():
            self.viewer.bind_key(KEYS[action][0], func, overwrite=True)

    def _unbind_keys(self) -> None:
        for key, _ in KEYS.values():
            self.viewer.bind_key(key, None)

    # ---- layers ---------------------------------------------------------------------------

    @property
    def image_layer(self) -> Image | None:
        """The image layer being annotated, or None when the viewer has none."""
        return self.layer_choice.image

    @property
    def prompt_layers(self) -> PromptLayers | None:
        """The prompt layers of the current image (created when the image is chosen)."""
        return self.layer_choice.prompt_layers

    def _on_image_changed(self) -> None:
        self._prediction = None
        self._update_status()
        self._decode_timer.start()

    def _on_prompt_layers_added(self, prompts: PromptLayers) -> None:
        prompts.set_positive_mode(self.positive_radio.isChecked())
        prompts.points.events.data.connect(self._on_prompts_edited)
        prompts.points.events.features.connect(self._on_prompts_edited)
        prompts.boxes.events.data.connect(self._on_prompts_edited)

    def _on_layer_removed(self, layer: Layer) -> None:
        if isinstance(layer, Image):
            self.session.cache.drop_source(layer.unique_id)
        self._update_status()

    # ---- events ---------------------------------------------------------------------------

    def _on_prompts_edited(self, event=None) -> None:
        action = getattr(event, "action", None)
        if action is not None and str(action).lower().endswith("ing"):
            return
        self._revision += 1
        self._candidate_rank = 0
        self._decode_timer.start()

    def _on_slice_changed(self, event=None) -> None:
        self._revision += 1
        self._candidate_rank = 0
        self._decode_timer.start()

    def _on_image_data_changed(self) -> None:
        if self.image_layer is not None:
            self.session.cache.drop_source(self.image_layer.unique_id)
        self._status_embedding = "image changed: will re-encode"
        self._on_slice_changed()

    def _on_contrast_changed(self) -> None:
        self._contrast_timer.start()

    def _on_contrast_settled(self) -> None:
        self._revision += 1
        self._update_status()
        self.request_decode()

    def _on_model_activated(self, index: int) -> None:
        if (
            self.model_combo.itemData(index) is None
            and self.model_combo.itemText(index) == IMPORT_ITEM
        ):
            self._import_checkpoint_dialog()
        self._on_model_changed()

    def _on_model_changed(self, *args) -> None:
        self._prediction = None
        self._revision += 1
        self._update_status()
        self._decode_timer.start()

    def _on_mode_toggled(self, positive: bool) -> None:
        prompts = self.prompt_layers
        if prompts is not None:
            prompts.set_positive_mode(self.positive_radio.isChecked())

    def _import_checkpoint_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Import a SAM checkpoint",
            "",
            "PyTorch checkpoints (*.pth *.pt *.bin);;All files (*)",
        )
        if not path:
            self._fill_models()
            return
        self.import_checkpoint(path)

    def import_checkpoint(self, path: str) -> str | None:
        """Copy a checkpoint file into the model cache and select it."""
        from ..weights import import_checkpoint

        try:
            name = import_checkpoint(path)
        except (OSError, ValueError) as exc:
            show_error(f"Could not import {path}: {exc}")
            self._fill_models()
            return None
        self._fill_models()
        self.model_combo.setCurrentIndex(self.model_combo.findData(name))
        show_info(f"Imported {os.path.basename(path)} as model {name!r}.")
        self._on_model_changed()
        return name

    # ---- public actions -------------------------------------------------------------------

    @property
    def model_name(self) -> str | None:
        return self.model_combo.currentData()

    def toggle_point_mode(self) -> None:
        """Switch new points between positive and negative."""
        target = self.negative_radio if self.positive_radio.isChecked() else self.positive_radio
        target.setChecked(True)

    def _current_slice(self, quiet: bool = False) -> ImageSlice | None:
        if self.image_layer is None:
            if not quiet:
                show_warning("No image layer: open an image (File > Open, or File > Open Sample).")
            return None
        problem = unsupported_reason(self.image_layer)
        if problem:
            if not quiet:
                show_warning(problem)
            return None
        try:
            return displayed_slice(self.viewer, self.image_layer)
        except ValueError as exc:
            if not quiet:
                show_warning(str(exc))
            return None

    def _embedding_key(self, image_slice: ImageSlice) -> tuple:
        self.session.select_model(
            self.model_name or "vit_b",
            self.device_combo.currentText(),
            self.precision_combo.currentText(),
        )
        return self.session.key(
            self.image_layer.unique_id, image_slice.slice_key, image_slice.contrast_limits
        )

    def encode_current_slice(self, then_decode: bool = False) -> None:
        """Compute the displayed slice's embedding on a worker thread (cached afterwards)."""
        image_slice = self._current_slice()
        if image_slice is None or self.model_name is None:
            return
        key = self._embedding_key(image_slice)
        if self.session.has_embedding(key):
            self._status_embedding = "slice encoded (cached)"
            self._update_status()
            if then_decode:
                self.request_decode()
            return
        relay = self._relay
        session = self.session

        def work():
            def progress(done: int, total: int) -> None:
                relay.progress.emit(DOWNLOADING, done, total)

            relay.progress.emit("Loading model", 0, 0)
            session.ensure_model(progress)
            session.encode(
                key,
                image_slice.data,
                image_slice.contrast_limits,
                notify=relay.notice.emit,
                encode_progress=lambda done, total: relay.progress.emit(
                    "Encoding slice", done, total
                ),
            )
            return session.last_encode_seconds

        def done(seconds: float | None) -> None:
            where = f"slice {image_slice.slice_key}" if image_slice.slice_key else "image"
            if session.last_from_store:
                self._status_embedding = f"{where} loaded from precomputed embeddings"
            else:
                timing = f" in {seconds:.1f} s" if seconds is not None else ""
                self._status_embedding = f"{where} encoded{timing}"
            self._update_status()
            if then_decode:
                self.request_decode()

        self._status_embedding = "encoding…"
        self._update_status()
        self.jobs.submit("encode", work, done, self._on_work_error, replace_queued=False)

    def request_decode(self) -> None:
        """Decode the current slice's prompts (encoding it first if needed) into the preview."""
        prompts = self.prompt_layers
        image_slice = self._current_slice(quiet=True)
        if prompts is None or image_slice is None:
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
            self._prediction = None
            prompts.show_preview(None)
            self._update_candidate_label()
            return
        if self.model_name is None:
            return
        key = self._embedding_key(image_slice)
        if not self.session.has_embedding(key):
            if self.jobs.running_kind != "encode":
                self.encode_current_slice(then_decode=True)
            return
        revision = self._revision
        session = self.session

        def work() -> Prediction:
            return session.predict(key, points, labels, boxes, notify=self._relay.notice.emit)

        def done(prediction: Prediction) -> None:
            if revision != self._revision or self.prompt_layers is not prompts:
                return  # prompts changed meanwhile; a newer decode is queued
            self._prediction = prediction
            self._prediction_slice = image_slice.slice_key
            self._show_prediction()

        self.jobs.submit("decode", work, done, self._on_work_error)

    def next_candidate(self) -> None:
        """Show the next of the 3 candidate masks of a single click."""
        if self._prediction is None or not self._prediction.multimask:
            show_info("Candidate masks exist for a single click only.")
            return
        self._candidate_rank = (self._candidate_rank + 1) % self._prediction.masks.shape[1]
        self._show_prediction()

    def preview_objects(self) -> np.ndarray | None:
        """The preview as (H, W) object indices (1..K), or None when there is none."""
        prompts = self.prompt_layers
        if prompts is None or self._prediction is None:
            return None
        data = np.asarray(prompts.preview.data)
        return data if data.any() else None

    def commit(self) -> None:
        """Write the preview into the target labels layer as new objects, then clear prompts."""
        image_slice = self._current_slice()
        objects = self.preview_objects()
        if image_slice is None:
            return
        if objects is None or self._prediction_slice != image_slice.slice_key:
            show_info("Nothing to commit: click on an object or draw a box first.")
            return
        target = self.layer_choice.target_labels(create=True)
        if target is None:
            return
        shape = spatial_shape(self.image_layer)
        if tuple(target.data.shape) != shape:
            show_error(
                f"Labels layer '{target.name}' has shape {tuple(target.data.shape)} but the image "
                f"is {shape}: pick another labels layer or 'New labels layer'."
            )
            return
        key = image_slice.slice_key
        try:
            n_objects, first_id = write_new_objects(
                target, key, objects, overwrite=self.overwrite_check.isChecked()
            )
        except ValueError as exc:
            show_error(str(exc))
            return
        if n_objects == 0:
            show_warning(
                "The object lies entirely on existing labels, so nothing was written. Tick "
                "'Overwrite existing labels' to paint over them."
            )
            return
        self.prompt_layers.clear_slice(key)
        self._prediction = None
        self._update_candidate_label()
        self.status_label.setText(
            f"Committed {n_objects} object(s) to '{target.name}' (ids from {first_id}). "
            "Ctrl+Z on the labels layer undoes it.\n" + self._status_text()
        )

    def clear(self) -> None:
        """Discard the prompts and preview of the displayed slice."""
        prompts = self.prompt_layers
        image_slice = self._current_slice(quiet=True)
        if prompts is None:
            return
        prompts.clear_slice(image_slice.slice_key if image_slice else ())
        self._prediction = None
        self._update_candidate_label()

    def segment_everything(self) -> None:
        """Run SAM's automatic mask generation on the displayed slice in the background."""
        image_slice = self._current_slice()
        if image_slice is None or self.model_name is None:
            return
        only_unlabeled = self.everything.only_unlabeled_check.isChecked()
        if only_unlabeled and self.layer_choice.target_labels(False) is None:
            show_warning(
                "'Only unlabeled regions' adds to an existing labels layer: pick one under "
                "'Commit into' first."
            )
            return
        key = self._embedding_key(image_slice)
        params = self.everything.params()
        session, relay = self.session, self._relay
        image = self.image_layer

        def work():
            relay.progress.emit("Loading model", 0, 0)
            session.ensure_model(lambda d, t: relay.progress.emit(DOWNLOADING, d, t))
            relay.progress.emit("Segmenting everything", 0, 0)
            records = yield from session.iter_segment_everything(
                key, image_slice.data, image_slice.contrast_limits, params
            )
            from ..automatic import masks_to_labels

            return masks_to_labels(records, image_slice.shape), len(records)

        def step(value) -> None:
            done, total = value
            relay.progress.emit("Segmenting everything", done, total)

        def done(result) -> None:
            objects, count = result
            if self.image_layer is not image:
                return
            self._add_everything_result(image_slice, objects, count, only_unlabeled)

        def cancelled() -> None:
            self._status_embedding = "segment everything cancelled: no layer was changed"
            self._update_status()

        self._status_embedding = "segmenting everything…"
        self._update_status()
        self.jobs.submit(
            "everything", work, done, self._on_work_error, replace_queued=False,
            on_yield=step, on_cancel=cancelled,
        )  # fmt: skip

    def _add_everything_result(
        self, image_slice: ImageSlice, objects: np.ndarray, count: int, only_unlabeled: bool
    ) -> None:
        into = self.layer_choice.target_labels(False) if only_unlabeled else None
        if only_unlabeled and into is None:
            show_warning("The labels layer to add to was removed; nothing was written.")
            return
        message = add_everything_result(
            self.viewer, self.image_layer, image_slice.slice_key, objects, count, into
        )
        if message is None:
            return
        self._status_embedding = message
        self._update_status()
        show_info(message)

    def cancel(self) -> None:
        """Drop queued work and ignore the running job's result."""
        self.jobs.cancel_all()
        self._status_embedding = "cancelled"
        self._update_status()

    # ---- results --------------------------------------------------------------------------

    def _show_prediction(self) -> None:
        prompts = self.prompt_layers
        if prompts is None or self._prediction is None:
            return
        prompts.show_preview(self._prediction.objects(self._candidate_rank))
        self._update_candidate_label()

    def displayed_candidate(self) -> int | None:
        """Index (0..2) of the candidate mask shown for a single click, else None."""
        p = self._prediction
        if p is None or not p.multimask:
            return None
        return p.candidate(self._candidate_rank)

    def _update_candidate_label(self) -> None:
        p = self._prediction
        self.candidate_label.setText("–" if p is None else p.describe(self._candidate_rank))
        self.next_candidate_button.setEnabled(p is not None and p.multimask)

    def _status_text(self) -> str:
        model = self.model_combo.currentText() or "no model"
        device = self.session.device_in_use or self.device_combo.currentText()
        image = self.image_layer.name if self.image_layer is not None else "no image layer"
        return f"Model {model} on {device} · {image} · {self._status_embedding}"

    def _update_status(self) -> None:
        self.status_label.setText(self._status_text())

    def _show_progress(self, stage: str, done: int, total: int) -> None:
        """A stage with a known total shows a bar; without one, a brief busy indicator.

        Every repaint recomposes the whole window through OpenGL, which on machines with
        software OpenGL takes the cores the worker is using: an animated busy indicator made
        encoding 1.4x slower there. So long stages report steps, at most one a second.
        """
        now = time.monotonic()
        if (stage, total) == self._progress_shown[:2] and 0 < done < total:
            if now - self._progress_shown[2] < PROGRESS_INTERVAL_S:
                return
        self._progress_shown = (stage, total, now)
        self.progress_bar.setVisible(True)
        self.cancel_button.setVisible(True)
        if total > 0:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(1000 * done / total))
            if stage == DOWNLOADING:
                self.progress_bar.setFormat(f"{stage}: {done / 1e6:.0f} / {total / 1e6:.0f} MB")
            else:
                self.progress_bar.setFormat(f"{stage}: {done} / {total}")
        else:
            self.progress_bar.setRange(0, 0)  # busy indicator
            self.progress_bar.setFormat(stage)
        self._status_embedding = stage[0].lower() + stage[1:] + "…"
        self._update_status()

    def _on_busy_changed(self, busy: bool) -> None:
        if not busy:
            self._progress_shown = ("", 0, 0.0)
            self.progress_bar.setVisible(False)
            self.cancel_button.setVisible(False)

    def _on_work_error(self, exc: Exception) -> None:
        self._status_embedding = "failed: see the notification"
        self._update_status()
        show_error(explain_error(exc, self.model_name))

    # ---- teardown -------------------------------------------------------------------------

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop work and disconnect from the viewer (the user's layers stay as they are)."""
        self.jobs.cancel_all()
        self.jobs.wait()
        self._unbind_keys()
        self.layer_choice.disconnect_viewer()
        disconnect_all([(self.viewer.dims.events.current_step, self._on_slice_changed)])


def _single_shot(parent: QObject, ms: int, slot) -> QTimer:
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(ms)
    timer.timeout.connect(slot)
    return timer
