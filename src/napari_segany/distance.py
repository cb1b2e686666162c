"""Exact Euclidean distance to the nearest feature pixel, fast when every pixel has one near.

Propagation puts its point prompts on the distance map of a mask's boundary, once per object
and plane. scipy's ``distance_transform_edt`` builds a full feature transform first (about
50 ns a pixel); a mask whose boundary is never far from any pixel, such as a ragged or
speckled one, needs much less. For each pixel, the nearest feature in its own row is an
upper bound on its distance, and features within ``r`` rows and columns are found with ``r``
shifted ORs and ``2r`` shifted minima of the rows' squared distances. Wherever the nearest
found is no farther than ``r + 1``, no feature outside the window can be nearer, so when that
holds for every pixel the map is exact. Otherwise (a big smooth object, a sparse boundary)
scipy's transform is used. Both take the square roots of the same integer squared distances,
so the maps are equal bit for bit.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# Reaches tried, in rows and columns either way; beyond the last, scipy's transform is faster
# (measured on 512 x 512 planes).
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
    # Too few features for all pixels to be near one: straight to scipy.
    if np.count_nonzero(features) * _SPARSE > features.size:
        for reach in _REACHES:
            squared = _squared_within(features, reach)
            # Features outside the window are at least reach + 1 away: the window's nearest is
            # the nearest wherever it is no farther than that.
            if int(squared.max()) <= (reach + 1) ** 2:
                # float32's square root of an integer below 2**24 is float64's rounded.
                return np.sqrt(squared.astype(np.float32))
    return ndimage.distance_transform_edt(~features).astype(np.float32)


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
