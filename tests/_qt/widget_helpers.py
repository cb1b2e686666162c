"""Driving the widget as a user does (clicks on the canvas, boxes dragged, keys), waiting for
it, and test images.

Clicks and drags go through napari's own mouse-callback dispatch to the viewer's active
layer, with the events vispy would send: a click on the wrong layer does what it would do for
a user, nothing.
"""

from __future__ import annotations

import numpy as np


def _event(viewer, kind: str, world, pos=(0.0, 0.0), dragging: bool = False):
    from napari.utils._test_utils import read_only_mouse_event

    return read_only_mouse_event(
        type=kind, is_dragging=dragging, button=1, position=tuple(world),
        pos=np.asarray(pos, dtype=float), dims_displayed=list(viewer.dims.displayed),
        view_direction=None,
    )  # fmt: skip


def click(viewer, row: float, col: float, lead: tuple | None = None) -> None:
    """A left click at data position (lead..., row, col) of the active layer; lead defaults
    to the displayed slice, as on the canvas."""
    from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks

    layer = viewer.layers.selection.active
    if lead is None:
        lead = tuple(int(s) for s in viewer.dims.current_step[: layer.ndim - 2])
    world = layer.data_to_world([*lead, row, col])
    mouse_press_callbacks(layer, _event(viewer, "mouse_press", world))
    mouse_release_callbacks(layer, _event(viewer, "mouse_release", world))


def drag(viewer, start: tuple, stop: tuple, lead: tuple = ()) -> None:
    """A left-button drag from data position ``start`` to ``stop`` (row, col) on the active
    layer: in the Box tool, a rectangle."""
    from napari.utils.interactions import (
        mouse_move_callbacks,
        mouse_press_callbacks,
        mouse_release_callbacks,
    )

    layer = viewer.layers.selection.active
    a = layer.data_to_world([*lead, *start])
    b = layer.data_to_world([*lead, *stop])
    mouse_press_callbacks(layer, _event(viewer, "mouse_press", a))
    for t in np.linspace(0.0, 1.0, 5)[1:]:
        world = np.asarray(a) + t * (np.asarray(b) - np.asarray(a))
        pos = (100 * t, 100 * t)
        mouse_move_callbacks(layer, _event(viewer, "mouse_move", world, pos, dragging=True))
    mouse_release_callbacks(layer, _event(viewer, "mouse_release", b, (100, 100)))


def press(viewer, key: str) -> None:
    """Run the viewer's key binding as napari does on a key press."""
    from app_model.types import KeyBinding

    binding = KeyBinding.from_str(key.replace("-", "+"))
    func = viewer.keymap.get(binding) or viewer.keymap.get(key)
    assert func is not None, f"no key binding for {key}"
    func(viewer)


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


def gate_session_models(monkeypatch, gate) -> None:
    """``gate.install(model)`` on every model the widget's session loads (a gate holds its
    encoder at a known point, so a test can act while an encoding is under way)."""
    from napari_segany.annotation.session import InteractiveSession

    original = InteractiveSession.ensure_model

    def ensure_model(self, progress=None):
        predictor = original(self, progress)
        gate.install(predictor.model)
        return predictor

    monkeypatch.setattr(InteractiveSession, "ensure_model", ensure_model)
