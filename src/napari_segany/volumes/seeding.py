"""Which planes of a stack the user prompted, and which of them mark where an object ends.

A widget keeps prompts as n-D points and rectangles; a propagation needs the planes that seed
the object and its stop marks. As in micro-sam's annotator, a plane whose only prompts are
negative points is a stop mark: below every seed it ends the object there going down, above
every seed going up; between seeds it means nothing and is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


def stack_key(slice_key: Sequence[int], axis: int, plane: int) -> tuple[int, ...]:
    """The slice key of ``plane`` of the stack through ``slice_key`` along leading axis ``axis``.

    slice_key: the displayed plane's leading indices (e.g. ``(t, z)`` of a 4-D image).
    """
    key = [int(k) for k in slice_key]
    key[axis] = int(plane)
    return tuple(key)


def planes_of(coords: np.ndarray, slice_key: Sequence[int], axis: int) -> np.ndarray:
    """The plane of the stack each position lies on, -1 where it lies off the stack.

    coords: (N, D) positions in the image's data coordinates, the first ``len(slice_key)``
    entries the leading indices; the stack runs through ``slice_key`` (the displayed plane's
    leading indices) along leading axis ``axis``. Returns (N,) int64.
    """
    coords = np.asarray(coords, dtype=float).reshape(-1, max(len(slice_key) + 2, 2))
    if not len(coords):
        return np.zeros(0, dtype=np.int64)
    lead = np.round(coords[:, : len(slice_key)]).astype(np.int64)
    others = [i for i in range(len(slice_key)) if i != axis]
    wanted = np.asarray([slice_key[i] for i in others], dtype=np.int64)
    on_stack = np.all(lead[:, others] == wanted, axis=1)
    return np.where(on_stack, lead[:, axis], -1)


def prompted_planes(
    points: np.ndarray, rectangles: Iterable[np.ndarray], slice_key: Sequence[int], axis: int
) -> list[int]:
    """The planes, ascending, of the stack (see :func:`planes_of`) holding a point of
    ``points`` (N, D) or a rectangle of ``rectangles`` (each (4, D) vertices, all on one
    plane)."""
    found = {int(z) for z in planes_of(points, slice_key, axis) if z >= 0}
    for vertices in rectangles:
        planes = planes_of(vertices, slice_key, axis)
        if len(planes) and planes[0] >= 0 and np.all(planes == planes[0]):
            found.add(int(planes[0]))
    return sorted(found)


@dataclass(frozen=True)
class StopMarks:
    """How a set of prompted planes seeds one object.

    seeds: the planes that seed it (ascending); lower / upper: a stop plane below (above) all
    seeds, where the object ends going down (up), or None; ignored: stop planes between seeds.
    """

    seeds: tuple[int, ...]
    lower: int | None
    upper: int | None
    ignored: tuple[int, ...]


def stop_marks(seed_planes: Iterable[int], stop_planes: Iterable[int]) -> StopMarks:
    """Sort the prompted planes into seeds and stop marks, as micro-sam's annotator does: the
    stop plane nearest below the seeds ends the object there (one further down means nothing,
    as the object already ended), likewise above; stops between seeds are ignored."""
    seeds = tuple(sorted(set(int(z) for z in seed_planes)))
    stops = sorted(set(int(z) for z in stop_planes) - set(seeds))
    if not seeds:
        return StopMarks((), None, None, tuple(stops))
    below = [z for z in stops if z < seeds[0]]
    above = [z for z in stops if z > seeds[-1]]
    lower = below[-1] if below else None
    upper = above[0] if above else None
    ignored = tuple(z for z in stops if seeds[0] < z < seeds[-1])
    return StopMarks(seeds, lower, upper, ignored)


def is_stop(labels: np.ndarray, n_boxes: int) -> bool:
    """Whether a plane's prompts mark a stop: negative points only, no box.

    labels: (N,) 1 for positive points, 0 for negative ones.
    """
    labels = np.asarray(labels)
    return n_boxes == 0 and labels.size > 0 and not np.any(labels > 0)


def seeds_with_stops(
    masks: dict[int, np.ndarray], marks: StopMarks, plane_shape: tuple[int, int]
) -> tuple[dict[int, np.ndarray], bool, bool]:
    """One object's seeds for :func:`~napari_segany.volumes.segment_volume`: its masks
    ``{plane: (H, W) bool}`` plus an empty mask on each stop plane, and the stop flags."""
    seeds = dict(masks)
    for z in (marks.lower, marks.upper):
        if z is not None:
            seeds[z] = np.zeros(plane_shape, dtype=bool)
    return seeds, marks.lower is not None, marks.upper is not None
