"""micro-sam's tiled embeddings of an image and its answers to clicks on them.

IN.npz: ``image`` (H, W, 3) uint8, ``points`` (N, 2) (row, col), one click each.
PARAMS.json: ``checkpoint``, ``spec`` (see ``_common.sam_from_checkpoint``), ``tile_shape``,
``halo``. OUT.npz: ``features_<t>`` (1, C, h, w) and ``original_size_<t>`` (2,) for every tile
t, ``n_tiles``; and for click j, ``masks_<j>`` (3, H, W) bool at the whole image's size and
``scores_<j>`` (3,), from ``segment_from_points(..., multimask_output=True)``.
"""

from __future__ import annotations

import numpy as np
from _common import read_inputs, sam_from_checkpoint, write_outputs
from micro_sam.prompt_based_segmentation import segment_from_points
from micro_sam.util import precompute_image_embeddings
from segment_anything import SamPredictor


def main() -> None:
    arrays, params, out_path = read_inputs()
    predictor = SamPredictor(sam_from_checkpoint(params["checkpoint"], params["spec"]))
    # What micro-sam's own get_sam_model attaches; its embedding signature reads them.
    predictor.model_type = predictor.model_name = "vit_b"
    embeddings = precompute_image_embeddings(
        predictor, arrays["image"], tile_shape=tuple(params["tile_shape"]),
        halo=tuple(params["halo"]), verbose=False, ndim=2,
    )  # fmt: skip
    features = embeddings["features"]
    out = {}
    n_tiles = len(list(features.keys()))
    for t in range(n_tiles):
        out[f"features_{t}"] = np.asarray(features[str(t)][:], dtype=np.float32)
        out[f"original_size_{t}"] = np.asarray(features[str(t)].attrs["original_size"])
    out["n_tiles"] = np.array(n_tiles)
    for j, point in enumerate(arrays["points"]):
        masks, scores, _ = segment_from_points(
            predictor, point[None], np.array([1]), image_embeddings=embeddings,
            multimask_output=True, return_all=True, use_best_multimask=False,
        )  # fmt: skip
        out[f"masks_{j}"] = masks.astype(bool)
        out[f"scores_{j}"] = np.asarray(scores, dtype=np.float32)
    write_outputs(out_path, **out)


if __name__ == "__main__":
    main()
