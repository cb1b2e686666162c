"""Exact Euclidean distance to the nearest feature pixel, fast when every pixel has one near.

Propagation puts its point prompts on the distance map of a mask's boundary, once per object
and plane. scipy's ``distance_transform_edt`` builds a full feature transform first (about
50 ns a pixel); a mask whose boundary is never far from any pixel, such as a ragged or
speckled one, needs much less. For each pixel, the nearest feature in its own row is an
upper bound on its distance, and features within ``r`` rows and columns are found with ``r``
shifted ORs and ``2r`` shifted minima of the rows' squared distances. Wherever the nearest
found is no farther than ``r + 1``, no feature outside the window can be nearer, so when that
holds for every pixel the map is exact. Otherwise (a big smooth object, a sparse boundary) a
compiled two-pass exact transform runs: distances down each column, then the lower envelope
of each row's parabolas (Meijster's), a third to a half of scipy's time. All
take the square roots of the same integer squared distances, so the maps equal scipy's bit
for bit.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .compiled import compiled

# Reaches tried, in rows and columns either way; beyond the last, the full transform is
# faster (measured on 512 x 512 planes).
_REACHES = (4, 8)
# A row distance meaning "farther than the reach": above every reach, and its square plus a
# reach's fits in uint16.
_FAR = 200
# Fewer than one feature in this many pixels leaves some pixel farther than the last reach.
_SPARSE = 1024


def feature_distance(features: np.ndarray) -> np.ndarray:
    """(H, W) bool -> (H, W) float32: each pixel's Euclidean distance to the nearest True pixel
    (0 on them), equal to ``scipy.ndimage.distance_transform_edt(~features)`` in float32,
    including its answer for an image without any True pixel."""
    features = np.asarray(features, dtype=bool)
    if features.ndim != 2:
        raise ValueError(f"feature_distance takes a 2-D mask; got shape {features.shape}.")
    count = np.count_nonzero(features)
    if count == 0:  # scipy's answer: the distance to a virtual row above the image
        return ndimage.distance_transform_edt(~features).astype(np.float32)
    # Too few features for all pixels to be near one: straight to the full transform.
    if count * _SPARSE > features.size:
        for reach in _REACHES:
            squared = _squared_within(features, reach)
            # Features outside the window are at least reach + 1 away: the window's nearest is
            # the nearest wherever it is no farther than that.
            if int(squared.max()) <= (reach + 1) ** 2:
                # float32's square root of an integer below 2**24 is float64's rounded.
                return np.sqrt(squared.astype(np.float32))
    return np.sqrt(_squared_distances(features).astype(np.float64)).astype(np.float32)


def _squared_within(features: np.ndarray, reach: int) -> np.ndarray:
    """(H, W) uint16: squared distance to the nearest True pixel at most ``reach`` columns and
    ``reach`` rows away (at least ``_FAR ** 2`` where there is none)."""
    # Columns to the nearest feature in the same row: the number of growing windows that
    # still hold none. Shifts along rows then rows of whole blocks, the fast axis for numpy.
    found = features.copy()
    count = np.zeros(features.shape, np.uint16)
    for k in range(1, reach + 1):
        np.add(count, ~found, out=count, casting="unsafe")
        found[:, k:] |= features[:, :-k]
        found[:, :-k] |= features[:, k:]
    row = np.where(found, count, np.uint16(_FAR))
    squared = row * row
    best = squared.copy()
    for s in range(1, min(reach, features.shape[0] - 1) + 1):
        step = np.uint16(s * s)
        np.minimum(best[s:], squared[:-s] + step, out=best[s:])
        np.minimum(best[:-s], squared[s:] + step, out=best[:-s])
    return best


def _squared_distances_py(features: np.ndarray) -> np.ndarray:
    """(H, W) bool with at least one True pixel -> (H, W) int64 squared distances to the
    nearest True pixel, exact."""
    h, w = features.shape
    far = h + w  # farther than any pixel of the image: a column without features
    column = np.empty((h, w), np.int64)  # rows to the nearest feature in the same column
    run = np.full(w, far, np.int64)
    for y in range(h):  # down, then up, a row at a time (rows are contiguous)
        for x in range(w):
            if features[y, x]:
                run[x] = 0
            elif run[x] < far:
                run[x] += 1
            column[y, x] = run[x]
    run[:] = far
    for y in range(h - 1, -1, -1):
        for x in range(w):
            if features[y, x]:
                run[x] = 0
            elif run[x] < far:
                run[x] += 1
            if run[x] < column[y, x]:
                column[y, x] = run[x]
    out = np.empty((h, w), np.int64)
    site = np.empty(w, np.int64)  # the columns whose parabolas form the lower envelope
    start = np.empty(w, np.int64)  # where each one starts to be the lowest
    for y in range(h):
        g = column[y]
        top = 0
        site[0] = 0
        start[0] = 0
        for u in range(1, w):
            gu = g[u] * g[u]
            while top >= 0:
                s = site[top]
                if (start[top] - s) ** 2 + g[s] * g[s] <= (start[top] - u) ** 2 + gu:
                    break
                top -= 1
            if top < 0:
                top = 0
                site[0] = u
                start[0] = 0
            else:
                s = site[top]
                # The first column where u's parabola is below s's (floor division).
                begin = (u * u - s * s + gu - g[s] * g[s]) // (2 * (u - s)) + 1
                if begin < w:
                    top += 1
                    site[top] = u
                    start[top] = begin
        for x in range(w - 1, -1, -1):
            s = site[top]
            out[y, x] = (x - s) ** 2 + g[s] * g[s]
            if x == start[top]:
                top -= 1
    return out


_squared_distances = compiled(_squared_distances_py)
