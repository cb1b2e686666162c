"""Long loops keep freed memory for reuse: a large block freed inside
``reusing_freed_memory`` comes back without the system faulting in fresh pages, and outside it
the allocator behaves as before (it hands such blocks back)."""

from __future__ import annotations

import resource
import threading

import numpy as np
import pytest

from napari_segany import heap

pytestmark = pytest.mark.skipif(not heap.supported(), reason="glibc's allocator only")

BLOCK = 96 << 20  # bytes: above glibc's largest dynamic mmap threshold (32 MiB)


def faults_of_a_second_block() -> int:
    """Page faults taken by filling a large block after one of the same size was freed."""
    first = np.ones(BLOCK // 4, np.float32)
    del first
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    second = np.ones(BLOCK // 4, np.float32)
    del second
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_freed_blocks_are_reused_inside_and_handed_back_outside():
    assert faults_of_a_second_block() > 0
    with heap.reusing_freed_memory():
        assert faults_of_a_second_block() == 0
    assert faults_of_a_second_block() > 0


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
        assert faults_of_a_second_block() == 0
    assert faults_of_a_second_block() == 0  # the other thread is still inside
    leave.set()
    thread.join()
    assert faults_of_a_second_block() > 0


def test_an_error_inside_still_restores_the_allocator():
    with pytest.raises(RuntimeError):
        with heap.reusing_freed_memory():
            raise RuntimeError("stop")
    assert faults_of_a_second_block() > 0
