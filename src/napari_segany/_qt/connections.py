"""Disconnecting from napari events that may already be gone, and telling whether a Qt object
still exists (napari may delete the dock widget while a worker is still running)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def disconnect_all(connections: Iterable[tuple[Any, Callable]]) -> None:
    """Disconnect each (emitter, slot) pair, skipping pairs that are no longer connected.

    The viewer or layer may be closing, or the slot may never have been connected: neither
    should stop the rest from being disconnected.
    """
    for emitter, slot in connections:
        try:
            emitter.disconnect(slot)
        except (TypeError, ValueError, RuntimeError):
            pass


def is_deleted(obj: Any) -> bool:
    """Whether the C++ side of a Qt object has been deleted."""
    try:
        from qtpy import sip

        return sip.isdeleted(obj)
    except ImportError:  # PySide
        from qtpy import shiboken

        return not shiboken.isValid(obj)
