"""Draining a generator of ``(done, total)`` steps: the house pattern for long work.

The same as ``napari_segany.progress.drain``; kept here so this subpackage depends only on the
package's stable names.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TypeVar

T = TypeVar("T")

ProgressCallback = Callable[[int, int], None]


def drain(
    steps: Generator[tuple[int, int], None, T], progress: ProgressCallback | None = None
) -> T:
    """Run ``steps`` to the end, passing each step to ``progress``, and return its result."""
    while True:
        try:
            done, total = next(steps)
        except StopIteration as finished:
            return finished.value
        if progress is not None:
            progress(done, total)
