"""Pixel loops compiled with numba, where the same loop in Python would take seconds."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def compiled(function: F) -> F:
    """``function`` compiled by numba (cached on disk, without the GIL), or ``function`` itself
    where numba is missing: the same answer, slowly."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency; this keeps imports working
        return function
    return numba.njit(cache=True, nogil=True)(function)
