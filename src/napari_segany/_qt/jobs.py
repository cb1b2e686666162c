"""Model work on a worker thread, one job at a time, newest request first.

SAM's predictor holds one image at a time, so encoding and decoding must never overlap; a
decode requested while another waits replaces it, so the preview follows the latest prompts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from napari.qt.threading import WorkerBase, create_worker
from qtpy.QtCore import QObject, Signal


@dataclass
class Job:
    kind: str
    work: Callable[[], Any]
    on_done: Callable[[Any], None]
    on_error: Callable[[Exception], None]
    cancelled: bool = False


class SerialJobs(QObject):
    """Runs jobs one after another on napari's thread pool; results return on the GUI thread."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: deque[Job] = deque()
        self._running: Job | None = None
        self._worker = None

    @property
    def busy(self) -> bool:
        return self._running is not None

    @property
    def running_kind(self) -> str | None:
        return None if self._running is None else self._running.kind

    def submit(
        self,
        kind: str,
        work: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        replace_queued: bool = True,
    ) -> Job:
        """Queue ``work``; with ``replace_queued`` a waiting job of the same kind is dropped."""
        if replace_queued:
            self._queue = deque(j for j in self._queue if j.kind != kind)
        job = Job(kind, work, on_done, on_error)
        self._queue.append(job)
        if self._running is None:
            self._start_next()
        return job

    def cancel_all(self) -> None:
        """Drop waiting jobs and ignore the result of the running one."""
        self._queue.clear()
        if self._running is not None:
            self._running.cancelled = True

    def wait(self, timeout_ms: int = 60000) -> None:
        """Block until running work ends (when the widget closes)."""
        if self._running is not None:
            WorkerBase.await_workers(timeout_ms)

    def _start_next(self) -> None:
        if not self._queue:
            self._running = None
            self._worker = None
            self.busy_changed.emit(False)
            return
        job = self._queue.popleft()
        self._running = job
        # Errors go to the job's own handler, which tells the user; nothing is re-raised.
        worker = create_worker(job.work, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda result, job=job: self._finish(job, result, None))
        worker.errored.connect(lambda exc, job=job: self._finish(job, None, exc))
        self._worker = worker
        self.busy_changed.emit(True)
        worker.start()

    def _finish(self, job: Job, result: Any, error: Exception | None) -> None:
        try:
            if not job.cancelled:
                if error is None:
                    job.on_done(result)
                else:
                    job.on_error(error)
        finally:
            if self._running is job:
                self._start_next()
