"""Segment everything on tiles: the untiled answer on one tile, one mask per object on borders."""

from __future__ import annotations

import numpy as np
import pytest
from tiling_models import ALIVE

from napari_segany import Predictor, generate_masks
from napari_segany.automatic import masks_to_labels
from napari_segany.tiling import TiledPredictor, TileGrid
from napari_segany.tiling.everything import generate_tiled_masks, iter_generate_tiled_masks
from napari_segany.tiling.merge import CutPart, merge_cut_parts

SHAPE = (700, 900)
TILE, HALO = (200, 200), (32, 32)


def blobs(shape, seed=0, n=6) -> np.ndarray:
    """(H, W, 3) uint8: discs of random colours on a dark background."""
    from skimage.draw import disk

    rng = np.random.default_rng(seed)
    image = np.full((*shape, 3), 40, np.uint8)
    for _ in range(n):
        radius = rng.integers(4, max(5, min(shape) // 6))
        centre = (rng.integers(0, shape[0]), rng.integers(0, shape[1]))
        rows, cols = disk(centre, radius, shape=shape)
        image[rows, cols] = rng.integers(0, 256, 3)
    return image


def disc(centre, radius, shape=SHAPE) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < radius**2


def iou(a, b) -> float:
    return float((a & b).sum() / (a | b).sum())


def tiled(model, image, tile_shape=TILE, halo=HALO) -> TiledPredictor:
    tp = TiledPredictor(Predictor(model, precision="fp32"))
    tp.set_image(image, tile_shape=tile_shape, halo=halo)
    return tp


@pytest.mark.parametrize(
    "params",
    [
        dict(ALIVE, points_per_side=10, stability_score_thresh=0.05),
        dict(ALIVE, points_per_side=10, stability_score_thresh=0.05, box_nms_thresh=1.0),
        dict(ALIVE, points_per_side=10, stability_score_thresh=0.05, min_mask_region_area=40),
        dict(ALIVE, points_per_side=8, stability_score_thresh=0.05, points_per_batch=7),
    ],
    ids=["nms", "no nms", "small regions", "odd batches"],
)
def test_one_tile_gives_exactly_what_generate_masks_gives(structured_pair, params):
    _, model = structured_pair
    image = blobs((131, 97))
    expected = generate_masks(Predictor(model, precision="fp32"), image, **params)
    assert len(expected) >= 5  # the filters and NMS made real decisions
    for tile_shape, halo in ((None, None), ((200, 200), (16, 16))):  # untiled; one big tile
        found = generate_tiled_masks(tiled(model, image, tile_shape, halo), **params)
        assert len(found) == len(expected)
        for ours, theirs in zip(found, expected):
            record = ours.to_mask_record(image.shape[:2])
            np.testing.assert_array_equal(record.mask, theirs.mask)
            assert (record.bbox, record.area, record.point, record.crop_box) == (
                theirs.bbox, theirs.area, theirs.point, theirs.crop_box,
            )  # fmt: skip
            assert record.predicted_iou == theirs.predicted_iou
            assert record.stability_score == theirs.stability_score


def test_crops_on_an_untiled_image_are_generate_masks_with_crops(structured_pair):
    _, model = structured_pair
    image = blobs((131, 97))
    params = dict(ALIVE, points_per_side=4, stability_score_thresh=0.05, crop_n_layers=1)
    expected = generate_masks(Predictor(model, precision="fp32"), image, **params)
    found = generate_tiled_masks(tiled(model, image, None, None), **params)
    assert [r.bbox for r in found] == [r.bbox for r in expected]
    with pytest.raises(ValueError, match="the tiles are the crops"):
        generate_tiled_masks(tiled(model, blobs((600, 600))), **params)


# Three bright discs: A on the corner of four tiles, B across a row border, C inside a tile.
# No tile's outer block sees parts of two discs, so each tile's masks are one disc's parts.
DISCS = {"A": ((200, 400), 60), "B": ((600, 100), 50), "C": ((500, 700), 55)}


def test_objects_on_tile_borders_give_one_mask_each(bright_model):
    objects = {name: disc(*spec) for name, spec in DISCS.items()}
    image = np.full(SHAPE, 30, np.uint8)
    for obj in objects.values():
        image[obj] = 220
    records = generate_tiled_masks(tiled(bright_model, image), points_per_side=2)
    assert len(records) == 3
    for name, obj in objects.items():
        overlapping = [r for r in records if r.full_mask(SHAPE)[obj].any()]
        assert len(overlapping) == 1, f"disc {name} came back in {len(overlapping)} masks"
        assert iou(overlapping[0].full_mask(SHAPE), obj) > 0.85
        found_in = len(overlapping[0].tiles)
        assert found_in == {"A": 4, "B": 2, "C": 1}[name]  # stitched from that many tiles
    labels = masks_to_labels(records, SHAPE)
    assert sorted(np.unique(labels)) == [0, 1, 2, 3]


def test_an_object_two_tiles_see_whole_is_kept_once(bright_model):
    # On a column border, more than 20 pixels (the cut tolerance) inside both outer blocks.
    obj = disc((300, 400), 40)
    image = np.full(SHAPE, 30, np.uint8)
    image[obj] = 220
    tp = tiled(bright_model, image, halo=(64, 64))
    records = generate_tiled_masks(tp, points_per_side=2)
    assert len(records) == 1 and len(records[0].tiles) == 1
    # (328-pixel tiles shrunk onto a 256-pixel model: the disc is a few coarse patches)
    assert iou(records[0].full_mask(SHAPE), obj) > 0.7


def seen_part(grid: TileGrid, tile: int, mask: np.ndarray, cut) -> CutPart:
    """What tile ``tile`` sees of ``mask`` (its outer block), as a cut part over its box."""
    r0, c0, r1, c1 = grid.tile(tile).outer
    seen = np.zeros_like(mask)
    seen[r0:r1, c0:c1] = mask[r0:r1, c0:c1]
    rows, cols = np.flatnonzero(seen.any(1)), np.flatnonzero(seen.any(0))
    box = (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
    return CutPart(tile, seen[box[0] : box[2], box[1] : box[3]], box, cut, 0.9, 0.95, (0, 0))


def test_cut_parts_are_stitched_at_the_inner_border_and_lone_parts_dropped():
    grid = TileGrid((300, 400), (300, 200), (0, 40))  # two tiles side by side
    obj = disc((150, 200), 50, shape=(300, 400))
    other = disc((150, 80), 30, shape=(300, 400))

    def part(tile, mask, cut):
        return seen_part(grid, tile, mask, cut)

    right, left = (False, False, False, True), (False, True, False, False)
    merged = merge_cut_parts([part(0, obj, right), part(1, obj, left)], grid)
    assert len(merged) == 1 and merged[0].tiles == (0, 1)
    whole = np.zeros((300, 400), bool)
    r0, c0, r1, c1 = merged[0].bbox
    whole[r0:r1, c0:c1] = merged[0].mask
    np.testing.assert_array_equal(whole, obj)
    # A part whose other half nobody found, and parts of different objects, stay apart.
    assert merge_cut_parts([part(0, obj, right)], grid) == []
    assert (
        merge_cut_parts(
            [part(0, other | obj, right), part(1, disc((40, 300), 20, (300, 400)), left)], grid
        )
        == []
    )


def test_parts_two_tiles_apart_are_linked_when_a_wide_halo_makes_them_overlap():
    # Tiles 100 wide with a 70-pixel halo: tile 0's outer block reaches column 170, tile 2's
    # starts at 130, so an object there is seen by tiles 0, 1 and 2, and tile 0's part and
    # tile 2's agree in their own overlap. Without tile 1's part they must still be linked.
    grid = TileGrid((100, 300), (100, 100), (0, 70))
    obj = disc((50, 150), 30, shape=(100, 300))

    def part(tile, cut):
        return seen_part(grid, tile, obj, cut)

    right, left = (False, False, False, True), (False, True, False, False)
    merged = merge_cut_parts([part(0, right), part(2, left)], grid)
    assert len(merged) == 1 and merged[0].tiles == (0, 2)


def test_progress_counts_tiles_and_batches_and_stops_when_closed(bright_model):
    image = np.full(SHAPE, 30, np.uint8)
    tp = tiled(bright_model, image)
    steps = iter_generate_tiled_masks(tp, points_per_side=4, points_per_batch=8)
    first = next(steps)
    assert first == (0, 20 + 20 * 2)  # 20 tiles to encode, 2 batches of 8 points each
    for _ in range(4):
        next(steps)
    steps.close()
    assert len(tp.encoded_tiles()) == 2  # stopped in the second tile
    with pytest.raises(TypeError, match="Unknown segment-everything parameter"):
        iter_generate_tiled_masks(tp, points_per_sid=4)


@pytest.mark.parametrize(
    "box",
    [(20, 30, 60, 90), (0, 0, 50, 70), (10, 0, 60, 120), (0, 40, 80, 90), (0, 0, 80, 120)],
    ids=["inside", "corner", "whole width", "whole height", "whole image"],
)
def test_small_regions_are_cleaned_over_a_box_as_over_the_whole_image(box):
    from napari_segany.automatic.filters import remove_small_regions
    from napari_segany.tiling.regions import clean_small_regions

    shape = (80, 120)
    rng = np.random.default_rng(sum(box))
    r0, c0, r1, c1 = box
    # (areas below the image's background outside the box: the reference would fill that too)
    for min_area in (5, 40, 400):
        full = np.zeros(shape, bool)
        full[r0:r1, c0:c1] = rng.random((r1 - r0, c1 - c0)) < 0.55
        expected, changed_holes = remove_small_regions(full, min_area, "holes")
        expected, changed_islands = remove_small_regions(expected, min_area, "islands")
        cleaned, changed = clean_small_regions(full[r0:r1, c0:c1], box, shape, min_area)
        np.testing.assert_array_equal(cleaned, expected[r0:r1, c0:c1])
        assert changed == (changed_holes or changed_islands)
