"""AIS on a tiled image: with the same tile embeddings and decoder, the stitched maps and the
labels equal micro-sam's tiled AIS (``TiledInstanceSegmentationWithDecoder``)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
from instance_matching import assert_same_instances
from instances_oracle_cases import oracle_image

from microsam_bridge import run_task
from napari_segany import Predictor
from napari_segany.instances import load_sam_with_decoder, segment_instances
from napari_segany.tiling import TiledPredictor

# 3 x 4 tiles for the 256-pixel model, the last row and column narrower; outer blocks fit
# the model's input.
SHAPE, TILE, HALO = (520, 610), (192, 192), (32, 32)
PARAMS = [{}, {"min_size": 30, "center_distance_threshold": 0.6}]


@pytest.fixture(scope="module")
def tiled_oracle(bilinear_case):
    case = bilinear_case
    model = load_sam_with_decoder(case.checkpoint, case.decoder_path, device="cpu")
    image = oracle_image(SHAPE, 3)
    tiled = TiledPredictor(Predictor(model, precision="fp32"))
    tiled.set_image(image, tile_shape=TILE, halo=HALO)
    tiled.encode_tiles()
    arrays = {}
    for t in range(tiled.grid.n_tiles):
        tile = tiled.tile_predictor(t)
        arrays[f"features_{t}"] = tile.get_image_embedding()
        arrays[f"input_size_{t}"] = np.array(tile.input_size)
        arrays[f"original_size_{t}"] = np.array(tile.original_size)
    params = {
        "checkpoint": str(case.checkpoint), "spec": asdict(case.spec),
        "decoder_path": str(case.decoder_path), "initial_features": case.width,
        "tile_shape": list(TILE), "halo": list(HALO), "image_shape": list(SHAPE),
        "ais": PARAMS,
    }  # fmt: skip
    return model, image, tiled, run_task("instances_tiled", arrays, params)


def test_stitched_maps_equal_micro_sams(tiled_oracle):
    from napari_segany.instances.tiled_maps import iter_tiled_instance_maps
    from napari_segany.progress import drain

    _, _, tiled, theirs = tiled_oracle
    maps = drain(iter_tiled_instance_maps(tiled))
    ours = np.stack([maps.foreground, maps.center_distances, maps.boundary_distances])
    assert ours.shape == theirs["maps"].shape == (3, *SHAPE)
    np.testing.assert_allclose(ours, theirs["maps"], atol=2e-5, rtol=0)


@pytest.mark.parametrize("index", range(len(PARAMS)), ids=lambda i: str(PARAMS[i]))
def test_tiled_ais_equals_micro_sams(tiled_oracle, index):
    model, image, _, theirs = tiled_oracle
    predictor = Predictor(model, precision="fp32")
    steps = []
    labels = segment_instances(
        predictor, image, tile_shape=TILE, halo=HALO, progress=lambda d, t: steps.append((d, t)),
        **PARAMS[index],
    )  # fmt: skip
    assert labels.shape == SHAPE and labels.dtype == np.int32
    assert_same_instances(labels, theirs[f"ais_{index}"], f"tiled AIS {PARAMS[index]}")
    assert steps[-1] == (13, 13)  # a step per tile, then the watershed
    # The tiles stay on the predictor: clicks afterwards encode nothing.
    assert predictor.tiled is not None and len(predictor.tiled.encoded_tiles()) == 12
