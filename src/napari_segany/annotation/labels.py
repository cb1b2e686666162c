"""Writing objects into label images: new ids that fit the image's dtype, and a choice of what
happens to pixels that are labeled already.

Ids never wrap: a uint8 layer holds ids up to 255, so when ``max + 1`` does not fit, the lowest
unused ids are taken, and when none is left the write is refused with a message that says how
to widen the layer. Without overwriting, existing objects are never changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..errors import LabelIdsExhausted


class CommitMode(str, Enum):
    """What a committed object does to pixels that already hold a label."""

    UNLABELED = "unlabeled"
    """Only unlabeled pixels are written: existing objects never change (the default)."""
    OVERWRITE = "overwrite"
    """The object is painted over whatever is there."""
    REPLACE = "replace"
    """The object under the first point is replaced: its old pixels are cleared and the new
    mask takes its id, over unlabeled pixels and that object's only (with no object under the
    point this is ``UNLABELED``)."""


COMMIT_MODE_LABELS = {
    CommitMode.UNLABELED: "New objects in unlabeled pixels",
    CommitMode.OVERWRITE: "Overwrite existing labels",
    CommitMode.REPLACE: "Replace the object under the first point",
}


def id_limit(dtype: np.dtype) -> int:
    """The largest id an integer (or bool) label dtype holds."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return 1
    if dtype.kind not in "iu":
        raise ValueError(f"Labels must be integers; got {dtype}.")
    return int(np.iinfo(dtype).max)


def new_label_ids(labels: np.ndarray, count: int, name: str = "the labels layer") -> np.ndarray:
    """``count`` ids not used in ``labels`` that fit its dtype, ascending.

    The ids after the largest one when they fit (the usual case), else the lowest unused ids,
    so a 0/255 uint8 mask still takes 254 new objects. LabelIdsExhausted when there are not
    enough.
    """
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    limit = id_limit(labels.dtype)
    top = int(labels.max(initial=0))
    if top + count <= limit:
        return np.arange(top + 1, top + count + 1, dtype=np.int64)
    used = np.zeros(limit + 1, dtype=bool) if limit <= 1 << 24 else None
    if used is not None:
        used[np.unique(labels)] = True
        free = np.flatnonzero(~used[1:]) + 1
    else:
        free = np.setdiff1d(np.arange(1, min(limit, top + count) + 1), np.unique(labels))
    if len(free) < count:
        raise LabelIdsExhausted(
            f"{name} holds {np.dtype(labels.dtype).name} ids, and only {len(free)} of its "
            f"{limit} ids are free, so {count} new object(s) do not fit. Convert the layer to a "
            "larger integer type (right-click it in the layer list > Convert datatype > uint16 "
            "or uint32), or commit into 'New labels layer'."
        )
    return free[:count].astype(np.int64)


def _check_same_shape(labels: np.ndarray, objects: np.ndarray) -> None:
    if labels.shape != objects.shape:
        raise ValueError(
            f"The labels layer has shape {labels.shape} but the image slice has shape "
            f"{objects.shape}: pick a labels layer made for this image."
        )


@dataclass(frozen=True)
class CommitPlan:
    """What committing objects into a labels image writes: (indices, values) in the form of
    numpy fancy indexing (ready for napari's undoable ``Labels.data_setitem``; values in the
    labels' dtype) and the id each written object got, in object order."""

    indices: tuple[np.ndarray, ...]
    values: np.ndarray
    ids: np.ndarray


def plan_commit(
    labels: np.ndarray,
    objects: np.ndarray,
    mode: CommitMode = CommitMode.UNLABELED,
    replaced: int = 0,
    all_labels: np.ndarray | None = None,
    name: str = "the labels layer",
) -> CommitPlan:
    """Which pixels of ``labels`` to set, and to what, to add ``objects`` as objects.

    labels: (H, W) integer image (or window) the objects go into; objects: (H, W) object
    indices, 0 = nothing, 1..K. Only objects that get at least one pixel take an id, so ids
    stay contiguous when a mask is empty or lies on labeled pixels. New ids come from
    :func:`new_label_ids` over ``all_labels`` (default: ``labels``), the whole layer whose ids
    must stay unique. replaced: with ``REPLACE``, the id under the first point: its old pixels
    are cleared and object 1 takes that id.
    """
    _check_same_shape(labels, objects)
    write = objects > 0
    if mode == CommitMode.UNLABELED:
        write &= labels == 0
    elif mode == CommitMode.REPLACE:
        write &= (labels == 0) | (labels == replaced) if replaced else labels == 0
    present = np.unique(objects[write])
    present = present[present > 0]
    replacing = mode == CommitMode.REPLACE and replaced > 0
    fresh = present[present != 1] if replacing else present
    ids = new_label_ids(labels if all_labels is None else all_labels, len(fresh), name)
    lookup = np.zeros(int(objects.max(initial=0)) + 1, dtype=np.int64)
    lookup[fresh] = ids
    if replacing:
        lookup[1] = replaced
    values = lookup[objects]
    if replacing:
        cleared = (labels == replaced) & ~write
        write |= cleared
        values[cleared] = 0
    rows, cols = np.nonzero(write)
    return CommitPlan((rows, cols), values[rows, cols].astype(labels.dtype), lookup[present])


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
