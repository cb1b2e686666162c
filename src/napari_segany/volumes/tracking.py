"""Carry objects forward through the frames of a time-lapse, as micro-sam's tracking does.

The algorithm is micro-sam's ``track_from_prompts`` for objects that do not divide: from its
first seeded frame an object goes forward one frame at a time, each frame segmented from the
previous mask shifted by the motion model (:mod:`.motion`) and turned into prompts as in
:mod:`.prompts`. A seeded frame takes its seed instead. Up to the last seed the track never
stops; after it, it stops where the IoU between the shifted previous mask and the new one falls
below ``iou_threshold``, or at the last frame. ``stop_upper`` ends it just before its last seed
(a stop mark). Frames before the first seed are not touched.

All objects move together: each frame is visited once, and every object due there is decoded in
one batch. :func:`iter_track` yields ``(done, total)`` after each frame and returns the result;
:func:`track` runs it to the end.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..heap import release_freed_memory, reusing_freed_memory
from ..progress import ProgressCallback, drain
from .labels import LabelsWriter
from .motion import centre_of_mass, shift_mask, update_motion
from .overlap import mask_iou
from .planes import TiledPlanes, WholePlanes, plane_segmenter
from .results import result_array, single_or_many
from .seeds import ObjectSeeds, parse_seeds
from .settings import PropagationSettings, check_motion_smoothing, flag_for
from .slices import PlaneStack

if TYPE_CHECKING:
    from ..predictor import Predictor


def track(
    predictor: Predictor,
    frames: np.ndarray,
    seeds: Any,
    *,
    projection: str = "single_point",
    iou_threshold: float = 0.5,
    box_extension: float = 0.0,
    motion_smoothing: float = 0.5,
    stop_upper: bool | Mapping[int, bool] = False,
    embeddings: Any = None,
    axis: int = 0,
    contrast_limits: tuple[float, float] | None = None,
    out: np.ndarray | None = None,
    tile_shape: int | tuple[int, int] | str | None = None,
    halo: int | tuple[int, int] | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, Any]:
    """Track seeded objects through a time-lapse; see :func:`iter_track`.
    ``progress(done, total)`` is called after every frame."""
    steps = iter_track(
        predictor, frames, seeds, projection=projection, iou_threshold=iou_threshold,
        box_extension=box_extension, motion_smoothing=motion_smoothing, stop_upper=stop_upper,
        embeddings=embeddings, axis=axis, contrast_limits=contrast_limits, out=out,
        tile_shape=tile_shape, halo=halo,
    )  # fmt: skip
    return drain(steps, progress)


def iter_track(
    predictor: Predictor,
    frames: np.ndarray,
    seeds: Any,
    *,
    projection: str = "single_point",
    iou_threshold: float = 0.5,
    box_extension: float = 0.0,
    motion_smoothing: float = 0.5,
    stop_upper: bool | Mapping[int, bool] = False,
    embeddings: Any = None,
    axis: int = 0,
    contrast_limits: tuple[float, float] | None = None,
    out: np.ndarray | None = None,
    tile_shape: int | tuple[int, int] | str | None = None,
    halo: int | tuple[int, int] | None = None,
) -> Generator[tuple[int, int], None, tuple[np.ndarray, Any]]:
    """Track seeded objects forward in time; yields ``(done, total)``, returns the result.

    frames: a time-lapse of 2-D planes, laid out as :func:`.propagation.iter_segment_volume`
    takes a volume, with ``axis`` the time axis. seeds, projection, iou_threshold,
    box_extension, embeddings, contrast_limits, out, tile_shape, halo: as there.
    motion_smoothing: the weight of the old motion against the newest move (micro-sam's 0.5).

    Returns, for one object, a bool mask of the frames' layout and the (first, last) frames
    it covers; for many, a labels array and ``{object_id: (first, last)}``.
    """
    settings = PropagationSettings.checked(projection, iou_threshold, box_extension)
    settings = settings.for_model(predictor)
    smoothing = check_motion_smoothing(motion_smoothing)
    stack = PlaneStack(frames, axis, contrast_limits)
    objects, single = parse_seeds(seeds, stack)
    tracks = [_Track(o, flag_for(stop_upper, o.object_id), stack.n_planes) for o in objects]
    result = result_array(out, stack, objects, single, seeds)
    planes = plane_segmenter(predictor, stack, settings, embeddings, tile_shape, halo)
    return _track(planes, objects, tracks, settings, smoothing, result, single)


class _Track:
    """One object going forward: its next frame, last mask, last centres and motion."""

    def __init__(self, seeds: ObjectSeeds, stop_upper: bool, n_frames: int) -> None:
        self.object_id = seeds.object_id
        self.seeds = seeds.masks
        self.first, self.last_seed = seeds.planes[0], seeds.planes[-1]
        # micro-sam ends a track when its next frame is the last seed and stop_upper is set.
        self.end = (
            self.last_seed - 1 if stop_upper and self.last_seed > self.first else n_frames - 1
        )
        self.frame = self.first + 1
        self.previous = self.seeds[self.first]
        self.centres = [centre_of_mass(self.previous)]  # of the last two frames, newest last
        self.motion: np.ndarray | None = None
        self.reached = self.first

    @property
    def alive(self) -> bool:
        return self.frame <= self.end

    def planned(self) -> int:
        """Frames still to decode if the track does not stop early."""
        return sum(1 for t in range(self.frame, self.end + 1) if t not in self.seeds)

    def start_frame(self, smoothing: float) -> None:
        """Update the motion model at the start of a frame, as micro-sam does (from the third
        frame on, with the move between the two frames before)."""
        if self.frame >= self.first + 2:
            move = (self.centres[-1] - self.centres[-2]).astype(np.float64)
            self.motion = update_motion(self.motion, move, smoothing)

    def expected(self) -> np.ndarray:
        """The previous mask where the motion model expects it in this frame."""
        return self.previous if self.motion is None else shift_mask(self.previous, self.motion)

    def accept(self, mask: np.ndarray) -> None:
        self.previous = mask
        self.centres = [self.centres[-1], centre_of_mass(mask)]
        self.reached = self.frame
        self.frame += 1


def _track(
    planes: WholePlanes | TiledPlanes,
    objects: list[ObjectSeeds],
    tracks: list[_Track],
    settings: PropagationSettings,
    smoothing: float,
    result: np.ndarray,
    single: bool,
) -> Generator[tuple[int, int], None, tuple[np.ndarray, Any]]:
    writer = LabelsWriter(planes.stack.to_stack_order(result), objects)
    total = sum(t.planned() for t in tracks)
    done = 0
    if total:
        yield done, total
    n = planes.stack.n_planes
    try:
        for frame in range(min(t.first for t in tracks) + 1, n):
            due = [t for t in tracks if t.alive and t.frame == frame]
            if not due:
                continue
            to_decode: list[tuple[_Track, np.ndarray]] = []
            for t in due:
                t.start_frame(smoothing)
                if frame in t.seeds:
                    t.accept(t.seeds[frame])  # already written with the seeds
                else:
                    to_decode.append((t, t.expected()))
            if not to_decode:
                continue
            # Every frame allocates the same tensors: keep them for the next (see heap).
            with reusing_freed_memory():
                planes.activate(frame)
                masks = planes.segment([m for _, m in to_decode])
                for (t, expected), mask in zip(to_decode, masks):
                    past_seeds = frame > t.last_seed
                    if past_seeds and mask_iou(expected, mask) < settings.iou_threshold:
                        total -= t.planned()
                        t.frame = t.end + 1  # stopped
                        continue
                    writer.write(frame, t.object_id, mask)
                    t.accept(mask)
                    done += 1
            yield done, total
    finally:
        release_freed_memory()
    ranges = {t.object_id: (t.first, t.reached) for t in tracks}
    return single_or_many(result, ranges, single)
