"""micro-sam's tile geometry: inner and outer blocks of each tile, and the tile it gives a point.

IN.npz: ``points_<i>`` (N, 2) (row, col) for each case i. PARAMS.json: ``cases``, a list of
``{"shape": [H, W], "tile_shape": [th, tw], "halo": [hh, hw]}``. OUT.npz: per case,
``inner_<i>`` and ``outer_<i>`` (n_tiles, 4) (min_row, min_col, max_row, max_col), max
exclusive, tile by tile in micro-sam's numbering, and ``point_tiles_<i>`` (N,): the tile
micro-sam's point prompts go to (``prompt_based_segmentation._points_to_tile``).
"""

from __future__ import annotations

import warnings

import numpy as np
from _common import read_inputs, write_outputs
from bioimage_cpp.utils import Blocking  # what micro_sam.util tiles with
from micro_sam.prompt_based_segmentation import _points_to_tile


def main() -> None:
    arrays, params, out_path = read_inputs()
    out = {}
    for i, case in enumerate(params["cases"]):
        shape, tile_shape, halo = case["shape"], case["tile_shape"], case["halo"]
        tiling = Blocking([0, 0], shape, tile_shape)
        inner, outer = [], []
        for tile_id in range(tiling.number_of_blocks):
            tile = tiling.get_block_with_halo(tile_id, list(halo))
            inner.append([*tile.inner_block.begin, *tile.inner_block.end])
            outer.append([*tile.outer_block.begin, *tile.outer_block.end])
        out[f"inner_{i}"] = np.array(inner, dtype=np.int64)
        out[f"outer_{i}"] = np.array(outer, dtype=np.int64)
        tiles = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for point in arrays[f"points_{i}"]:
                tile_id, _, _ = _points_to_tile(
                    (point[None], np.array([1])), shape, tile_shape, halo
                )
                tiles.append(tile_id)
        out[f"point_tiles_{i}"] = np.array(tiles, dtype=np.int64)
    write_outputs(out_path, **out)


if __name__ == "__main__":
    main()
