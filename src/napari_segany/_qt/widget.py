"""The "Segment Anything" dock widget: click or box an object, see its mask, commit it.

The widget composes the panels and connects them: the session owns the model, the evented
annotation state what is shown, the controller what each action does, and the layer choice
which layers it all happens in.
"""

from __future__ import annotations

from napari.utils.notifications import show_info
from napari.viewer import Viewer
from qtpy.QtCore import QEvent, QObject, QTimer
from qtpy.QtWidgets import QVBoxLayout, QWidget

from ..annotation.session import InteractiveSession
from ..annotation.state import AnnotationState
from .connections import disconnect_all
from .controller import THREE_D, AnnotationController
from .everything_job import start_automatic
from .everything_panel import EverythingPanel
from .keys import bind_keys, unbind_keys
from .layer_choice import LayerChoice
from .model_choice import ModelChoice
from .panels import LabelsPanel, PromptPanel, SetupPanel, StatusPanel
from .progress_view import ProgressView
from .prompt_layers import PromptLayers
from .propagation import Propagation
from .propagation_panel import PropagationPanel
from .record_view import RecordView

DECODE_DEBOUNCE_MS = 60
CONTRAST_DEBOUNCE_MS = 400


class SegmentAnythingWidget(QWidget):
    """Interactive SAM annotation of the selected image layer."""

    def __init__(self, napari_viewer: Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.session = InteractiveSession()
        self.state = AnnotationState()
        self._build_ui()
        self.models = ModelChoice(
            self.session, self.model_combo, self.device_combo, self.precision_combo, self
        )
        self.models.decoder_changed.connect(self._offer_instances)
        self._offer_instances(self.models.has_decoder())
        self.layer_choice = LayerChoice(self.viewer, self.image_combo, self.labels_combo, self)
        self.controller = AnnotationController(
            self.viewer, self.session, self.state, self.layer_choice, self
        )
        self.jobs = self.controller.jobs
        self.propagation = Propagation(self.controller, self.propagate_panel, self)
        self.progress = ProgressView(self.progress_bar, self.cancel_button, self.state, self)
        self.record = RecordView(
            self.state, self.record_label, self.save_record_button, self.undo_button,
            lambda: self.controller.can_undo, self,
        )  # fmt: skip
        self._decode_timer = _single_shot(self, DECODE_DEBOUNCE_MS, self.controller.request_decode)
        self._contrast_timer = _single_shot(self, CONTRAST_DEBOUNCE_MS, self._on_contrast_settled)
        self._connect()
        bind_keys(self.viewer, {
            "point_tool": lambda: self.set_tool("point"), "box_tool": lambda: self.set_tool("box"),
            "toggle_point_mode": self.toggle_point_mode, "next_candidate": self.next_candidate,
            "commit": self.commit, "clear": self.clear,
            "propagate": self.propagation.propagate,
        })  # fmt: skip
        self.layer_choice.refresh_choices()
        self.layer_choice.follow_active_layer()
        self._update_status()
        self.destroyed.connect(self.jobs.close)  # napari closed: end work quietly

    # ---- construction ---------------------------------------------------------------------

    def _build_ui(self) -> None:
        layout = QVBoxLayout(self)
        self.setup, self.prompts_panel = SetupPanel(), PromptPanel()
        self.labels_panel, self.everything = LabelsPanel(), EverythingPanel()
        self.propagate_panel = PropagationPanel()
        self.status_panel = StatusPanel()
        for section in (
            self.setup, self.prompts_panel, self.labels_panel, self.everything,
            self.propagate_panel, self.status_panel,
        ):  # fmt: skip
            layout.addWidget(section)
        layout.addStretch(1)
        # The controls by name, as tests and scripts drive them.
        for panel in (self.setup, self.prompts_panel, self.labels_panel, self.status_panel):
            for name, control in vars(panel).items():
                if not name.startswith("_"):
                    setattr(self, name, control)

    def _connect(self) -> None:
        c, choice, state = self.controller, self.layer_choice, self.state
        self.models.changed.connect(self._on_model_changed)
        self.encode_button.clicked.connect(lambda: c.encode_current_slice())
        self.point_button.clicked.connect(lambda: self.set_tool("point"))
        self.box_button.clicked.connect(lambda: self.set_tool("box"))
        self.positive_radio.toggled.connect(self._on_mode_toggled)
        self.next_candidate_button.clicked.connect(self.next_candidate)
        self.commit_button.clicked.connect(self.commit)
        self.clear_button.clicked.connect(self.clear)
        self.undo_button.clicked.connect(self.undo_last_commit)
        self.everything.run_button.clicked.connect(self.segment_everything)
        self.propagate_panel.propagate_button.clicked.connect(self.propagation.propagate)
        self.propagate_panel.propagate_all_button.clicked.connect(self.propagation.propagate_all)
        self.propagate_panel.discard_button.clicked.connect(self.propagation.discard)
        self.cancel_button.clicked.connect(c.cancel)
        self.tile_grid_check.toggled.connect(c.set_tile_grid_shown)
        choice.image_changed.connect(self._on_image_changed)
        choice.image_data_changed.connect(c.data_changed)
        choice.image_data_changed.connect(self._decode_timer.start)
        choice.contrast_changed.connect(self._contrast_timer.start)
        choice.prompt_layers_added.connect(self._on_prompt_layers_added)
        choice.image_clicked.connect(c.image_clicked)
        choice.layers_changed.connect(self._update_status)
        choice.image_removed.connect(c.image_removed)
        c.relay.progress.connect(self.progress.step)
        self.jobs.busy_changed.connect(self.progress.busy_changed)
        self.jobs.busy_changed.connect(self._on_busy_changed)
        state.prediction_changed.connect(self._show_prediction)
        state.status_changed.connect(self._update_status)
        self.viewer.dims.events.current_step.connect(self._on_slice_changed)

    # ---- what the user does ---------------------------------------------------------------

    @property
    def image_layer(self):
        """The image layer being annotated, or None when the viewer has none."""
        return self.layer_choice.image

    @property
    def prompt_layers(self) -> PromptLayers | None:
        return self.layer_choice.prompt_layers

    @property
    def model_name(self) -> str | None:
        return self.models.model_name

    def set_tool(self, tool: str) -> None:
        (self.box_button if tool == "box" else self.point_button).setChecked(True)
        self.controller.set_tool(tool)

    def toggle_point_mode(self) -> None:
        """Switch new points between positive and negative."""
        target = self.negative_radio if self.positive_radio.isChecked() else self.positive_radio
        target.setChecked(True)

    def next_candidate(self) -> None:
        """Show the next of the 3 candidate masks of a single click."""
        refusal = self.state.next_candidate()
        if refusal:
            show_info(refusal)

    def commit(self) -> None:
        mode = self.commit_mode_combo.currentData()
        if not self.propagation.commit(mode):  # a propagated object is committed whole
            self.controller.commit(mode)

    def clear(self) -> None:
        self.controller.clear()
        self.propagation.discard()

    def undo_last_commit(self) -> None:
        self.controller.undo_last_commit()

    def segment_everything(self) -> None:
        """Run the automatic method chosen in its panel (segment everything, AIS or APG)."""
        start_automatic(self.controller, self.everything)

    def import_checkpoint(self, path: str) -> str | None:
        return self.models.import_checkpoint(path)

    def preview_objects(self):
        """The preview as (H, W) object indices (1..K) of the whole slice, or None."""
        prompts = self.prompt_layers
        if prompts is None:
            return None
        return prompts.preview_objects(self.state.prediction, self.state.candidate_rank)

    def displayed_candidate(self) -> int | None:
        return self.state.displayed_candidate()

    # ---- events ---------------------------------------------------------------------------

    def _on_prompt_layers_added(self, prompts: PromptLayers) -> None:
        self.controller.prompts_added(prompts)
        for event in (prompts.points.events.data, prompts.points.events.features):
            event.connect(self._on_prompts_edited)
        prompts.boxes.events.data.connect(self._on_prompts_edited)

    def _on_prompts_edited(self, event=None) -> None:
        action = str(getattr(event, "action", "")).lower()
        if action.endswith("ing"):
            return
        if action.endswith("added"):
            self.state.record.prompt_added(len(getattr(event, "data_indices", ())) or 1)
            if self.viewer.dims.ndisplay != 2:
                show_info(THREE_D)
        self.controller.edited()
        self._decode_timer.start()

    def _on_slice_changed(self, event=None) -> None:
        self.controller.edited()
        self._decode_timer.start()

    def _on_contrast_settled(self) -> None:
        self.controller.edited()
        self.controller.request_decode()

    def _on_image_changed(self) -> None:
        self.state.clear_prediction()
        self._update_status()
        self._decode_timer.start()

    def _on_model_changed(self) -> None:
        self.state.clear_prediction()
        self.controller.edited()
        self._update_status()
        self._decode_timer.start()

    def _on_mode_toggled(self, positive: bool) -> None:
        self.controller.positive = self.positive_radio.isChecked()
        prompts = self.prompt_layers
        if prompts is not None:
            prompts.set_positive_mode(self.controller.positive)

    # ---- showing the state ----------------------------------------------------------------

    def _show_prediction(self) -> None:
        prompts = self.prompt_layers
        if prompts is not None:
            prompts.show_preview(self.state.prediction, self.state.candidate_rank)
        p = self.state.prediction
        self.candidate_label.setText(self.state.describe())
        self.next_candidate_button.setEnabled(p is not None and p.multimask)

    def _update_status(self, *args) -> None:
        model = self.model_combo.currentText() or "no model"
        device = self.session.device_in_use or self.device_combo.currentText()
        image = self.image_layer.name if self.image_layer is not None else "no image layer"
        self.status_label.setText(f"Model {model} on {device} · {image} · {self.state.status}")

    def _offer_instances(self, has_decoder: bool) -> None:
        self.everything.set_decoder_available(has_decoder, self.models.decoder_models())

    def _on_busy_changed(self, busy: bool) -> None:
        if not busy and self.session.predictor is not None:
            self.models.model_arrived()  # a download is no longer announced

    # ---- teardown -------------------------------------------------------------------------

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        self.shutdown()
        super().closeEvent(event)

    def event(self, event: QEvent) -> bool:
        # napari's remove_dock_widget takes the widget out of its dock without closing it.
        if event.type() == QEvent.Type.ParentChange and self.parent() is None:
            self.shutdown()
        return super().event(event)

    def shutdown(self) -> None:
        """Stop work and disconnect from the viewer (the user's layers stay as they are)."""
        if self.jobs.closed:
            return
        self.jobs.close()
        self.jobs.wait()
        unbind_keys(self.viewer)
        self.layer_choice.disconnect_viewer()
        disconnect_all([(self.viewer.dims.events.current_step, self._on_slice_changed)])


def _single_shot(parent: QObject, ms: int, slot) -> QTimer:
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(ms)
    timer.timeout.connect(slot)
    return timer
