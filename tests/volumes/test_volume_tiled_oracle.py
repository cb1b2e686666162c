"""On planes in tiles, objects carried through a volume get micro-sam's masks: each plane's
object segmented in the tile that holds its previous mask's centroid, from the mask cut to that
tile (``segment_mask_in_volume`` on tiled embeddings), for every projection, seeds and stops.

The blob drifts across both tile boundaries, so the object changes tiles on the way. Both sides
decode from our tile embeddings with the same weights; equality is exact, as untiled.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
from test_volume_oracle import VOLUME_SEEDS, _seeds
from volume_data import SPEC

from microsam_bridge import run_task
from napari_segany import Predictor
from napari_segany.tiling import TiledPredictor
from napari_segany.volumes import PROJECTIONS, segment_volume

TILE_SHAPE, HALO = (64, 80), (16, 16)  # 2 x 2 tiles of the 120 x 160 planes

CASES = [
    dict(
        kind="volume", name=f"{projection}, {name}", planes=planes, projection=projection,
        stop_lower=lower, stop_upper=upper, box_extension=extension, iou_threshold=threshold,
    )
    for projection in PROJECTIONS
    for name, (planes, lower, upper, extension, threshold) in VOLUME_SEEDS.items()
]  # fmt: skip


def tile_embeddings(predictor, stack) -> tuple[dict, TiledPredictor]:
    """{plane: {tile: embedding}} of every tile of every plane, and the tiling of the last."""
    tiled = TiledPredictor(predictor)
    planes = {}
    for z in range(stack.shape[0]):
        tiled.set_image(stack[z], tile_shape=TILE_SHAPE, halo=HALO)
        tiled.encode_tiles()
        planes[z] = dict(tiled.embeddings)
    return planes, tiled


@pytest.fixture(scope="module")
def tiled_answers(object_model, object_model_path, stack_embeddings):
    predictor = Predictor(object_model, precision="fp32")
    volume, whole = stack_embeddings
    embeddings, tiled = tile_embeddings(predictor, volume)
    assert tiled.grid.n_tiles == 4
    arrays, ours = {}, []
    for i, case in enumerate(CASES):
        seeds = _seeds(case, volume, whole, predictor, (4, 6))
        seed_volume = np.zeros(volume.shape, np.uint8)
        for z, mask in seeds.items():
            seed_volume[z] = mask
        arrays[f"seeds_{i}"] = seed_volume
        ours.append(
            segment_volume(
                predictor, volume, seeds, projection=case["projection"],
                iou_threshold=case["iou_threshold"], box_extension=case["box_extension"],
                stop_lower=case["stop_lower"], stop_upper=case["stop_upper"],
                embeddings=embeddings, tile_shape=TILE_SHAPE, halo=HALO,
            )
        )  # fmt: skip
    for t in range(tiled.grid.n_tiles):
        arrays[f"features_{t}"] = np.stack([embeddings[z][t].features for z in sorted(embeddings)])
        size = embeddings[0][t].original_size
        arrays[f"original_size_{t}"] = np.array(size)
        arrays[f"input_size_{t}"] = np.array(predictor_input_size(predictor, size))
    params = {
        "checkpoint": str(object_model_path), "spec": asdict(SPEC),
        "shape": list(volume.shape[1:]), "tile_shape": list(TILE_SHAPE), "halo": list(HALO),
        "n_tiles": tiled.grid.n_tiles, "cases": CASES,
    }  # fmt: skip
    return ours, run_task("volume_tiled", arrays, params), embeddings


def predictor_input_size(predictor, size) -> tuple[int, int]:
    from napari_segany.geometry import resized_shape

    return resized_shape(int(size[0]), int(size[1]), predictor.model.image_size)


@pytest.mark.parametrize("i", range(len(CASES)), ids=[c["name"] for c in CASES])
def test_objects_propagate_through_tiled_planes_as_in_micro_sam(tiled_answers, i):
    ours, theirs, _ = tiled_answers
    mask, reached = ours[i]
    expected = theirs[f"segmentation_{i}"]
    assert mask.dtype == np.bool_ and mask.shape == expected.shape
    differ = np.flatnonzero((mask != expected).any(axis=(1, 2)))
    assert differ.size == 0, f"planes {differ.tolist()} differ from micro-sam's"
    assert reached == tuple(int(v) for v in theirs[f"range_{i}"])
    grown = [z for z in range(mask.shape[0]) if z not in CASES[i]["planes"] and mask[z].any()]
    assert grown, "the object reached no plane beyond its seeds"


def test_the_object_changes_tiles_on_its_way(tiled_answers):
    """Not a trivial tiling: the carried object's centroid sits in more than one tile."""
    ours, _, _ = tiled_answers
    mask, _ = ours[0]
    tiled_rows, tiled_cols = set(), set()
    for z in range(mask.shape[0]):
        if mask[z].any():
            rows, cols = np.nonzero(mask[z])
            tiled_rows.add(int(rows.mean() >= TILE_SHAPE[0]))
            tiled_cols.add(int(cols.mean() >= TILE_SHAPE[1]))
    assert len(tiled_rows) == 2 or len(tiled_cols) == 2


def test_tiling_changes_the_answer(tiled_answers, object_model, stack_embeddings):
    """The tiled runs are not the untiled ones in disguise: some case's masks differ."""
    ours, _, _ = tiled_answers
    predictor = Predictor(object_model, precision="fp32")
    volume, whole = stack_embeddings
    differs = []
    for i, case in enumerate(CASES[:3]):
        seeds = {z: ours[i][0][z] for z in case["planes"]}
        untiled, _ = segment_volume(
            predictor, volume, seeds, projection=case["projection"],
            iou_threshold=case["iou_threshold"], box_extension=case["box_extension"],
            stop_lower=case["stop_lower"], stop_upper=case["stop_upper"], embeddings=whole,
        )  # fmt: skip
        differs.append(bool((untiled != ours[i][0]).any()))
    assert any(differs)


def test_tiles_are_encoded_on_demand_with_the_same_answer(
    tiled_answers, object_model, stack_embeddings
):
    """Without embeddings, each plane's tiles are encoded as objects reach them: the same
    masks, and only the tiles an object was in."""
    ours, _, embeddings = tiled_answers
    predictor = Predictor(object_model, precision="fp32")
    volume, _ = stack_embeddings
    case = CASES[0]
    seeds = {z: ours[0][0][z] for z in case["planes"]}
    kept: dict = {}
    mask, reached = segment_volume(
        predictor, volume, seeds, projection=case["projection"], embeddings=kept,
        tile_shape=TILE_SHAPE, halo=HALO,
    )  # fmt: skip
    again, same_reach = segment_volume(
        predictor, volume, seeds, projection=case["projection"], embeddings=embeddings,
        tile_shape=TILE_SHAPE, halo=HALO,
    )  # fmt: skip
    np.testing.assert_array_equal(mask, again)
    assert reached == same_reach
    encoded = sum(len(tiles) for tiles in kept.values())
    assert 0 < encoded < 4 * volume.shape[0]
    for z, tiles in kept.items():
        for t, embedding in tiles.items():
            np.testing.assert_array_equal(embedding.features, embeddings[z][t].features)
