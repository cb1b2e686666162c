"""Geometry between the user's image and SAM's square model input (longest side resized), and
which coordinates lie on an image."""

from __future__ import annotations

import numpy as np
from PIL import Image


def resized_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) after scaling the longest side to ``long_side``, rounded as the reference does.

    A side that would round to 0 pixels (images over 2048 times longer than wide) keeps 1.
    """
    scale = long_side / max(height, width)
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))


def resize_longest_side(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """(H, W, 3) or (H, W) uint8 -> (h, w, 3) or (h, w) uint8 with PIL's antialiased bilinear
    filter (which resizes each channel alike, so grayscale may be resized before it is
    replicated)."""
    h, w = resized_shape(rgb.shape[0], rgb.shape[1], long_side)
    return np.array(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))


def rowcol_to_model_xy(
    points: np.ndarray, original_size: tuple[int, int], long_side: int
) -> np.ndarray:
    """(..., 2) (row, col) image pixels -> (..., 2) (x, y) model-input pixels, float32."""
    old_h, old_w = original_size
    new_h, new_w = resized_shape(old_h, old_w, long_side)
    xy = np.empty(points.shape, dtype=np.float64)
    xy[..., 0] = points[..., 1] * (new_w / old_w)
    xy[..., 1] = points[..., 0] * (new_h / old_h)
    return xy.astype(np.float32)


def inside_image(coords: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Which (N, 2) (row, col) coordinates lie on an image of ``shape``, pixel edges included.

    Pixel (r, c) covers [r - 0.5, r + 0.5] x [c - 0.5, c + 0.5]; NaN counts as outside.
    """
    coords = np.asarray(coords, dtype=float).reshape(-1, 2)
    return (
        (coords[:, 0] >= -0.5)
        & (coords[:, 0] <= shape[0] - 0.5)
        & (coords[:, 1] >= -0.5)
        & (coords[:, 1] <= shape[1] - 0.5)
    )


def clip_to_image(coords: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Clamp (..., 2) (row, col) coordinates onto an image of ``shape`` (pixel edges included)."""
    limits = np.array([shape[0] - 0.5, shape[1] - 0.5])
    return np.clip(coords, -0.5, limits)
