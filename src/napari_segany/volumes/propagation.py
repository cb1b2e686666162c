"""Carry objects through the planes of a volume with SAM, as micro-sam does, many at once.

The algorithm is micro-sam's ``segment_mask_in_volume`` (see :mod:`.plan` for which planes come
from which and :mod:`.prompts` for how a mask becomes prompts); given the same embeddings a
single object gets micro-sam's masks. Many objects are carried together: all upward steps
sweep the planes once from the bottom, all downward steps once from the top, then the planes
halfway between seeds, and every object due on a plane is decoded in one batch there. Each
object stops on its own IoU. A plane is encoded the first time a step reaches it.

:func:`iter_segment_volume` is a generator that yields ``(done, total)`` (planes segmented, of
those planned, which shrinks when an object stops early) after each plane and returns the
result; :func:`segment_volume` runs it to the end. Stop iterating (or ``close()`` it) to
cancel between two planes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..heap import release_freed_memory, reusing_freed_memory
from ..progress import ProgressCallback, drain
from .labels import LabelsWriter
from .overlap import mask_iou
from .plan import ObjectPlan, Run, plan_object
from .planes import TiledPlanes, WholePlanes, plane_segmenter
from .results import result_array, single_or_many
from .seeds import ObjectSeeds, parse_seeds
from .settings import PropagationSettings, flag_for
from .slices import PlaneStack

if TYPE_CHECKING:
    from ..predictor import Predictor

Seeds = Mapping[int, np.ndarray] | Mapping[int, Mapping[int, np.ndarray]] | np.ndarray
StopFlag = bool | Mapping[int, bool]


def segment_volume(
    predictor: Predictor,
    volume: np.ndarray,
    seeds: Seeds,
    *,
    projection: str = "single_point",
    iou_threshold: float = 0.5,
    box_extension: float = 0.0,
    stop_lower: StopFlag = False,
    stop_upper: StopFlag = False,
    embeddings: Any = None,
    axis: int = 0,
    contrast_limits: tuple[float, float] | None = None,
    out: np.ndarray | None = None,
    tile_shape: int | tuple[int, int] | str | None = None,
    halo: int | tuple[int, int] | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, Any]:
    """Segment seeded objects through a volume; see :func:`iter_segment_volume`.
    ``progress(done, total)`` is called after every plane."""
    steps = iter_segment_volume(
        predictor, volume, seeds, projection=projection, iou_threshold=iou_threshold,
        box_extension=box_extension, stop_lower=stop_lower, stop_upper=stop_upper,
        embeddings=embeddings, axis=axis, contrast_limits=contrast_limits, out=out,
        tile_shape=tile_shape, halo=halo,
    )  # fmt: skip
    return drain(steps, progress)


def iter_segment_volume(
    predictor: Predictor,
    volume: np.ndarray,
    seeds: Seeds,
    *,
    projection: str = "single_point",
    iou_threshold: float = 0.5,
    box_extension: float = 0.0,
    stop_lower: StopFlag = False,
    stop_upper: StopFlag = False,
    embeddings: Any = None,
    axis: int = 0,
    contrast_limits: tuple[float, float] | None = None,
    out: np.ndarray | None = None,
    tile_shape: int | tuple[int, int] | str | None = None,
    halo: int | tuple[int, int] | None = None,
) -> Generator[tuple[int, int], None, tuple[np.ndarray, Any]]:
    """Segment seeded objects through a volume; yields ``(done, total)``, returns the result.

    predictor: a :class:`~napari_segany.Predictor`; it holds the last plane's embedding after.
    volume: 3-D, any real dtype, or 4-D with a last axis of 3 or 4 colours; ``axis`` is the
    stack axis (z), the other two make the (H, W) planes. Planes are converted as
    :func:`~napari_segany.to_uint8_rgb` does with ``contrast_limits``; without them, one
    mapping from the 1st and 99th percentiles of the volume serves all planes (uint8 and bool
    are used as they are).

    seeds: one object as ``{plane: (H, W) mask}``; or many, as ``{object_id: {plane: mask}}`` or
    as a labels array of the volume's layout (without colour), each id seeded where it appears.
    stop_lower / stop_upper: the object ends at its lowest / highest seed (usually an empty
    mask marking where it ends); True or False for all objects, or a mapping id -> flag.
    projection: ``single_point``, ``points``, ``box``, ``mask`` or ``points_and_mask`` (see
    :mod:`.prompts`); iou_threshold, box_extension: see :class:`.settings.PropagationSettings`.
    embeddings: per-plane embeddings (see :class:`.slices.PlaneEmbeddings`); a dict passed here
    receives the planes encoded, for the next run.
    out: an integer (or, for one object, bool) array of the volume's layout without colour to
    write into as planes are done, e.g. a preview; it is zeroed first.
    tile_shape, halo: micro-sam's tiling of each plane, in pixels, or ``tile_shape="auto"``
    (see :func:`~napari_segany.tiling.auto_tiling`); None (the default) encodes planes whole.
    On tiled planes an object is segmented in the tile that holds its previous mask's centroid,
    as micro-sam does (see :class:`.planes.TiledPlanes`), and ``embeddings`` maps a plane to
    its tiles' embeddings.

    Returns, for one object, a bool mask of the volume's layout and the (first, last) planes it
    reached; for many, a labels array (where objects overlap, seeds keep their pixels and the
    lower id wins) and ``{object_id: (first, last)}``. Each object's mask is what it would get
    alone. Bad input is reported here, before the first step.
    """
    settings = PropagationSettings.checked(projection, iou_threshold, box_extension)
    settings = settings.for_model(predictor)
    stack = PlaneStack(volume, axis, contrast_limits)
    objects, single = parse_seeds(seeds, stack)
    plans = {
        o.object_id: plan_object(
            o.planes, stack.n_planes, flag_for(stop_lower, o.object_id),
            flag_for(stop_upper, o.object_id),
        )
        for o in objects
    }  # fmt: skip
    result = result_array(out, stack, objects, single, seeds)
    planes = plane_segmenter(predictor, stack, settings, embeddings, tile_shape, halo)
    return _propagate(planes, objects, plans, settings, result, single)


class _LiveRun:
    """A run under way: the plane it does next and the mask it carries."""

    def __init__(self, object_id: int, run: Run, seed: np.ndarray) -> None:
        self.object_id = object_id
        self.run = run
        self.next = run.start + run.step
        self.previous = seed
        self.reached = run.start


def _propagate(
    planes: WholePlanes | TiledPlanes,
    objects: list[ObjectSeeds],
    plans: dict[int, ObjectPlan],
    settings: PropagationSettings,
    result: np.ndarray,
    single: bool,
) -> Generator[tuple[int, int], None, tuple[np.ndarray, Any]]:
    work = _Propagation(planes, objects, plans, settings, result)
    if work.total:
        yield work.done, work.total
    n = planes.stack.n_planes
    try:
        yield from work.sweep(1, range(n))
        yield from work.sweep(-1, range(n - 1, -1, -1))
        yield from work.midpoints()
    finally:
        release_freed_memory()  # what the planes kept for each other (see heap)
    return single_or_many(result, work.ranges(), single)


class _Propagation:
    """All objects' runs, swept through the planes together; the state between steps."""

    def __init__(
        self,
        planes: WholePlanes | TiledPlanes,
        objects: list[ObjectSeeds],
        plans: dict[int, ObjectPlan],
        settings: PropagationSettings,
        result: np.ndarray,
    ) -> None:
        self.planes, self.settings = planes, settings
        self.objects, self.plans = objects, plans
        self.writer = LabelsWriter(planes.stack.to_stack_order(result), objects)
        # The masks midpoints are made from (seeds, or the ends of the runs towards them),
        # kept as each object's own, before any overlap is resolved.
        self.wanted = {
            (k, z) for k, plan in plans.items() for m in plan.midpoints for z in (m.below, m.above)
        }
        self.kept = {
            (o.object_id, z): m for o in objects for z, m in o.masks.items()
            if (o.object_id, z) in self.wanted
        }  # fmt: skip
        self.outer: dict[tuple[int, int], _LiveRun] = {}  # (id, step) -> its run off the seeds
        self.waiting: dict[tuple[int, int], list[_LiveRun]] = defaultdict(list)  # (step, plane)
        for obj in objects:
            plan = plans[obj.object_id]
            for run in plan.runs:
                live = _LiveRun(obj.object_id, run, obj.masks[run.start])
                self.waiting[run.step, live.next].append(live)
                if run is plan.lower or run is plan.upper:
                    self.outer[obj.object_id, run.step] = live
        self.total = sum(plan.steps for plan in plans.values())
        self.done = 0

    def sweep(self, step: int, planes: range) -> Generator[tuple[int, int], None, None]:
        """Every run going ``step``, plane by plane: all due on a plane in one batch."""
        for z in planes:
            ready = self.waiting.pop((step, z), [])
            if not ready:
                continue
            # Every plane allocates the same tensors: keep them for the next (see heap).
            with reusing_freed_memory():
                self.planes.activate(z)
                for r, mask in zip(ready, self.planes.segment([r.previous for r in ready])):
                    self._advance(r, z, mask)
            yield self.done, self.total

    def _advance(self, r: _LiveRun, z: int, mask: np.ndarray) -> None:
        if r.run.iou_stop and mask_iou(r.previous, mask) < self.settings.iou_threshold:
            self.total -= abs(r.run.last - z) + 1  # this plane and those it would have done
            return
        self._write(z, r.object_id, mask)
        r.previous, r.reached = mask, z
        if z != r.run.last:
            r.next = z + r.run.step
            self.waiting[r.run.step, r.next].append(r)

    def midpoints(self) -> Generator[tuple[int, int], None, None]:
        """The planes halfway between seeds, from the union of their neighbours' masks."""
        by_plane: dict[int, list[tuple[int, np.ndarray]]] = defaultdict(list)
        for k, plan in self.plans.items():
            for m in plan.midpoints:
                by_plane[m.plane].append((k, self.kept[k, m.below] | self.kept[k, m.above]))
        for z in sorted(by_plane):
            with reusing_freed_memory():
                self.planes.activate(z)
                unions = [union for _, union in by_plane[z]]
                for (k, _), mask in zip(by_plane[z], self.planes.segment(unions, midpoint=True)):
                    self._write(z, k, mask)
            yield self.done, self.total

    def _write(self, z: int, object_id: int, mask: np.ndarray) -> None:
        self.writer.write(z, object_id, mask)
        if (object_id, z) in self.wanted:
            self.kept[object_id, z] = mask
        self.done += 1

    def ranges(self) -> dict[int, tuple[int, int]]:
        """{id: (first, last)}: the planes each object reached, its seeds where it stopped."""
        out = {}
        for obj in self.objects:
            k = obj.object_id
            first = self.outer[k, -1].reached if (k, -1) in self.outer else obj.planes[0]
            last = self.outer[k, 1].reached if (k, 1) in self.outer else obj.planes[-1]
            out[k] = (first, last)
        return out
