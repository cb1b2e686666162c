"""Objects cut by tile edges, put back together from their parts in neighbouring tiles.

Segment-everything on one tile sees an object on a tile border only up to the tile's edge, and
its neighbour sees the rest; both see the overlap of their outer blocks (twice the halo wide).
Parts of one object agree there. :func:`merge_cut_parts` links parts from tiles whose outer
blocks overlap when their masks' IoU *inside that overlap* is at least :data:`MERGE_IOU`, and
stitches each linked group at the inner borders: every pixel comes from the part found in the
tile whose inner block holds it. A group stays only if every side where one of its parts was
cut is covered by another part's tile, so what comes back is whole; lone parts are dropped, as
the reference drops masks cut by a crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grid import Box, TileGrid

# Two parts are one object when their masks overlap this much inside the tiles' overlap.
MERGE_IOU = 0.5


@dataclass(frozen=True, eq=False)
class CutPart:
    """A mask that reaches a cutting edge of its tile.

    mask: bool over ``bbox`` (image pixels, max exclusive); cut: the sides (top, left, bottom,
    right) of the tile's outer block it reaches; iou, stability, point: as found.
    """

    tile: int
    mask: np.ndarray
    bbox: Box
    cut: tuple[bool, bool, bool, bool]
    iou: float
    stability: float
    point: tuple[float, float]


@dataclass(frozen=True, eq=False)
class MergedObject:
    """Parts stitched into one object: mask over bbox, and the parts' tiles and scores."""

    mask: np.ndarray
    bbox: Box
    tiles: tuple[int, ...]
    iou: float
    stability: float
    point: tuple[float, float]


def merge_cut_parts(parts: list[CutPart], grid: TileGrid) -> list[MergedObject]:
    """Whole objects from the parts that belong together (see the module's docstring)."""
    parent = list(range(len(parts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    outer = grid.outer_boxes()
    for i, j in _candidate_pairs(parts, grid):
        if _same_object(parts[i], parts[j], outer[parts[i].tile], outer[parts[j].tile]):
            parent[root(i)] = root(j)
    groups: dict[int, list[CutPart]] = {}
    for i, part in enumerate(parts):
        groups.setdefault(root(i), []).append(part)
    merged = []
    for members in groups.values():
        if len({p.tile for p in members}) > 1 and _covered(members, grid):
            merged.append(_stitch(members, grid))
    return merged


def _candidate_pairs(parts: list[CutPart], grid: TileGrid) -> list[tuple[int, int]]:
    """Pairs of parts that could be one object: in tiles whose outer blocks overlap (the
    neighbours, or further when the halo exceeds half a tile) with intersecting boxes. A large
    image gives thousands of cut parts: comparing every pair would cost more than decoding."""
    by_position: dict[tuple[int, int], list[int]] = {}
    for i, part in enumerate(parts):
        by_position.setdefault(grid.tile(part.tile).position, []).append(i)
    # Tiles d apart along an axis overlap when 2 * halo > (d - 1) * tile.
    reach = [1 + (2 * h - 1) // t if h else 1 for t, h in zip(grid.tile_shape, grid.halo)]
    offsets = [
        (dr, dc)
        for dr in range(0, reach[0] + 1)
        for dc in range(-reach[1], reach[1] + 1)
        if (dr, dc) > (0, 0)  # each pair of tiles once
    ]
    pairs = []
    for (row, col), mine in by_position.items():
        for d_row, d_col in offsets:
            for j in by_position.get((row + d_row, col + d_col), ()):
                pairs.extend((i, j) for i in mine if _intersection(parts[i].bbox, parts[j].bbox))
    return pairs


def _same_object(a: CutPart, b: CutPart, outer_a: np.ndarray, outer_b: np.ndarray) -> bool:
    overlap = _intersection(
        _intersection(tuple(outer_a), tuple(outer_b)), _union_box(a.bbox, b.bbox)
    )
    if overlap is None:
        return False
    in_a, in_b = _window(a, overlap), _window(b, overlap)
    union = np.count_nonzero(in_a | in_b)
    return union > 0 and np.count_nonzero(in_a & in_b) >= MERGE_IOU * union


def _covered(members: list[CutPart], grid: TileGrid) -> bool:
    """Whether each side where a part was cut lies inside another part's tile."""
    tiles = {p.tile for p in members}
    for part in members:
        row, col = grid.tile(part.tile).position
        for side, is_cut in enumerate(part.cut):
            if not is_cut:
                continue
            step = {0: (-1, 0), 1: (0, -1), 2: (1, 0), 3: (0, 1)}[side]
            across = {
                grid.tile(t).position
                for t in tiles
                if (grid.tile(t).position[0] - row) * step[0] > 0
                or (grid.tile(t).position[1] - col) * step[1] > 0
            }
            if not across:
                return False
    return True


def _stitch(members: list[CutPart], grid: TileGrid) -> MergedObject:
    bbox = members[0].bbox
    for part in members[1:]:
        bbox = _union_box(bbox, part.bbox)
    r0, c0, r1, c1 = bbox
    union = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    for part in members:
        union |= _window(part, bbox)
    stitched = union.copy()
    for tile in {p.tile for p in members}:
        inner = _intersection(grid.tile(tile).inner, bbox)
        if inner is None:
            continue
        own = np.zeros((inner[2] - inner[0], inner[3] - inner[1]), dtype=bool)
        for part in members:
            if part.tile == tile:
                own |= _window(part, inner)
        stitched[inner[0] - r0 : inner[2] - r0, inner[1] - c0 : inner[3] - c0] = own
    rows, cols = np.flatnonzero(stitched.any(axis=1)), np.flatnonzero(stitched.any(axis=0))
    tight = (r0 + rows[0], c0 + cols[0], r0 + rows[-1] + 1, c0 + cols[-1] + 1)
    mask = stitched[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].copy()
    best = max(members, key=lambda p: p.iou)
    return MergedObject(
        mask=mask,
        bbox=tuple(int(v) for v in tight),
        tiles=tuple(sorted({p.tile for p in members})),
        iou=float(np.mean([p.iou for p in members])),
        stability=float(min(p.stability for p in members)),
        point=best.point,
    )


def _window(part: CutPart, box: Box) -> np.ndarray:
    """The part's mask over ``box`` (False outside its own bbox)."""
    r0, c0, r1, c1 = box
    out = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    common = _intersection(part.bbox, box)
    if common is None:
        return out
    pr0, pc0 = part.bbox[:2]
    out[common[0] - r0 : common[2] - r0, common[1] - c0 : common[3] - c0] = part.mask[
        common[0] - pr0 : common[2] - pr0, common[1] - pc0 : common[3] - pc0
    ]
    return out


def _intersection(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return None
    box = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return box if box[0] < box[2] and box[1] < box[3] else None


def _union_box(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])
