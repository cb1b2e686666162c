"""Interactive annotation without Qt: the session that owns the model, the evented state the
widget shows, prompts as napari layers hold them, writing objects into labels, and the record
of how long each object took."""

from __future__ import annotations

from .labels import CommitMode, plan_commit
from .prediction import Prediction
from .record import AnnotationRecord, ObjectRecord
from .session import InteractiveSession
from .state import AnnotationState

__all__ = [
    "AnnotationRecord",
    "AnnotationState",
    "CommitMode",
    "InteractiveSession",
    "ObjectRecord",
    "Prediction",
    "plan_commit",
]
