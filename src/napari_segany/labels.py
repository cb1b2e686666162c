"""Writing objects into label images: new ids, and only into unlabeled pixels unless asked."""

from __future__ import annotations

import numpy as np


def next_label_id(labels: np.ndarray) -> int:
    """The smallest id greater than every id in ``labels`` (1 for an empty image)."""
    return int(labels.max(initial=0)) + 1


def objects_to_write(
    labels: np.ndarray, objects: np.ndarray, first_id: int, overwrite: bool = False
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Which pixels of ``labels`` to set, and to what, to add ``objects`` as new ids.

    labels: (H, W) integer image the objects go into.
    objects: (H, W) integer image of the objects to add, 0 = nothing, 1..K = object index;
    object k becomes id ``first_id + k - 1``.
    Without ``overwrite`` only pixels that are 0 in ``labels`` are written, so existing
    objects are never changed. Returns (indices, values) in the form of numpy fancy indexing,
    ready for napari's undoable ``Labels.data_setitem``.
    """
    if labels.shape != objects.shape:
        raise ValueError(
            f"The labels layer has shape {labels.shape} but the image slice has shape "
            f"{objects.shape}: pick a labels layer made for this image."
        )
    write = objects > 0
    if not overwrite:
        write &= labels == 0
    rows, cols = np.nonzero(write)
    values = objects[rows, cols].astype(np.int64) + (first_id - 1)
    return (rows, cols), values
