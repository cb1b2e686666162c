"""Where a propagation's answer goes: the caller's array or a new one, in the volume's layout."""

from __future__ import annotations

from typing import Any

import numpy as np

from .seeds import ObjectSeeds
from .slices import PlaneStack


def result_array(
    out: np.ndarray | None, stack: PlaneStack, objects: list[ObjectSeeds], single: bool, seeds: Any
) -> np.ndarray:
    """The array the result is written into: ``out`` (checked), else a new one — bool for a
    single object, else the seeds labels' dtype or the smallest signed integer for the ids."""
    shape = stack.layout_shape()
    if out is None:
        if single:
            dtype = np.dtype(bool)
        elif isinstance(seeds, np.ndarray) and seeds.dtype.kind in "iu":
            dtype = seeds.dtype
        else:
            dtype = np.dtype(np.int32 if objects[-1].object_id < 2**31 else np.int64)
        return np.zeros(shape, dtype)
    if not isinstance(out, np.ndarray) or out.shape != shape:
        raise ValueError(
            f"out must be a numpy array of the volume's shape without colour, {shape}; got "
            f"{getattr(out, 'shape', type(out).__name__)}."
        )
    if not (out.dtype.kind in "iu" or (single and out.dtype == np.bool_)):
        raise ValueError(f"out must hold integer labels (bool for one object); got {out.dtype}.")
    if out.dtype.kind in "iu" and objects[-1].object_id > np.iinfo(out.dtype).max:
        raise ValueError(f"out's dtype {out.dtype} cannot hold id {objects[-1].object_id}.")
    return out


def single_or_many(
    result: np.ndarray, ranges: dict[int, tuple[int, int]], single: bool
) -> tuple[np.ndarray, Any]:
    """(bool mask, (first, last)) for a single object; (labels, {id: (first, last)}) else."""
    if single:
        mask = result if result.dtype == np.bool_ else result != 0
        return mask, ranges[1]
    return result, ranges
