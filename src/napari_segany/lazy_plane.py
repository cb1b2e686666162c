"""One 2-D plane of a lazy n-D array (dask, zarr, a pyramid's full-resolution level), read only
where it is sliced.

The widget hands the displayed plane to the session as one of these when the layer's data is
not a numpy array: a tiled slice then reads a tile's block at a time, on the worker thread,
instead of the whole plane (a 20000 x 20000 level is 400 MB) on the GUI thread at every click.
Work that needs the whole plane (encoding it untiled) reads it through ``np.asarray``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class LazyPlane:
    """``data[key]`` without reading it: ``shape``, ``dtype`` and ``ndim`` of the plane,
    ``plane[index]`` reads (and returns as numpy) only the indexed block.

    data: any array with ``shape``, ``dtype`` and numpy-style indexing; key: its leading
    indices, one per axis before the plane's (H, W) or (H, W, C).
    """

    def __init__(self, data: Any, key: tuple[int, ...] = ()) -> None:
        self.data, self.key = data, tuple(int(k) for k in key)
        self.shape = tuple(int(s) for s in data.shape[len(self.key) :])
        self.dtype = np.dtype(data.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __getitem__(self, index: Any) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        return np.asarray(self.data[self.key + index])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        plane = np.asarray(self.data[self.key] if self.key else self.data[...])
        return plane if dtype is None else plane.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"LazyPlane({type(self.data).__name__}, key={self.key}, shape={self.shape})"
