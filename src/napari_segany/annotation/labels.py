"""Writing objects into label images: new ids, and only into unlabeled pixels unless asked."""

from __future__ import annotations

import numpy as np


def next_label_id(labels: np.ndarray) -> int:
    """The smallest id greater than every id in ``labels`` (1 for an empty image)."""
    return int(labels.max(initial=0)) + 1


def _check_same_shape(labels: np.ndarray, objects: np.ndarray) -> None:
    if labels.shape != objects.shape:
        raise ValueError(
            f"The labels layer has shape {labels.shape} but the image slice has shape "
            f"{objects.shape}: pick a labels layer made for this image."
        )


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
    _check_same_shape(labels, objects)
    write = objects > 0
    if not overwrite:
        write &= labels == 0
    rows, cols = np.nonzero(write)
    values = objects[rows, cols].astype(np.int64) + (first_id - 1)
    return (rows, cols), values


# A mask counts as a new object in "only unlabeled regions" mode when at least this share of
# its pixels is still unlabeled; the rest of it (already labeled) is left as it was.
MOSTLY_UNLABELED = 0.5


def new_objects_in_unlabeled(
    labels: np.ndarray, objects: np.ndarray, min_unlabeled: float = MOSTLY_UNLABELED
) -> np.ndarray:
    """Keep only the objects that lie mostly in unlabeled pixels, renumbered 1..K.

    labels: (H, W) existing label image; objects: (H, W) object indices (0 = none), e.g. from
    ``masks_to_labels``. Returns an (H, W) int32 object image of the kept objects, restricted
    to pixels that are 0 in ``labels``.
    """
    _check_same_shape(labels, objects)
    free = labels == 0
    ids = objects.ravel()
    n = int(ids.max(initial=0)) + 1
    total = np.bincount(ids, minlength=n)
    unlabeled = np.bincount(ids, weights=free.ravel(), minlength=n)
    keep = (total > 0) & (unlabeled >= min_unlabeled * np.maximum(total, 1))
    keep[0] = False
    renumber = np.zeros(n, dtype=np.int32)
    renumber[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return np.where(free, renumber[objects], 0).astype(np.int32)
