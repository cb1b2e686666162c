"""Offline sample images: scikit-image ships them, so they open without a network."""

from __future__ import annotations

from typing import Any

LayerTuple = tuple[Any, dict[str, Any], str]


def cell_sample() -> list[LayerTuple]:
    """A phase-contrast cell, grayscale uint8 (660 x 550)."""
    from skimage import data

    return [(data.cell(), {"name": "cell"}, "image")]


def immunohistochemistry_sample() -> list[LayerTuple]:
    """An immunohistochemistry slide crop, RGB uint8 (512 x 512 x 3)."""
    from skimage import data

    return [(data.immunohistochemistry(), {"name": "immunohistochemistry", "rgb": True}, "image")]
