"""Model work on a worker thread, one job at a time, newest request first.

SAM's predictor holds one image at a time, so encoding and decoding must never overlap; a
decode requested while another waits replaces it, so the preview follows the latest prompts.
A job may be a generator function: what it yields is progress, and it can be cancelled
between two yields.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from napari.qt.threading import GeneratorWorker, WorkerBase, create_worker
from qtpy.QtCore import QObject, Signal


@dataclass
class Job:
    kind: str
    work: Callable[[], Any]
    on_done: Callable[[Any], None]
    on_error: Callable[[Exception], None]
    on_yield: Callable[[Any], None] | None = None
    on_cancel: Callable[[], None] | None = None
    cancelled: bool = False
    outcome: dict[str, Any] = field(default_factory=dict)


class SerialJobs(QObject):
    """Runs jobs one after another on napari's thread pool; results return on the GUI thread."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: deque[Job] = deque()
        self._running: Job | None = None
        self._worker: WorkerBase | None = None

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
        on_yield: Callable[[Any], None] | None = None,
        on_cancel: Callable[[], None] | None = None,
    ) -> Job:
        """Queue ``work``; with ``replace_queued`` a waiting job of the same kind is dropped."""
        if replace_queued:
            self._queue = deque(j for j in self._queue if j.kind != kind)
        job = Job(kind, work, on_done, on_error, on_yield, on_cancel)
        self._queue.append(job)
        if self._running is None:
            self._start_next()
        return job

    def cancel_all(self) -> None:
        """Drop waiting jobs; stop a running generator job at its next step, ignore others."""
        dropped, self._queue = list(self._queue), deque()
        for job in dropped:
            if job.on_cancel is not None:
                job.on_cancel()
        if self._running is not None:
            self._running.cancelled = True
            if isinstance(self._worker, GeneratorWorker):
                self._worker.quit()

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
        worker.returned.connect(lambda result, job=job: job.outcome.update(result=result))
        worker.errored.connect(lambda exc, job=job: job.outcome.update(error=exc))
        if isinstance(worker, GeneratorWorker) and job.on_yield is not None:
            worker.yielded.connect(
                lambda value, job=job: None if job.cancelled else job.on_yield(value)
            )
        worker.finished.connect(lambda job=job: self._finish(job))
        self._worker = worker
        self.busy_changed.emit(True)
        worker.start()

    def _finish(self, job: Job) -> None:
        try:
            if job.cancelled:
                if job.on_cancel is not None:
                    job.on_cancel()
            elif "error" in job.outcome:
                job.on_error(job.outcome["error"])
            else:
                job.on_done(job.outcome.get("result"))
        finally:
            if self._running is job:
                self._start_next()
