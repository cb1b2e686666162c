"""Model work on a worker thread, one job at a time, newest request first.

SAM's predictor holds one image at a time, so encoding and decoding must never overlap; a
decode requested while another waits replaces it, so the preview follows the latest prompts.
A job's work gets a ``should_stop()`` to call between its steps (the encoder calls it after
each block); a generator job can also be stopped between two yields. A finished job lets go of
its result at once, so nothing a job made stays alive after its callback.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from napari.qt.threading import GeneratorWorker, WorkerBase, create_worker
from qtpy.QtCore import QObject, Signal

from .connections import is_deleted

StopCheck = Callable[[], bool]


@dataclass(eq=False)
class Job:
    kind: str
    work: Callable[[StopCheck], Any] | None
    on_done: Callable[[Any], None] | None
    on_error: Callable[[Exception], None] | None
    on_yield: Callable[[Any], None] | None = None
    on_cancel: Callable[[], None] | None = None
    cancelled: bool = False
    outcome: dict[str, Any] = field(default_factory=dict)

    def release(self) -> None:
        """Drop the work, the callbacks and the outcome: a finished job holds nothing."""
        self.work = self.on_done = self.on_error = self.on_yield = self.on_cancel = None
        self.outcome = {}


class SerialJobs(QObject):
    """Runs jobs one after another on napari's thread pool; results return on the GUI thread.

    owner: the widget whose callbacks the jobs call; once it is deleted (napari closed) jobs
    end quietly, their callbacks skipped.
    """

    busy_changed = Signal(bool)

    def __init__(self, owner: QObject) -> None:
        super().__init__(owner)
        self._owner = owner
        self._queue: deque[Job] = deque()
        self._running: Job | None = None
        self._worker: WorkerBase | None = None
        self.closed = False

    @property
    def busy(self) -> bool:
        return self._running is not None

    @property
    def running_kind(self) -> str | None:
        return None if self._running is None else self._running.kind

    def submit(
        self,
        kind: str,
        work: Callable[[StopCheck], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        replace_queued: bool = True,
        on_yield: Callable[[Any], None] | None = None,
        on_cancel: Callable[[], None] | None = None,
    ) -> Job | None:
        """Queue ``work(should_stop)``; with ``replace_queued`` a waiting job of the same kind
        is dropped. Nothing is queued once the jobs are closed."""
        if self.closed:
            return None
        if replace_queued:
            self._queue = deque(j for j in self._queue if j.kind != kind)
        job = Job(kind, work, on_done, on_error, on_yield, on_cancel)
        self._queue.append(job)
        if self._running is None:
            self._start_next()
        return job

    def cancel_all(self) -> None:
        """Drop waiting jobs and stop the running one at its next step."""
        dropped, self._queue = list(self._queue), deque()
        for job in dropped:
            if job.on_cancel is not None and not self._gone():
                job.on_cancel()
            job.release()
        if self._running is not None:
            self._running.cancelled = True
            if self._worker is not None:
                self._worker.quit()

    def close(self) -> None:
        """Stop everything and call no callback again (the widget is going away)."""
        self.closed = True
        self.cancel_all()

    def wait(self, timeout_ms: int = 60000) -> None:
        """Block until running work ends (when the widget closes)."""
        if self._running is not None:
            WorkerBase.await_workers(timeout_ms)

    def _gone(self) -> bool:
        return self.closed or is_deleted(self._owner)

    def _start_next(self) -> None:
        if not self._queue or self._gone():
            self._running = None
            self._worker = None
            if not is_deleted(self):
                self.busy_changed.emit(False)
            return
        job = self._queue.popleft()
        self._running = job
        work = job.work

        def should_stop() -> bool:
            return job.cancelled or worker.abort_requested

        if inspect.isgeneratorfunction(work):

            def run():  # a generator too, so napari makes a GeneratorWorker of it
                return (yield from work(should_stop))

        else:

            def run():
                return work(should_stop)

        # Errors go to the job's own handler, which tells the user; nothing is re-raised.
        worker = create_worker(run, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda result, job=job: job.outcome.update(result=result))
        worker.errored.connect(lambda exc, job=job: job.outcome.update(error=exc))
        if isinstance(worker, GeneratorWorker):
            worker.yielded.connect(lambda value, job=job: self._step(job, value))
        worker.finished.connect(lambda job=job: self._finish(job))
        self._worker = worker
        self.busy_changed.emit(True)
        worker.start()

    def _step(self, job: Job, value: Any) -> None:
        if not job.cancelled and job.on_yield is not None and not self._gone():
            job.on_yield(value)

    def _finish(self, job: Job) -> None:
        try:
            if self._gone():
                return
            if job.cancelled:
                if job.on_cancel is not None:
                    job.on_cancel()
            elif "error" in job.outcome:
                job.on_error(job.outcome["error"])
            else:
                job.on_done(job.outcome.get("result"))
        finally:
            job.release()
            if self._running is job:
                self._start_next()
