"""The annotation as the widget shows it, apart from any widget: the current prediction and
candidate, what the model work is doing, and the record of committed objects.

Evented (psygnal), as napari-animation keeps its ``Animation`` model apart from its Qt
widgets: the widget observes these signals and calls these methods, and tests drive the state
without a viewer.
"""

from __future__ import annotations

from psygnal import Signal

from .prediction import Prediction
from .record import AnnotationRecord


class AnnotationState:
    """What is shown and what is going on, for one widget."""

    prediction_changed = Signal()
    """The prediction or the candidate shown changed."""
    status_changed = Signal(str)
    """The status line changed."""
    record_changed = Signal()
    """An object was committed (or the record was cleared)."""

    def __init__(self, record: AnnotationRecord | None = None) -> None:
        self.prediction: Prediction | None = None
        self.prediction_slice: tuple[int, ...] | None = None
        self.candidate_rank = 0
        self.status = "no image encoded yet"
        self.busy: str | None = None  # the model work running now, e.g. "encoding"
        self.record = record or AnnotationRecord()

    # ---- the prediction ------------------------------------------------------------------------

    def show(self, prediction: Prediction, slice_key: tuple[int, ...]) -> None:
        """A decode finished: show its best candidate (or the one the user cycled to)."""
        self.prediction = prediction
        self.prediction_slice = tuple(slice_key)
        self.prediction_changed.emit()

    def clear_prediction(self) -> None:
        if self.prediction is not None:
            self.prediction = None
            self.prediction_slice = None
            self.prediction_changed.emit()

    def prompts_edited(self) -> None:
        """New prompts: the next prediction starts again from SAM's best candidate."""
        self.candidate_rank = 0

    def next_candidate(self) -> str | None:
        """Show the next of a single click's candidates; else why not (for the user)."""
        if self.busy:
            return f"{self.busy[0].upper()}{self.busy[1:]}…: wait until it is done."
        p = self.prediction
        if p is None or not p.multimask:
            return "Candidate masks exist for a single click only."
        self.candidate_rank = (self.candidate_rank + 1) % p.masks.shape[1]
        self.prediction_changed.emit()
        return None

    def displayed_candidate(self) -> int | None:
        """Index of the candidate shown for a single click, else None."""
        p = self.prediction
        return None if p is None or not p.multimask else p.candidate(self.candidate_rank)

    def describe(self) -> str:
        p = self.prediction
        return "–" if p is None else p.describe(self.candidate_rank)

    # ---- status --------------------------------------------------------------------------------

    def set_status(self, text: str) -> None:
        self.status = text
        self.status_changed.emit(text)

    def set_busy(self, stage: str | None) -> None:
        """``stage`` (e.g. "encoding") while model work runs; None when it is done."""
        self.busy = stage

    def commit_refusal(self) -> str | None:
        """Why a commit cannot happen now, or None."""
        if self.busy and self.prediction is None:
            return f"{self.busy[0].upper()}{self.busy[1:]}…: wait, then commit."
        if self.prediction is None:
            return "Nothing to commit: click on an object or draw a box first."
        if len(self.prediction.empty(self.candidate_rank)) == self.prediction.n_objects:
            return "Nothing to commit: SAM's mask is empty. Move the prompts or add points."
        return None

    def committed(self, ids, slice_key: tuple[int, ...], source: str) -> None:
        self.record.commit(ids, slice_key, source)
        self.record_changed.emit()

    def added_automatically(self, ids, slice_key: tuple[int, ...], seconds: float) -> None:
        self.record.add_automatic(ids, slice_key, seconds)
        self.record_changed.emit()
