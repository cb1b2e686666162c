"""Prompts as napari layers hold them -> the arrays :class:`Predictor` takes, for one slice.

Layers of an n-D image keep their prompts in n-D data coordinates: the leading coordinates
name the slice, the last two are (row, col) in that slice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SliceKey = tuple[int, ...]


def on_slice(coords: np.ndarray, slice_key: SliceKey) -> np.ndarray:
    """Which rows of ``coords`` (N, D) lie on the slice whose leading indices are ``slice_key``."""
    coords = np.asarray(coords, dtype=float)
    if coords.size == 0:
        return np.zeros(len(coords), dtype=bool)
    if not slice_key:
        return np.ones(len(coords), dtype=bool)
    lead = np.round(coords[:, : len(slice_key)]).astype(np.int64)
    return np.all(lead == np.asarray(slice_key, dtype=np.int64), axis=1)


def points_on_slice(
    coords: np.ndarray, positive: np.ndarray, slice_key: SliceKey
) -> tuple[np.ndarray, np.ndarray]:
    """Points of one slice: (N, D) coordinates and (N,) bools -> (n, 2) (row, col), (n,) 1/0."""
    coords = np.asarray(coords, dtype=float).reshape(-1, max(2, len(slice_key) + 2))
    keep = on_slice(coords, slice_key)
    labels = np.asarray(positive, dtype=bool)[keep].astype(np.int32)
    return coords[keep][:, -2:], labels


def rectangles_on_slice(shapes: Sequence[np.ndarray], slice_key: SliceKey) -> np.ndarray:
    """Rectangles (each (4, D) vertices, drawn in any direction) -> (K, 4) boxes of one slice.

    Boxes are (min_row, min_col, max_row, max_col); rectangles on other slices are skipped.
    """
    boxes = []
    for vertices in shapes:
        vertices = np.asarray(vertices, dtype=float)
        if vertices.ndim != 2 or vertices.shape[0] < 2 or not on_slice(vertices, slice_key).all():
            continue
        rc = vertices[:, -2:]
        boxes.append(np.concatenate([rc.min(axis=0), rc.max(axis=0)]))
    return np.array(boxes, dtype=float).reshape(-1, 4)
