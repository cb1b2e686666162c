"""Writing objects that span many planes into a label volume, with the 2-D commit's rules.

A propagated object is committed as a whole: the same :class:`CommitMode` and the same new ids
as a 2-D commit, planned over the planes it reached at once so that the write is one step.
"""

from __future__ import annotations

import numpy as np

from .labels import CommitMode, CommitPlan, plan_commit


def plan_volume_commit(
    labels: np.ndarray,
    objects: np.ndarray,
    mode: CommitMode = CommitMode.UNLABELED,
    replaced: int = 0,
    keep_ids: bool = False,
    all_labels: np.ndarray | None = None,
    name: str = "the labels layer",
) -> CommitPlan:
    """Which voxels of ``labels`` to set, and to what, to add ``objects``.

    labels: (Z, H, W) integer label volume (or the planes of it the objects reach); objects:
    (Z, H, W) object ids, 0 = nothing. Returns indices ``(z, row, col)`` into ``labels``.

    With ``keep_ids`` False each object is new: it takes a fresh id of ``all_labels``
    (default ``labels``), as :func:`~.labels.plan_commit` does plane by plane, and
    ``replaced`` (with ``REPLACE``) is the id that object 1 redraws. With ``keep_ids`` True
    the objects are existing ones carried further: each keeps its id; ``UNLABELED`` writes
    only unlabeled voxels, ``OVERWRITE`` all of the object's, and ``REPLACE`` also clears the
    object's old voxels in these planes that the new masks leave out.
    """
    labels = np.asarray(labels)
    objects = np.asarray(objects)
    if labels.shape != objects.shape or labels.ndim != 3:
        raise ValueError(
            f"The labels layer's planes have shape {labels.shape} but the propagated object "
            f"has {objects.shape}: pick a labels layer made for this image."
        )
    z, h, w = labels.shape
    if keep_ids:
        return _keep_ids(labels, objects, mode)
    # One plane of Z * H rows: plan_commit's rules and ids, with every plane at once.
    flat = plan_commit(
        labels.reshape(z * h, w), objects.reshape(z * h, w), mode, replaced,
        all_labels=labels if all_labels is None else all_labels, name=name,
    )  # fmt: skip
    rows, cols = flat.indices
    planes, rows = np.divmod(rows, h)
    return CommitPlan((planes, rows, cols), flat.values, flat.ids)


def _keep_ids(labels: np.ndarray, objects: np.ndarray, mode: CommitMode) -> CommitPlan:
    write = objects > 0
    carried = np.unique(objects[write])
    redrawn = np.isin(labels, carried) if mode == CommitMode.REPLACE else None
    if mode == CommitMode.UNLABELED:
        write &= labels == 0
    elif redrawn is not None:  # the carried objects' old voxels are free for the new masks
        write &= (labels == 0) | redrawn
    values = objects.astype(labels.dtype)
    if redrawn is not None:
        cleared = redrawn & ~write
        write |= cleared
        values[cleared] = 0
    indices = np.nonzero(write)
    ids = np.unique(objects[indices])
    return CommitPlan(indices, values[indices], ids[ids > 0].astype(np.int64))
