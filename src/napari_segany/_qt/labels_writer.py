"""Writing objects into a napari Labels layer as one undoable step."""

from __future__ import annotations

import numpy as np
from napari.layers import Labels

from ..annotation.labels import next_label_id, objects_to_write


def write_new_objects(
    target: Labels, slice_key: tuple[int, ...], objects: np.ndarray, overwrite: bool = False
) -> tuple[int, int]:
    """Add ``objects`` to one plane of ``target`` as new ids (next free ones).

    objects: (H, W) object indices, 0 = none. Without ``overwrite`` only unlabeled pixels are
    written. The write is one entry in the layer's undo history (Ctrl+Z reverts it).
    Returns (number of objects written, first new id); ValueError when shapes differ.
    """
    plane = np.asarray(target.data[slice_key] if slice_key else target.data)
    first_id = next_label_id(np.asarray(target.data))
    (rows, cols), values = objects_to_write(plane, objects, first_id, overwrite=overwrite)
    if rows.size == 0:
        return 0, first_id
    indices = tuple(np.full(rows.shape, k) for k in slice_key) + (rows, cols)
    with target.block_history():
        target.data_setitem(indices, values.astype(target.data.dtype))
    return len(np.unique(values)), first_id
