"""Keyboard shortcuts of the Segment Anything widget (one table, shown in the widget and README)."""

from __future__ import annotations

from collections.abc import Callable

# action -> (napari key binding, what it does)
KEYS: dict[str, tuple[str, str]] = {
    "point_tool": ("Shift-P", "click to add points (the Point tool)"),
    "box_tool": ("Shift-B", "drag to draw boxes (the Box tool)"),
    "toggle_point_mode": ("N", "switch new points between positive and negative"),
    "next_candidate": ("K", "show the next of SAM's 3 candidate masks for a single click"),
    "commit": ("Shift-C", "commit the preview into the labels layer as new objects"),
    "clear": ("Shift-X", "discard the prompts and the preview on this slice"),
    "propagate": ("Shift-G", "carry the preview through the slices of a volume or time-lapse"),
}


def shortcut_help() -> str:
    """The key table as short lines for a tooltip or label."""
    return "\n".join(f"{key}: {text}" for key, text in KEYS.values())


def bind_keys(viewer, actions: dict[str, Callable[[], None]]) -> None:
    """Bind each action's key of :data:`KEYS` in the viewer to ``actions[action]()``."""
    for action, func in actions.items():
        viewer.bind_key(KEYS[action][0], lambda v, func=func: func(), overwrite=True)


def unbind_keys(viewer) -> None:
    for key, _ in KEYS.values():
        viewer.bind_key(key, None)
