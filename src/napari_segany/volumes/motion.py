"""micro-sam's motion model for time-lapses: where an object's mask is expected next.

The model is the move of the mask's centre of mass between the last two frames, smoothed
exponentially (``motion = s * motion + (1 - s) * move``); it starts on an object's third frame.
The previous mask is shifted by it (nearest pixel, zeros coming in) before its prompts are
derived, so a cell that drifts is prompted where it is going.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage


def centre_of_mass(mask: np.ndarray) -> np.ndarray:
    """(2,) float64 (row, col) mean of the mask's pixels; NaN for an empty mask (micro-sam
    then carries NaN on, and so does this, to stay with it)."""
    rows, cols = np.nonzero(mask)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the empty mask's mean
        return np.array([np.mean(rows), np.mean(cols)])


def update_motion(motion: np.ndarray | None, move: np.ndarray, smoothing: float) -> np.ndarray:
    """The motion after a frame whose centre moved by ``move``: the move itself at first."""
    if motion is None:
        return move
    return smoothing * motion + (1 - smoothing) * move


def shift_mask(mask: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """(H, W) bool mask moved by ``motion`` (row, col) pixels, rounded to the nearest pixel."""
    moved = np.zeros(mask.shape, np.uint8)  # scipy does not write bool
    ndimage.shift(mask.astype(np.uint8), motion, output=moved, order=0, prefilter=False)
    return moved.astype(bool)
