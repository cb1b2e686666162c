"""Writing objects into a napari Labels layer as one undoable step."""

from __future__ import annotations

import numpy as np
from napari.layers import Labels

from ..annotation.labels import CommitMode, plan_commit


def write_objects(
    target: Labels,
    slice_key: tuple[int, ...],
    objects: np.ndarray,
    offset: tuple[int, int] = (0, 0),
    mode: CommitMode = CommitMode.UNLABELED,
    replaced: int = 0,
) -> np.ndarray:
    """Add ``objects`` to one plane of ``target`` as new objects; returns the ids written.

    objects: (h, w) object indices (0 = none) of the window of the plane that starts at
    ``offset``; only that window is read and written, whatever the plane's size. The write is
    one entry in the layer's undo history (Ctrl+Z reverts it). ValueError when shapes differ,
    LabelIdsExhausted when no id of the layer's dtype is free.
    """
    data = target.data
    plane = data[slice_key] if slice_key else data
    h, w = objects.shape
    r0, c0 = offset
    if mode == CommitMode.REPLACE and replaced:
        # The replaced object may reach beyond the new mask: work on the whole plane.
        whole = np.zeros(plane.shape, dtype=objects.dtype)
        whole[r0 : r0 + h, c0 : c0 + w] = objects
        objects, (r0, c0) = whole, (0, 0)
        h, w = objects.shape
    if r0 < 0 or c0 < 0 or r0 + h > plane.shape[0] or c0 + w > plane.shape[1]:
        raise ValueError(
            f"Labels layer '{target.name}' has planes of shape {tuple(plane.shape)}, smaller "
            "than the image: pick a labels layer made for this image."
        )
    window = np.asarray(plane[r0 : r0 + h, c0 : c0 + w])
    plan = plan_commit(window, objects, mode, replaced, all_labels=data, name=f"'{target.name}'")
    rows, cols = plan.indices
    if rows.size == 0:
        return plan.ids[:0]
    indices = tuple(np.full(rows.shape, k) for k in slice_key) + (rows + r0, cols + c0)
    with target.block_history():
        target.data_setitem(indices, plan.values)
    return plan.ids


def label_under_first_point(
    target: Labels, slice_key: tuple[int, ...], points: np.ndarray, labels: np.ndarray
) -> int:
    """The id under the first positive point (N, 2) (row, col) in ``target``'s plane, 0 if
    there is none (the object a "replace" commit redraws)."""
    if not len(points) or not np.any(labels > 0):
        return 0
    r, c = np.round(points[np.argmax(labels > 0)]).astype(int)
    plane = target.data[slice_key] if slice_key else target.data
    h, w = plane.shape
    return int(plane[min(max(r, 0), h - 1), min(max(c, 0), w - 1)])


def ids_text(ids: np.ndarray) -> str:
    """ "id 3", "ids 3–5" or "ids 3, 7" for the user."""
    ids = [int(i) for i in ids]
    if len(ids) == 1:
        return f"id {ids[0]}"
    if ids == list(range(ids[0], ids[0] + len(ids))):
        return f"ids {ids[0]}–{ids[-1]}"
    return "ids " + ", ".join(map(str, ids))
