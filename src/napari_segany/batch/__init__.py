"""Segment or encode whole experiments: files, folders and stacks, as dask tasks, locally or on
a dask.distributed cluster (see :mod:`.run`). Needs the ``batch`` extra (dask.distributed)."""

from __future__ import annotations

from .run import embed_files, segment_files
from .summary import BatchSummary, InputResult

__all__ = ["BatchSummary", "InputResult", "embed_files", "segment_files"]
