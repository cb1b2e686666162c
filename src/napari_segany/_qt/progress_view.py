"""The progress bar and Cancel button of the running model work.

Every repaint recomposes the whole window through OpenGL, which on machines with software
OpenGL takes the cores the worker is using: an animated busy indicator made encoding 1.4x
slower there. So long stages report steps, and the bar moves at most once a second.
"""

from __future__ import annotations

import time

from qtpy.QtCore import QObject
from qtpy.QtWidgets import QProgressBar, QPushButton

from ..annotation.state import AnnotationState

DOWNLOADING = "Downloading model"
PROGRESS_INTERVAL_S = 1.0


class ProgressView(QObject):
    """Shows a stage with a known total as a bar, one without as a brief busy indicator, and
    the stage in the status line; hides both when the work is done.

    A QObject child of the widget, so that progress queued by a worker is dropped, not shown
    on deleted controls, when napari closes the widget.
    """

    def __init__(
        self, bar: QProgressBar, cancel: QPushButton, state: AnnotationState, parent: QObject
    ) -> None:
        super().__init__(parent)
        self.bar = bar
        self.cancel = cancel
        self.state = state
        self._shown: tuple[str, int, float] = ("", 0, 0.0)  # stage, total, when

    def step(self, stage: str, done: int, total: int) -> None:
        """A progress report from the worker."""
        if self.show(stage, done, total):
            self.state.set_status(stage[0].lower() + stage[1:] + "…")

    def busy_changed(self, busy: bool) -> None:
        if not busy:
            self.hide()

    def show(self, stage: str, done: int, total: int) -> bool:
        """Show a step; False when it was skipped to keep repaints rare."""
        now = time.monotonic()
        if (stage, total) == self._shown[:2] and 0 < done < total:
            if now - self._shown[2] < PROGRESS_INTERVAL_S:
                return False
        self._shown = (stage, total, now)
        self.bar.setVisible(True)
        self.cancel.setVisible(True)
        if total > 0:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * done / total))
            if stage == DOWNLOADING:
                self.bar.setFormat(f"{stage}: {done / 1e6:.0f} / {total / 1e6:.0f} MB")
            else:
                self.bar.setFormat(f"{stage}: {done} / {total}")
        else:
            self.bar.setRange(0, 0)  # busy indicator
            self.bar.setFormat(stage)
        return True

    def hide(self) -> None:
        self._shown = ("", 0, 0.0)
        self.bar.setVisible(False)
        self.cancel.setVisible(False)
