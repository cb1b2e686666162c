"""micro-sam's tiled AIS (``TiledInstanceSegmentationWithDecoder``) on given tile embeddings.

IN.npz: ``features_<t>`` (1, C, h, w) float32, ``input_size_<t>`` and ``original_size_<t>``
(2,) for every tile t, in micro-sam's tile order. PARAMS.json: ``checkpoint``, ``spec`` (see
``_common.sam_from_checkpoint``), ``decoder_path`` and ``initial_features`` (a decoder file
written by ``instances_oracle.py``), ``tile_shape``, ``halo``, ``image_shape``, ``ais`` (a list
of keyword arguments of ``generate``). OUT.npz: ``maps`` (3, H, W) the stitched foreground,
centre and boundary distances, ``ais_<i>`` labels (H, W) for the i-th parameter set.

The tile embeddings go into a zarr group laid out as ``precompute_image_embeddings`` writes
tiled embeddings (a ``features`` group with ``tile_shape`` and ``halo`` attributes, one array
per tile with its ``input_size`` and ``original_size``), so micro-sam reads them its own way.
"""

from __future__ import annotations

import numpy as np
import zarr
from _common import read_inputs, sam_from_checkpoint, write_outputs
from instances_oracle import load_decoder
from micro_sam.instance_segmentation import TiledInstanceSegmentationWithDecoder
from segment_anything import SamPredictor


def tiled_embeddings(arrays: dict, params: dict) -> dict:
    root = zarr.group(store=zarr.storage.MemoryStore())
    features = root.create_group("features")
    features.attrs["tile_shape"] = list(params["tile_shape"])
    features.attrs["halo"] = list(params["halo"])
    t = 0
    while f"features_{t}" in arrays:
        tile = features.create_array(str(t), data=arrays[f"features_{t}"])
        tile.attrs["input_size"] = [int(v) for v in arrays[f"input_size_{t}"]]
        tile.attrs["original_size"] = [int(v) for v in arrays[f"original_size_{t}"]]
        t += 1
    return {"features": features, "input_size": None, "original_size": None}


def main() -> None:
    arrays, params, out_path = read_inputs()
    sam = sam_from_checkpoint(params["checkpoint"], params["spec"])
    decoder = load_decoder(sam.image_encoder, params["decoder_path"], params["initial_features"])
    segmenter = TiledInstanceSegmentationWithDecoder(SamPredictor(sam), decoder)
    image = np.zeros((*params["image_shape"], 3), dtype=np.uint8)  # unused: embeddings given
    segmenter.initialize(image, image_embeddings=tiled_embeddings(arrays, params))
    maps = segmenter.get_state()
    out = {
        "maps": np.stack(
            [maps["foreground"], maps["center_distances"], maps["boundary_distances"]]
        ).astype(np.float32)
    }
    for i, kwargs in enumerate(params.get("ais", [])):
        out[f"ais_{i}"] = np.asarray(segmenter.generate(**kwargs)).astype(np.int64)
    write_outputs(out_path, **out)


if __name__ == "__main__":
    main()
