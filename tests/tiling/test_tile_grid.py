"""Tile geometry: micro-sam's blocks exactly, the auto tiling's promises, clear refusals, and
which tile a prompt goes to."""

from __future__ import annotations

import numpy as np
import pytest

from microsam_bridge import run_task
from napari_segany.tiling import TileGrid, auto_tiling
from napari_segany.tiling.routing import choose_tile

# Non-square images whose sides are not multiples of the tile, micro-sam's two recommended
# tilings, and one whose last row of tiles is thinner than the halo.
CASES = [
    ((1100, 1500), (500, 600), (100, 120)),
    ((2048, 2048), (1024, 1024), (256, 256)),
    ((917, 1333), (384, 384), (64, 64)),
    ((700, 2100), (512, 1000), (0, 100)),
    ((1030, 800), (512, 512), (64, 64)),
]


@pytest.fixture(scope="module")
def microsam_geometry():
    rng = np.random.default_rng(0)
    points = {
        f"points_{i}": rng.uniform(0, 1, (40, 2)) * (np.array(shape) - 1)
        for i, (shape, _, _) in enumerate(CASES)
    }
    cases = [{"shape": list(s), "tile_shape": list(t), "halo": list(h)} for s, t, h in CASES]
    return points, run_task("tiling_geometry", points, {"cases": cases})


def test_tiles_are_micro_sams_inner_and_outer_blocks(microsam_geometry):
    _, theirs = microsam_geometry
    for i, (shape, tile_shape, halo) in enumerate(CASES):
        grid = TileGrid(shape, tile_shape, halo)
        np.testing.assert_array_equal(grid.inner_boxes(), theirs[f"inner_{i}"])
        np.testing.assert_array_equal(grid.outer_boxes(), theirs[f"outer_{i}"])


def test_a_point_goes_to_the_tile_micro_sam_picks_unless_a_thin_last_tile(microsam_geometry):
    points, theirs = microsam_geometry
    for i, (shape, tile_shape, halo) in enumerate(CASES):
        grid = TileGrid(shape, tile_shape, halo)
        for point, expected in zip(points[f"points_{i}"], theirs[f"point_tiles_{i}"]):
            ours, margin = choose_tile(grid, (point[0], point[1], point[0], point[1]))
            assert grid.tile_at(*point) == expected
            if ours != expected:
                # The exception: a thin last tile, whose points the tile before it holds with
                # more room (it already reaches the image's edge).
                row, col = grid.tile(expected).position
                assert row == grid.grid_shape[0] - 1 or col == grid.grid_shape[1] - 1
                r0, c0, r1, c1 = grid.tile(expected).inner
                assert r1 - r0 <= halo[0] or c1 - c0 <= halo[1]
                assert grid.cut_sides(grid.tile(ours).outer).count(False) > 0
            assert margin >= 0


def test_a_box_goes_where_it_is_farthest_from_cutting_edges():
    grid = TileGrid((1000, 1000), (400, 400), (100, 100))
    # A box astride the border between tiles 0 and 1 (cols 400): tile 0's outer block reaches
    # col 500 and tile 1's starts at col 300; the box (cols 330..420) lies 79.5 pixels from
    # tile 0's cutting edge and 30.5 from tile 1's.
    index, margin = choose_tile(grid, (150.0, 330.0, 250.0, 420.0))
    assert index == 0 and margin == pytest.approx(79.5)
    # Shifted right it sits deeper in tile 1.
    index, _ = choose_tile(grid, (150.0, 400.0, 250.0, 520.0))
    assert index == 1
    # Too wide for any tile: every margin is negative (a window will hold it).
    _, margin = choose_tile(grid, (150.0, 100.0, 250.0, 900.0))
    assert margin < 0


def test_auto_does_not_tile_up_to_one_and_a_half_input_sizes():
    assert not auto_tiling((1536, 1200), 1024).is_tiled
    assert auto_tiling((1537, 1200), 1024).is_tiled
    assert not TileGrid.for_image((600, 900), "auto", None, 1024).is_tiled


@pytest.mark.parametrize("shape", [(1537, 400), (2048, 2048), (8192, 3000), (20000, 20000)])
def test_auto_tiles_fit_the_input_without_slivers(shape):
    grid = auto_tiling(shape, 1024)
    sides = np.diff(grid.outer_boxes().reshape(-1, 2, 2), axis=1)[:, 0]
    assert sides.max() <= 1024  # SAM sees every pixel at its resolution or larger
    inner = np.diff(grid.inner_boxes().reshape(-1, 2, 2), axis=1)[:, 0]
    for axis in (0, 1):
        # Equal tiles: the last differs from the others by less than one pixel per tile.
        assert inner[:, axis].max() - inner[:, axis].min() < grid.grid_shape[axis]
    assert grid.halo == tuple(128 if n > 1 else 0 for n in grid.grid_shape)


def test_a_thin_image_gets_one_tile_across():
    grid = auto_tiling((3000, 100), 1024)
    assert grid.grid_shape == (4, 1) and grid.halo == (128, 0)


@pytest.mark.parametrize(
    "tile_shape, halo, message",
    [
        ((512, 512), (512, 64), "smaller than tile_shape"),
        ((512, 512), (600, 600), "smaller than tile_shape"),
        ((512, 0), (64, 64), "tile_shape must be an integer >= 1"),
        ((512, 512), (-1, 64), "halo must be an integer >= 0"),
        ((512.5, 512), (64, 64), "tile_shape must be an integer"),
        ((512, 512, 3), (64, 64), "tile_shape must be"),
        ((512, 512), None, "needs a halo"),
        (None, (64, 64), "without a tile_shape"),
        ("auto", (64, 64), "chooses the halo too"),
        ("big", None, "'auto', None or"),
    ],
)
def test_nonsense_tilings_are_refused_clearly(tile_shape, halo, message):
    with pytest.raises(ValueError, match=message):
        TileGrid.for_image((2000, 2000), tile_shape, halo, 1024)


def test_tiles_are_numbered_row_major_and_cover_the_image_once():
    grid = TileGrid((1100, 1500), (500, 600), (100, 120))
    assert grid.grid_shape == (3, 3) and len(grid) == 9
    cover = np.zeros((1100, 1500), dtype=np.int32)
    for tile in grid:
        r0, c0, r1, c1 = tile.inner
        cover[r0:r1, c0:c1] += 1
        assert tile.position == divmod(tile.index, 3)
        o0, p0, o1, p1 = tile.outer
        assert o0 <= r0 and p0 <= c0 and o1 >= r1 and p1 >= c1
    assert (cover == 1).all()
    with pytest.raises(IndexError, match="9 tiles"):
        grid.tile(9)
