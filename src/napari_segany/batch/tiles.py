"""Batch tasks on tiled planes: embed writes one embedding per tile, segment-everything runs on
tiles and reads the tiles' embeddings that ``embed --tile-shape`` stored.

A plane that its tiling leaves whole (``auto`` on a small image) goes through the untiled tasks,
so its outputs and keys are exactly theirs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .inputs import ImagePlan, read_plane
from .worker import (
    ModelSpec,
    PlaneResult,
    _encoder_precision,
    _predictor,
    _reported,
    _worker_address,
    embed_plane,
    segment_plane,
)

TileShape = int | tuple[int, int] | str | None


@dataclass(frozen=True)
class Tiling:
    """What the user asked for: micro-sam's tile_shape (``"auto"``, (rows, cols), an int or
    None for no tiling) and halo, in image pixels."""

    tile_shape: TileShape = "auto"
    halo: int | tuple[int, int] | None = None

    def __post_init__(self) -> None:
        from ..tiling import TileGrid

        # The grid's own checks (halo without tile, halo too large...) now, not per plane.
        TileGrid.for_image((1, 1), self.tile_shape, self.halo, 1024)


def _tiled(plane: Any, contrast: tuple[float, float] | None, spec: ModelSpec, tiling: Tiling):
    """The plane on a TiledPredictor of the worker's model when its tiling cuts it, else None."""
    from ..tiling import TiledPredictor

    return TiledPredictor.for_image(
        _predictor(spec), plane, contrast, tiling.tile_shape, tiling.halo
    )


def tiled_plane(
    plane: Any,
    contrast: tuple[float, float] | None,
    spec: ModelSpec,
    tiling: Tiling,
    folder: str | None,
):
    """:func:`_tiled`, reading (never writing) the tile embeddings stored at ``folder``."""
    from ..embeddings import EmbeddingStore, model_fingerprint
    from ..tiling.stored import use_store

    tiled = _tiled(plane, contrast, spec, tiling)
    if tiled is not None and folder is not None and Path(folder).is_dir():
        identity = model_fingerprint(spec.model)
        use_store(tiled, EmbeddingStore(folder), identity, _encoder_precision(spec), write=False)
    return tiled


@_reported
def embed_plane_tiles(
    plan: ImagePlan,
    index: int,
    spec: ModelSpec,
    contrast_limits: tuple[float, float] | None,
    existing: frozenset[str],
    tiling: Tiling,
    folder: str,
) -> PlaneResult:
    """The task: encode the tiles of one plane that ``existing`` lacks, saving each into the
    store at ``folder`` as it is done (so a large plane's tiles never sit in memory together,
    and a cluster's workers need ``folder`` at the same path)."""
    from ..embeddings import EmbeddingStore, model_fingerprint
    from ..tiling.stored import use_store

    start = time.perf_counter()
    plane = read_plane(plan, index)
    tiled = _tiled(plane, contrast_limits, spec, tiling)
    if tiled is None:
        return embed_plane.__wrapped__(plan, index, spec, contrast_limits, existing)
    store = EmbeddingStore(folder)
    stored = use_store(tiled, store, model_fingerprint(spec.model), _encoder_precision(spec))
    todo = [i for i in range(tiled.grid.n_tiles) if stored.key(i) not in existing]
    for i in todo:
        tiled.encode_tile(i)
    return PlaneResult(
        objects=len(todo),
        worker=_worker_address(),
        seconds=time.perf_counter() - start,
        saved=tuple(store.path_for(stored.key(i)) for i in range(tiled.grid.n_tiles)),
    )


@_reported
def segment_plane_tiles(
    plan: ImagePlan,
    index: int,
    spec: ModelSpec,
    params: dict[str, Any],
    contrast_limits: tuple[float, float] | None,
    coco: bool,
    tiling: Tiling,
    folder: str | None,
) -> PlaneResult:
    """The task: segment everything in one plane tile by tile, reading the tiles' embeddings
    from the store at ``folder`` where they are (it writes none there)."""
    from ..automatic import masks_to_labels
    from ..automatic.coco import sa1b_annotation
    from ..tiling import generate_tiled_masks

    start = time.perf_counter()
    plane = read_plane(plan, index)
    tiled = tiled_plane(plane, contrast_limits, spec, tiling, folder)
    if tiled is None:
        return segment_plane.__wrapped__(plan, index, spec, params, contrast_limits, coco)
    records = generate_tiled_masks(tiled, **params)
    labels = masks_to_labels(records, plan.plane_shape)
    # One full-size mask at a time, for the RLE: only with --coco.
    annotations = (
        [sa1b_annotation(r.to_mask_record(plan.plane_shape)) for r in records] if coco else []
    )
    return PlaneResult(
        objects=len(records),
        worker=_worker_address(),
        seconds=time.perf_counter() - start,
        labels=labels,
        annotations=annotations,
    )
