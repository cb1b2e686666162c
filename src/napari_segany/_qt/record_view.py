"""The record of committed objects in the widget: its running mean, Save record… and Undo."""

from __future__ import annotations

from napari.utils.notifications import show_info
from qtpy.QtWidgets import QFileDialog, QLabel, QPushButton, QWidget

from ..annotation.state import AnnotationState


class RecordView:
    """Keeps the record's line and the Undo button up to date; saves the record as CSV."""

    def __init__(
        self, state: AnnotationState, label: QLabel, save: QPushButton, undo: QPushButton,
        can_undo, parent: QWidget,
    ) -> None:  # fmt: skip
        self.state = state
        self.label = label
        self.undo = undo
        self._can_undo = can_undo
        self._parent = parent
        state.record_changed.connect(self.refresh)
        save.clicked.connect(self.save_dialog)

    def refresh(self) -> None:
        self.label.setText(self.state.record.summary())
        self.undo.setEnabled(self._can_undo())

    def save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self._parent, "Save the object record", "", "CSV (*.csv)"
        )
        if path:
            self.state.record.save(path)
            show_info(f"Saved {len(self.state.record.objects)} object(s) to {path}.")
