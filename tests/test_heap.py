"""Long loops keep freed memory for reuse: a large block freed during one plane's work comes
back for the next without the system faulting in fresh pages, the memory is handed back when
the loop ends, and no suspended or abandoned loop leaves the process keeping it."""

from __future__ import annotations

import os
import resource
import threading

import numpy as np
import pytest

from napari_segany import heap

pytestmark = pytest.mark.skipif(not heap.supported(), reason="glibc's allocator only")

BLOCK = 96 << 20  # bytes: above glibc's largest dynamic mmap threshold (32 MiB)


def faults_of_a_block() -> int:
    """Page faults taken by filling (and freeing) a large block."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.ones(BLOCK // 4, np.float32)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def resident() -> int:
    """Bytes of this process in memory."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_block_freed_in_one_plane_is_reused_in_the_next_then_handed_back():
    with heap.reusing_freed_memory():
        faults_of_a_block()
    with heap.reusing_freed_memory():
        assert faults_of_a_block() == 0
    kept = resident()
    heap.release_freed_memory()
    assert kept - resident() > BLOCK // 2  # the process does not keep its peak
    assert not heap.in_use()


def test_nested_and_concurrent_uses_end_together():
    entered, leave = threading.Event(), threading.Event()

    def other():
        with heap.reusing_freed_memory():
            entered.set()
            leave.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    entered.wait(10)
    with heap.reusing_freed_memory():
        with heap.reusing_freed_memory():
            pass
        faults_of_a_block()
    assert heap.in_use()  # the other thread is still inside
    assert faults_of_a_block() == 0
    leave.set()
    thread.join()
    assert not heap.in_use()


def test_an_error_inside_still_ends_the_scope():
    with pytest.raises(RuntimeError):
        with heap.reusing_freed_memory():
            raise RuntimeError("stop")
    assert not heap.in_use()
