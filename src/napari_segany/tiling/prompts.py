"""One object's prompts in whole-image pixels: checked once, then moved into a tile or window.

Points are (row, col) and boxes (min_row, min_col, max_row, max_col) in image pixels, where
pixel (r, c) covers [r - 0.5, r + 0.5] x [c - 0.5, c + 0.5], as
:meth:`napari_segany.Predictor.predict` takes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..prompt_checks import check_boxes, check_points
from .grid import Box


@dataclass(frozen=True)
class Prompt:
    """points: (N, 2) float64 (row, col) or None; labels: (N,) int32 (1 foreground, 0
    background) or None; box: (4,) float64 (min_row, min_col, max_row, max_col) or None."""

    points: np.ndarray | None
    labels: np.ndarray | None
    box: np.ndarray | None

    def extent(self) -> tuple[float, float, float, float]:
        """(min_row, min_col, max_row, max_col) of every point and box corner, inclusive."""
        corners = []
        if self.points is not None:
            corners.append(self.points)
        if self.box is not None:
            corners.append(self.box.reshape(2, 2))
        if not corners:
            raise ValueError("A prompt needs points or a box to say where the object is.")
        every = np.concatenate(corners)
        lo, hi = every.min(axis=0), every.max(axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    def in_frame(self, frame: Box) -> dict[str, Any]:
        """Keyword arguments of ``Predictor.predict`` for the image ``frame`` of the whole."""
        offset = np.array([frame[0], frame[1]], dtype=np.float64)
        return {
            "points": None if self.points is None else self.points - offset,
            "labels": self.labels,
            "box": None if self.box is None else self.box - np.tile(offset, 2),
        }

    def inside(self, frame: Box) -> bool:
        """Whether every point and box corner lies on the pixels of ``frame``."""
        r0, c0, r1, c1 = self.extent()
        return (
            r0 >= frame[0] - 0.5
            and c0 >= frame[1] - 0.5
            and (r1 <= frame[2] - 0.5 and c1 <= frame[3] - 0.5)
        )


def checked_prompts(
    points: np.ndarray | None,
    labels: np.ndarray | None,
    box: np.ndarray | None,
    image_shape: tuple[int, int],
) -> tuple[list[Prompt], bool]:
    """Validated prompts, one per object, and whether ``box`` was a (K, 4) batch.

    A (K, 4) box gives K objects that share the points. ValueError says what was wrong, with
    the untiled predictor's messages.
    """
    coords, point_labels = check_points(points, labels, image_shape)
    boxes, batched = check_boxes(box, image_shape)
    if boxes is None:
        if coords is None:
            raise ValueError(
                "No prompt given: pass points (with labels) or a box. On a tiled image a "
                "mask_input alone says nothing about where the object is."
            )
        return [Prompt(coords, point_labels, None)], False
    return [Prompt(coords, point_labels, b) for b in boxes], batched
