"""Long work as generators: they yield ``(done, total)`` steps and return their result.

The widget runs such a generator on a worker thread, shows each step and cancels between two
of them; a script calls the plain function that :func:`drain` makes of it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TypeVar

ProgressCallback = Callable[[int, int], None]
"""``progress(done, total)``; total is 0 when it is not known."""

T = TypeVar("T")


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
