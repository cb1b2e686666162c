"""Disconnecting from napari events that may already be gone."""

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
