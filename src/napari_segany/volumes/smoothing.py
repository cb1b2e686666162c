"""The distance map that micro-sam places its point prompts on, computed as it does.

micro-sam smooths the distance transform of a mask with bioimage-cpp's Gaussian filter
(:mod:`napari_segany.gaussian`, bit for bit) and puts its points on the maxima, so a point
moves when a value changes in its last bit.
"""

from __future__ import annotations

import numpy as np

from ..distance import feature_distance
from ..gaussian import gaussian_smooth


def outer_boundary(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: background pixels next to the mask (4-neighbours), as scikit-image's
    ``find_boundaries(mask, mode="outer")`` marks them for a binary mask (ten times faster)."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown & ~mask


def smoothed_distance(outside: np.ndarray) -> np.ndarray:
    """(H, W) float32: each pixel's Euclidean distance to the nearest ``outside`` pixel,
    smoothed with sigma 1. With no outside pixel the distance is measured as scipy measures it
    (to a virtual row above the image)."""
    return gaussian_smooth(feature_distance(outside), 1.0)
