"""The instance decoder's maps of a tiled image: each tile decoded alone, inner blocks stitched.

micro-sam's ``TiledInstanceSegmentationWithDecoder`` does the same: the decoder runs on every
tile's embedding and gives maps over the tile's outer block; each tile keeps only its inner
block, so every pixel's maps come from the tile that sees it with the most context, and one
watershed over the stitched maps then finds objects across tile borders. Tiles are decoded one
at a time (as micro-sam's default batch of one does), which matters beyond memory: micro-sam's
decoder normalises each batch by its own statistics.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

import numpy as np

from .maps import InstanceMaps, predict_instance_maps

if TYPE_CHECKING:
    from ..modeling.instance_decoder import InstanceDecoder
    from ..tiling import TiledPredictor


def iter_tiled_instance_maps(
    tiled: TiledPredictor, decoder: InstanceDecoder | None = None
) -> Generator[tuple[int, int], None, InstanceMaps]:
    """Decode every tile (encoding those not encoded yet); yields ``(done, total)`` per tile and
    returns the maps of the whole image, (H, W) float32 each. Close it to cancel between two
    tiles.

    Memory: three float32 maps of the image (12 bytes a pixel: 48 MB at 2000 x 2000), plus one
    tile's maps at a time and the decoder's buffers, kept from tile to tile (about 1 GB for
    1024-pixel tiles on a CPU) so that each tile reuses the pages of the one before.
    """
    from ..modeling.workspace import Workspace

    grid = tiled.grid
    if grid is None:
        raise ValueError("No image: call tiled.set_image(image) before decoding instances.")
    shape = grid.image_shape
    stitched = np.zeros((3, *shape), dtype=np.float32)
    workspace = Workspace()
    yield 0, grid.n_tiles
    for tile in grid:
        maps = predict_instance_maps(tiled.tile_predictor(tile.index), decoder, workspace)
        r0, c0, r1, c1 = tile.inner
        o0, p0 = tile.outer[:2]
        local = (slice(r0 - o0, r1 - o0), slice(c0 - p0, c1 - p0))
        stitched[0, r0:r1, c0:c1] = maps.foreground[local]
        stitched[1, r0:r1, c0:c1] = maps.center_distances[local]
        stitched[2, r0:r1, c0:c1] = maps.boundary_distances[local]
        yield tile.index + 1, grid.n_tiles
    return InstanceMaps(stitched[0], stitched[1], stitched[2])
