"""The widget's worker queue: one job at a time, the newest decode wins, Cancel stops work
between steps, and a finished or closed queue holds and calls nothing."""

from __future__ import annotations

import threading
import weakref

import pytest
from qtpy.QtWidgets import QWidget

from napari_segany._qt.jobs import SerialJobs

pytestmark = pytest.mark.gui


@pytest.fixture
def jobs(qtbot):
    owner = QWidget()
    qtbot.addWidget(owner)
    queue = SerialJobs(owner)
    yield queue
    queue.close()
    queue.wait()


def _idle(qtbot, jobs) -> None:
    qtbot.waitUntil(lambda: not jobs.busy, timeout=10000)


def test_jobs_run_one_at_a_time_and_a_waiting_decode_is_replaced(qtbot, jobs):
    gate, order = threading.Event(), []
    jobs.submit("encode", lambda stop: gate.wait(10) and "enc", order.append, pytest.fail)
    jobs.submit("decode", lambda stop: "old decode", order.append, pytest.fail)
    jobs.submit("decode", lambda stop: "new decode", order.append, pytest.fail)
    gate.set()
    _idle(qtbot, jobs)
    assert order == ["enc", "new decode"]


def test_cancel_stops_a_function_job_at_its_next_check(qtbot, jobs):
    started, steps, outcome = threading.Event(), [], []

    def work(should_stop):
        started.set()
        for i in range(1000):
            if should_stop():
                return "stopped"
            steps.append(i)
            threading.Event().wait(0.005)
        return "finished"

    jobs.submit("encode", work, outcome.append, pytest.fail, on_cancel=lambda: outcome.append("c"))
    qtbot.waitUntil(started.is_set, timeout=5000)
    jobs.cancel_all()
    _idle(qtbot, jobs)
    assert outcome == ["c"] and len(steps) < 1000


def test_cancel_stops_a_generator_job_between_yields(qtbot, jobs):
    yielded, outcome = [], []

    def work(should_stop):
        for i in range(1000):
            yield i
            threading.Event().wait(0.005)
        return "finished"

    jobs.submit(
        "everything", work, outcome.append, pytest.fail, on_yield=yielded.append,
        on_cancel=lambda: outcome.append("cancelled"),
    )  # fmt: skip
    qtbot.waitUntil(lambda: len(yielded) >= 2, timeout=5000)
    jobs.cancel_all()
    _idle(qtbot, jobs)
    assert outcome == ["cancelled"] and len(yielded) < 1000


def test_a_finished_job_lets_go_of_its_result(qtbot, jobs):
    class Big:
        pass

    results = []
    job = jobs.submit("decode", lambda stop: Big(), lambda r: results.append(weakref.ref(r)),
                      pytest.fail)  # fmt: skip
    _idle(qtbot, jobs)
    import gc

    gc.collect()
    assert results and results[0]() is None  # nothing keeps the result alive
    assert job.outcome == {} and job.work is None


def test_after_close_nothing_runs_and_no_callback_is_called(qtbot, jobs):
    gate, called = threading.Event(), []
    jobs.submit("encode", lambda stop: gate.wait(10), called.append, called.append)
    jobs.close()
    assert jobs.submit("decode", lambda stop: 1, called.append, called.append) is None
    gate.set()
    qtbot.wait(200)
    jobs.wait()
    assert called == []
