"""Segment everything on a tiled image: a point grid per tile, objects on tile borders once.

Each tile is prompted with the grid of segment-everything (``points_per_side`` a side, or
``point_grids``) laid over its *inner* block, so every point is decoded once, in the tile whose
halo puts it farthest from a cutting edge. The masks of a tile are filtered as the reference
filters a crop (predicted IoU, stability; a mask within 20 pixels of a cutting edge is cut by
the tile), and within the tile the whole ones go through box NMS. Cut ones are not simply
dropped: parts of one object in neighbouring tiles are stitched together (:mod:`.merge`), so a
cell on a border gives one mask. Then NMS across tiles removes the objects two tiles both saw
whole (in their overlap), best predicted IoU first, and small regions are cleaned as the
reference cleans them. On an image of one tile this is exactly
:func:`~napari_segany.automatic.generate_masks`.

Each tile is decoded by ``generate_masks`` itself, a batch of points at a time, with NMS and
region cleaning left to this module so that they run in the reference's order (edge filter
before NMS). Masks are kept over their bounding boxes (:mod:`.records`).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..automatic import AutomaticParams, generate_masks, iter_generate_masks, settings_from
from ..automatic.filters import CROP_EDGE_TOLERANCE, box_nms
from ..progress import ProgressCallback, drain
from .grid import Box, Tile
from .merge import CutPart, merge_cut_parts
from .predictor import TiledPredictor
from .records import TiledMaskRecord
from .regions import clean_small_regions

# Bytes of tile-sized masks one batch of points may return at once (3 per point, before they
# are cropped to their boxes): memory stays bounded whatever the tile size.
_BATCH_MASK_BYTES = 256 << 20


def generate_tiled_masks(
    tiled: TiledPredictor, progress: ProgressCallback | None = None, **params: Any
) -> list[TiledMaskRecord]:
    """Segment everything in the tiled predictor's image; see :func:`iter_generate_tiled_masks`.
    ``progress(done, total)`` is called after every step."""
    return drain(iter_generate_tiled_masks(tiled, **params), progress)


def iter_generate_tiled_masks(
    tiled: TiledPredictor, **params: Any
) -> Generator[tuple[int, int], None, list[TiledMaskRecord]]:
    """Segment everything tile by tile; yields ``(done, total)`` and returns the records,
    best first.

    params: the fields of :class:`~napari_segany.automatic.AutomaticParams`; the point grid
    applies to each tile's inner block. ``crop_n_layers`` needs an untiled image (the tiles
    are the crops). A step is one tile encoded or one batch of points decoded; close the
    generator to cancel between two. Bad parameters are reported here, before the first step.
    """
    settings = settings_from(params)
    grid = tiled.grid
    if grid is None:
        raise ValueError("No image: call tiled.set_image(image) before segmenting everything.")
    if settings.crop_n_layers > 0:
        if grid.is_tiled:
            raise ValueError(
                "crop_n_layers > 0 crops an untiled image; on a tiled image the tiles are the "
                "crops. Set crop_n_layers=0, or tile_shape=None for crops."
            )
        return _untiled_with_crops(tiled, params)
    return _generate(tiled, settings)


def _untiled_with_crops(
    tiled: TiledPredictor, params: dict[str, Any]
) -> Generator[tuple[int, int], None, list[TiledMaskRecord]]:
    found = yield from iter_generate_masks(tiled.predictor, tiled.tile_rgb(0), **params)
    return [_from_mask_record(r) for r in found]


@dataclass(frozen=True, eq=False)
class _Candidate:
    """A mask kept by the tile's filters: mask over bbox (image pixels), inclusive box (for
    NMS, the reference's convention), the prompt's index in the tile's grid."""

    tile: int
    mask: np.ndarray
    bbox: Box
    inclusive: tuple[int, int, int, int]
    iou: float
    stability: float
    point: tuple[float, float]
    point_index: int
    cut: tuple[bool, bool, bool, bool]


