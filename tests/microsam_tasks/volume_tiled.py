"""micro-sam's propagation through a volume of tiled planes, on our tile embeddings.

IN.npz: ``features_<t>`` (Z, 1, C, h, w) float32, tile t's embedding on every plane (ours);
``input_size_<t>`` (2,) and ``original_size_<t>`` (2,) of tile t; ``seeds_<i>`` (Z, H, W)
uint8 for case i. PARAMS.json: ``checkpoint``, ``spec``, ``shape`` [H, W], ``tile_shape``,
``halo``, ``n_tiles`` and ``cases`` as ``volume_segment``'s (volumes only).
OUT.npz: ``segmentation_<i>`` (Z, H, W) bool and ``range_<i>`` (2,).

The embeddings are handed over in the layout micro-sam's ``precompute_image_embeddings``
writes for a tiled 3-D image: a group of per-tile arrays, each with its sizes as attributes,
the group with the image's shape and tiling.
"""

from __future__ import annotations

import os

os.environ["BIOIMAGE_CPP_FILTERS_FORCE_SCALAR"] = "1"  # see volume_segment

import numpy as np  # noqa: E402
from _common import read_inputs, sam_from_checkpoint, write_outputs  # noqa: E402
from segment_anything import SamPredictor  # noqa: E402
from volume_segment import _volume  # noqa: E402


class _WithAttrs(np.ndarray):
    """An array with a zarr-like ``attrs`` dict."""

    attrs: dict


class _Group(dict):
    """A dict of arrays with a zarr-like ``attrs`` dict."""

    attrs: dict


def _tiled_embeddings(arrays, params) -> dict:
    group = _Group()
    group.attrs = {
        "shape": tuple(params["shape"]), "tile_shape": tuple(params["tile_shape"]),
        "halo": tuple(params["halo"]),
    }  # fmt: skip
    for t in range(params["n_tiles"]):
        features = arrays[f"features_{t}"].view(_WithAttrs)
        features.attrs = {
            "input_size": tuple(int(v) for v in arrays[f"input_size_{t}"]),
            "original_size": tuple(int(v) for v in arrays[f"original_size_{t}"]),
        }
        group[str(t)] = features
    return {"features": group, "input_size": None, "original_size": None}


def main() -> None:
    import torch

    torch.set_num_threads(1)
    arrays, params, out_path = read_inputs()
    predictor = SamPredictor(sam_from_checkpoint(params["checkpoint"], params["spec"]))
    embeddings = _tiled_embeddings(arrays, params)
    out = {}
    for i, case in enumerate(params["cases"]):
        seeds = arrays[f"seeds_{i}"].astype(np.uint32)
        planes = np.array(sorted(case["planes"]))
        segmentation, reached = _volume(predictor, embeddings, seeds, planes, case)
        out[f"segmentation_{i}"] = segmentation == 1
        out[f"range_{i}"] = np.array(reached)
    write_outputs(out_path, **out)


if __name__ == "__main__":
    main()
