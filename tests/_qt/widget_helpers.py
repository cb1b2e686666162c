"""Waiting for the widget, and test images."""

from __future__ import annotations

import numpy as np


def wait_for_preview(qtbot, widget, timeout: int = 60000) -> np.ndarray:
    """Wait until the widget has decoded the current prompts and shows a preview."""
    qtbot.waitUntil(
        lambda: (
            widget.preview_objects() is not None
            and not widget.jobs.busy
            and not widget._decode_timer.isActive()
        ),
        timeout=timeout,
    )
    return widget.preview_objects()


def wait_idle(qtbot, widget, timeout: int = 60000) -> None:
    qtbot.wait(widget._decode_timer.interval() + 20)
    qtbot.waitUntil(
        lambda: not widget.jobs.busy and not widget._decode_timer.isActive(), timeout=timeout
    )


def textured_image(shape=(120, 150), seed: int = 0, dtype=np.uint8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = 128 + 90 * np.sin(rows / 11.0) * np.cos(cols / 7.0) + rng.normal(0, 15, shape)
    return np.clip(base, 0, 255).astype(dtype)