def _generate(
    tiled: TiledPredictor, settings: AutomaticParams
) -> Generator[tuple[int, int], None, list[TiledMaskRecord]]:
    grid = tiled.grid
    fractions = settings.layer_grids()[0]
    tiles = list(grid)
    batches = [_batch_size(tile, settings) for tile in tiles]
    total = sum(-(-len(fractions) // b) for b in batches)
    # Presence, not a lookup: a stored tile would be read from disk just to be counted.
    total += sum(1 for t in tiles if t.index not in tiled.embeddings)
    done = 0
    yield done, total

    whole: list[_Candidate] = []
    parts: list[CutPart] = []
    for tile, batch in zip(tiles, batches):
        if tile.index not in tiled.embeddings:
            tiled.encode_tile(tile.index)  # read from the store instead, when it holds it
            done += 1
            yield done, total
        predictor = tiled.tile_predictor(tile.index)
        found: list[_Candidate] = []
        for start in range(0, len(fractions), batch):
            found += _decode_points(predictor, tile, fractions, start, batch, grid, settings)
            done += 1
            yield done, total
        tile_whole, tile_cut = _within_tile(found, settings)
        whole += tile_whole
        parts += tile_cut

    records = [_record(c, grid.tile(c.tile).outer) for c in whole]
    records += [_merged_record(m) for m in merge_cut_parts(parts, grid)]
    if grid.is_tiled and records:
        keep = _nms(records, [r.predicted_iou for r in records], settings.crop_nms_thresh)
        records = [records[i] for i in keep]
    if settings.min_mask_region_area > 0 and records:
        records = _clean(records, grid.image_shape, settings)
    return records


def _batch_size(tile: Tile, settings: AutomaticParams) -> int:
    rows, cols = tile.shape
    by_memory = max(1, _BATCH_MASK_BYTES // (3 * rows * cols))
    return max(1, min(settings.points_per_batch, by_memory))


def _decode_points(
    predictor: Any,
    tile: Tile,
    fractions: np.ndarray,
    start: int,
    batch: int,
    grid: Any,
    settings: AutomaticParams,
) -> list[_Candidate]:
    """Masks of grid points ``start:start + batch`` of ``tile``, filtered by IoU and stability
    (by ``generate_masks`` on the tile's embedding), cropped to their boxes and placed."""
    chosen = fractions[start : start + batch]
    r0, c0, r1, c1 = tile.outer
    if tile.inner == tile.outer:
        in_outer = chosen  # exactly the untiled grid
    else:
        ir0, ic0, ir1, ic1 = tile.inner
        rows = ir0 + chosen[:, 0] * (ir1 - ir0)
        cols = ic0 + chosen[:, 1] * (ic1 - ic0)
        in_outer = np.stack([(rows - r0) / (r1 - r0), (cols - c0) / (c1 - c0)], axis=1)
    found = generate_masks(
        predictor,
        point_grids=[in_outer],
        points_per_batch=len(in_outer),
        pred_iou_thresh=settings.pred_iou_thresh,
        stability_score_thresh=settings.stability_score_thresh,
        stability_score_offset=settings.stability_score_offset,
        box_nms_thresh=1.0,  # after the edge filter, below
        min_mask_region_area=0,  # after NMS across tiles, below
    )
    local = in_outer * np.array([r1 - r0, c1 - c0], dtype=np.float64)  # as generate_masks does
    cut_sides = grid.cut_sides(tile.outer)
    candidates = []
    for record in found:
        b0, b1, b2, b3 = record.bbox
        inclusive = (r0 + b0, c0 + b1, r0 + b2 - 1, c0 + b3 - 1)
        index = int(np.argmin(np.abs(local - np.asarray(record.point)).sum(axis=1)))
        candidates.append(
            _Candidate(
                tile=tile.index,
                mask=record.mask[b0:b2, b1:b3].copy(),
                bbox=(r0 + b0, c0 + b1, r0 + b2, c0 + b3),
                inclusive=inclusive,
                iou=record.predicted_iou,
                stability=record.stability_score,
                point=(r0 + record.point[0], c0 + record.point[1]),
                point_index=start + index,
                cut=_near_cutting_edge(inclusive, tile.outer, cut_sides),
            )
        )
    return candidates


def _near_cutting_edge(
    inclusive: tuple[int, int, int, int], outer: Box, cut_sides: tuple[bool, ...]
) -> tuple[bool, bool, bool, bool]:
    """The sides of ``outer`` that cut the mask: within the reference's crop-edge tolerance
    of a side that lies inside the image (compared, as the reference does, against the
    block's exclusive far edge)."""
    near = tuple(abs(float(v) - float(e)) <= CROP_EDGE_TOLERANCE for v, e in zip(inclusive, outer))
    return tuple(bool(n and c) for n, c in zip(near, cut_sides))


def _within_tile(
    found: list[_Candidate], settings: AutomaticParams
) -> tuple[list[_Candidate], list[CutPart]]:
    """The tile's whole masks after box NMS, and its cut ones (deduplicated among themselves)."""
    # The reference's candidate order: prompt by prompt, then the generator's order, which is
    # by predicted IoU (stable) within a batch.
    found = sorted(found, key=lambda c: (c.point_index,))
    whole = [c for c in found if not any(c.cut)]
    cut = [c for c in found if any(c.cut)]
    whole = [whole[i] for i in _nms(whole, [c.iou for c in whole], settings.box_nms_thresh)]
    cut = [cut[i] for i in _nms(cut, [c.iou for c in cut], settings.box_nms_thresh)]
    parts = [CutPart(c.tile, c.mask, c.bbox, c.cut, c.iou, c.stability, c.point) for c in cut]
    return whole, parts


def _nms(items: list[Any], scores: list[float], threshold: float) -> list[int]:
    """Indices kept by the reference's box NMS, best first; items have inclusive boxes."""
    import torch

    if not items:
        return []
    boxes = torch.as_tensor(np.array([_inclusive(i) for i in items], dtype=np.int64))
    return box_nms(boxes, torch.as_tensor(np.asarray(scores, dtype=np.float32)), threshold).tolist()


def _inclusive(item: Any) -> tuple[int, int, int, int]:
    if isinstance(item, _Candidate):
        return item.inclusive
    r0, c0, r1, c1 = item.bbox
    return r0, c0, r1 - 1, c1 - 1


def _record(c: _Candidate, crop_box: Box) -> TiledMaskRecord:
    return TiledMaskRecord(
        mask=c.mask,
        bbox=c.bbox,
        area=int(np.count_nonzero(c.mask)),
        predicted_iou=c.iou,
        stability_score=c.stability,
        point=c.point,
        tiles=(c.tile,),
        crop_box=crop_box,
    )


def _merged_record(m: Any) -> TiledMaskRecord:
    return TiledMaskRecord(
        mask=m.mask,
        bbox=m.bbox,
        area=int(np.count_nonzero(m.mask)),
        predicted_iou=m.iou,
        stability_score=m.stability,
        point=m.point,
        tiles=m.tiles,
        crop_box=m.bbox,
    )


def _from_mask_record(record: Any) -> TiledMaskRecord:
    r0, c0, r1, c1 = record.bbox
    return TiledMaskRecord(
        mask=record.mask[r0:r1, c0:c1].copy(),
        bbox=record.bbox,
        area=record.area,
        predicted_iou=record.predicted_iou,
        stability_score=record.stability_score,
        point=record.point,
        tiles=(0,),
        crop_box=record.crop_box,
    )


def _clean(
    records: list[TiledMaskRecord], shape: tuple[int, int], settings: AutomaticParams
) -> list[TiledMaskRecord]:
    """The reference's small-region cleaning, then NMS preferring masks it left unchanged."""
    cleaned, unchanged = [], []
    for record in records:
        mask, changed = clean_small_regions(
            record.mask, record.bbox, shape, settings.min_mask_region_area
        )
        if changed:
            record = _tightened(record, mask)
        cleaned.append(record)
        unchanged.append(0.0 if changed else 1.0)
    threshold = max(settings.box_nms_thresh, settings.crop_nms_thresh)
    return [cleaned[i] for i in _nms(cleaned, unchanged, threshold)]


def _tightened(record: TiledMaskRecord, mask: np.ndarray) -> TiledMaskRecord:
    """The record with its cleaned mask, over the mask's new bounding box (the reference's
    box of an emptied mask is all zeros)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    r0, c0 = record.bbox[:2]
    if rows.size == 0:
        bbox, window = (0, 0, 1, 1), np.zeros((1, 1), dtype=bool)
    else:
        bbox = (r0 + rows[0], c0 + cols[0], r0 + rows[-1] + 1, c0 + cols[-1] + 1)
        window = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].copy()
    return TiledMaskRecord(
        mask=window,
        bbox=tuple(int(v) for v in bbox),
        area=int(np.count_nonzero(window)),
        predicted_iou=record.predicted_iou,
        stability_score=record.stability_score,
        point=record.point,
        tiles=record.tiles,
        crop_box=record.crop_box,
    )
