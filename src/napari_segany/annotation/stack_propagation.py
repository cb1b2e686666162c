"""The work behind the widget's Propagate: seeds from the user's prompts, then the core's
propagation through one stack, with the session's model and embedding cache.

Plain Python, no Qt: a generator the widget runs on its worker, yielding ``(stage, done,
total)`` between planes (where it can be cancelled) and returning the core's result.
"""

from __future__ import annotations

from collections.abc import Generator, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..tiling.grid import TileGrid
from ..volumes.plane_cache import CachedPlanes
from ..volumes.seeding import StopMarks, seeds_with_stops

if TYPE_CHECKING:
    from .session import InteractiveSession

Step = tuple[str, int, int]
DECODING_SEEDS, PROPAGATING = "Decoding seeds", "Propagating"


@dataclass(frozen=True)
class PlanePrompts:
    """One plane's prompts: points (N, 2) (row, col), labels (N,) 1/0, boxes (K, 4)."""

    points: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray


@dataclass(frozen=True)
class StackSeeds:
    """What seeds a propagation through one stack.

    start: on plane ``here``, (H, W) object indices 1..K (the preview's objects); or, with
    ``carried``, the (Z, H, W) labels of existing objects, each seeded wherever it appears.
    others: prompts on other planes, each decoded into one more seed of a single object.
    marks: the stop planes (see :func:`~napari_segany.volumes.seeding.stop_marks`).
    """

    here: int
    start: np.ndarray
    others: Mapping[int, PlanePrompts] = field(default_factory=dict)
    marks: StopMarks | None = None
    carried: bool = False


def iter_propagate_stack(
    session: InteractiveSession,
    volume: Any,
    keys: Mapping[int, Hashable],
    seeds: StackSeeds,
    out: np.ndarray,
    settings: Mapping[str, Any],
    contrast_limits: tuple[float, float] | None,
    motion_smoothing: float | None = None,
) -> Generator[Step, None, tuple[np.ndarray, dict[int, tuple[int, int]]]]:
    """Decode the seeds on other planes, then carry every object through ``volume``.

    volume: (Z, H, W) or (Z, H, W, C), the stack axis first; keys: each plane's key in the
    session's cache, where embeddings are looked up and the planes encoded are left; out:
    (Z, H, W) integer array filled as planes are done (e.g. a preview); settings: projection,
    iou_threshold, box_extension. With ``motion_smoothing`` it tracks forward in time instead.
    Returns (labels, {object id: (first, last) plane}).
    """
    from ..volumes import iter_segment_volume, iter_track

    if seeds.carried:
        objects: Any = seeds.start
        stop_lower = stop_upper = False
    else:
        masks = {seeds.here: seeds.start}
        for i, (z, prompts) in enumerate(sorted(seeds.others.items())):
            yield DECODING_SEEDS, i, len(seeds.others)
            session.encode(keys[z], np.asarray(volume[z]), contrast_limits, tiles=True)
            found = session.predict(keys[z], prompts.points, prompts.labels, prompts.boxes)
            masks[z] = found.whole_objects(0) > 0
        marks = seeds.marks or StopMarks(tuple(masks), None, None, ())
        objects = {}
        stop_lower = stop_upper = False
        for k in np.unique(seeds.start[seeds.start > 0]):
            own = {z: (m == k) if z == seeds.here else m for z, m in masks.items()}
            objects[int(k)], stop_lower, stop_upper = seeds_with_stops(
                own, marks, seeds.start.shape
            )
    predictor = session.ensure_model()
    tile_shape, halo = session.tiled.tile_shape, session.tiled.halo
    plane_shape = (int(np.shape(volume)[1]), int(np.shape(volume)[2]))
    if TileGrid.for_image(plane_shape, tile_shape, halo, predictor.model.image_size).is_tiled:
        # Planes tiled as the clicks on them are: the tiles they encoded serve, and stay.
        embeddings: Any = SessionTiles(session, volume, keys, contrast_limits)
    else:
        embeddings = CachedPlanes(session.cache, keys.__getitem__)
    common = dict(
        embeddings=embeddings, axis=0, contrast_limits=contrast_limits, out=out,
        tile_shape=tile_shape, halo=halo, **settings,
    )  # fmt: skip
    if motion_smoothing is not None:
        steps = iter_track(
            predictor, volume, objects, motion_smoothing=motion_smoothing,
            stop_upper=stop_upper, **common,
        )  # fmt: skip
    else:
        steps = iter_segment_volume(
            predictor, volume, objects, stop_lower=stop_lower, stop_upper=stop_upper, **common
        )
    try:
        while True:
            try:
                done, total = next(steps)
            except StopIteration as finished:
                labels, ranges = finished.value
                return labels, ranges if isinstance(ranges, dict) else {1: ranges}
            yield PROPAGATING, done, total
    finally:
        session.image_replaced()  # the predictor holds the last plane propagated


class SessionTiles(Mapping):
    """plane index -> that plane's tile embeddings, as the session keeps them for its slice:
    a propagation reads the tiles clicks encoded (or ``embed`` stored) and leaves its own."""

    def __init__(
        self,
        session: InteractiveSession,
        volume: Any,
        keys: Mapping[int, Hashable],
        contrast_limits: tuple[float, float] | None,
    ) -> None:
        self._session, self._volume, self._keys = session, volume, keys
        self._contrast = contrast_limits

    def __getitem__(self, plane: int) -> Any:
        session = self._session
        tiled = session.tiled.prepare(
            self._keys[int(plane)], np.asarray(self._volume[int(plane)]), self._contrast,
            session.ensure_model(), session.store, session.model_name,
        )  # fmt: skip
        if tiled is None:
            raise KeyError(plane)
        return tiled.embeddings

    def __iter__(self) -> Iterator[int]:
        return iter(range(int(np.shape(self._volume)[0])))

    def __len__(self) -> int:
        return int(np.shape(self._volume)[0])
