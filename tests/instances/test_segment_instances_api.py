"""segment_instances as a caller meets it: parameters checked up front, progress as a
generator, the click embedding reused, cancelling, and what happens without a decoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_segany import Predictor, load_model
from napari_segany.instances import (
    AisParams,
    ApgParams,
    InstanceMaps,
    attach_instance_decoder,
    iter_segment_instances,
    predict_instance_maps,
    segment_instances,
)
from napari_segany.instances.params import defaults, settings
from napari_segany.modeling.instance_decoder import InstanceDecoder, InstanceDecoderConfig


@pytest.fixture(scope="module")
def model(small_checkpoint):
    torch.manual_seed(0)
    decoder = InstanceDecoder(InstanceDecoderConfig(features=(16, 8, 4, 2)))
    return attach_instance_decoder(load_model(small_checkpoint, device="cpu"), decoder)


@pytest.fixture
def predictor(model):
    return Predictor(model, precision="fp32")


def image(shape=(120, 90)) -> np.ndarray:
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (127 + 100 * np.sin(rows / 7.0) * np.cos(cols / 5.0)).astype(np.uint8)


def test_the_defaults_are_micro_sams():
    assert defaults("ais") == {
        "center_distance_threshold": 0.5, "boundary_distance_threshold": 0.5,
        "foreground_threshold": 0.5, "foreground_smoothing": 1.0, "distance_smoothing": 1.6,
        "min_size": 0,
    }  # fmt: skip
    assert defaults("apg") == {
        "min_size": 25, "center_distance_threshold": 0.5, "boundary_distance_threshold": 0.5,
        "foreground_threshold": 0.5, "multimasking": False, "batch_size": 32,
        "nms_threshold": 0.9, "intersection_over_min": False, "mask_threshold": None,
        "refine_with_box_prompts": False,
    }  # fmt: skip
    assert all(s.help for s in settings("apg").values())


def test_an_image_is_encoded_and_labels_come_back_at_its_size(predictor):
    labels = segment_instances(predictor, image((120, 90)))
    assert labels.shape == (120, 90) and labels.dtype == np.int32
    assert predictor.original_size == (120, 90)  # the click embedding is this image's now


def test_the_click_embedding_is_reused_without_encoding(predictor, monkeypatch):
    predictor.set_image(image())
    monkeypatch.setattr(predictor, "set_image", lambda *a, **k: pytest.fail("re-encoded"))
    steps = list(_steps(iter_segment_instances(predictor)))
    assert steps[0] == (0, 2) and steps[-1] == (2, 2)


def test_progress_and_result_for_apg(predictor):
    predictor.set_image(image())
    seen = []
    labels = segment_instances(predictor, mode="apg", progress=lambda d, t: seen.append((d, t)))
    assert labels.shape == (120, 90)
    assert seen[-1][0] == seen[-1][1] and all(a <= b for (a, _), (b, _) in zip(seen, seen[1:]))


def test_maps_computed_once_serve_other_thresholds(predictor, monkeypatch):
    predictor.set_image(image())
    maps = predict_instance_maps(predictor)
    assert isinstance(maps, InstanceMaps) and maps.shape == (120, 90)
    assert maps.foreground.dtype == np.float32
    from napari_segany.instances import maps as maps_module

    monkeypatch.setattr(maps_module, "predict_instance_maps", lambda *a: pytest.fail("decoded"))
    a = segment_instances(predictor, maps=maps)
    b = segment_instances(predictor, maps=maps, foreground_threshold=0.5)
    np.testing.assert_array_equal(a, b)


def test_closing_the_generator_cancels_before_the_watershed(predictor, monkeypatch):
    from napari_segany.instances import ais

    predictor.set_image(image())
    monkeypatch.setattr(ais, "watershed_instances", lambda *a: pytest.fail("not cancelled"))
    steps = iter_segment_instances(predictor)
    next(steps)
    next(steps)  # the decoder ran
    steps.close()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"mode": "amg"}, ValueError, "Unknown instance segmentation mode 'amg'"),
        ({"nms_threshold": 0.5}, TypeError, "belong to mode='apg'"),
        ({"mode": "apg", "distance_smoothing": 1}, TypeError, "belong to mode='ais'"),
        ({"min_size": -1}, ValueError, "min_size must be an integer >= 0"),
        ({"foreground_threshold": float("nan")}, ValueError, "finite"),
        ({"mode": "apg", "batch_size": 0}, ValueError, "batch_size must be an integer >= 1"),
        ({"mode": "apg", "mask_threshold": "auto"}, ValueError, "local Otsu"),
    ],
)
def test_bad_parameters_are_reported_before_any_work(predictor, kwargs, error, match):
    predictor.set_image(image())
    with pytest.raises(error, match=match):
        iter_segment_instances(predictor, **kwargs)


def test_no_image_and_no_decoder_are_clear_errors(model, small_checkpoint):
    with pytest.raises(ValueError, match="No image"):
        segment_instances(Predictor(model))
    plain = Predictor(load_model(small_checkpoint, device="cpu"))
    plain.set_image(image())
    with pytest.raises(ValueError, match="no instance decoder.*vit_b_lm"):
        segment_instances(plain)


def test_maps_of_another_image_are_refused(predictor):
    predictor.set_image(image((120, 90)))
    maps = predict_instance_maps(predictor)
    predictor.set_image(image((64, 64)))
    with pytest.raises(ValueError, match="compute them again"):
        segment_instances(predictor, maps=maps)


def test_a_decoder_may_be_passed_for_a_model_without_one(small_checkpoint, model):
    plain = Predictor(load_model(small_checkpoint, device="cpu"), precision="fp32")
    plain.set_image(image())
    ours = Predictor(model, precision="fp32")
    ours.set_image(image())
    np.testing.assert_array_equal(
        segment_instances(plain, decoder=model.instance_decoder), segment_instances(ours)
    )


def test_reduced_precision_runs_the_decoder_in_bf16(model):
    predictor = Predictor(model, precision="bf16")
    predictor.set_image(image())
    fp32 = Predictor(model, precision="fp32")
    fp32.set_image_embedding(predictor.get_image_embedding(), predictor.original_size)
    low, full = predict_instance_maps(predictor), predict_instance_maps(fp32)
    assert np.abs(low.foreground - full.foreground).max() < 0.05


def test_params_objects_validate_on_their_own():
    assert AisParams(min_size=np.int64(5)).min_size == 5
    with pytest.raises(ValueError, match="True or False"):
        ApgParams(multimasking=1)


def _steps(generator):
    yield from generator


def test_an_image_that_fits_one_tile_is_segmented_as_without_tiles(predictor, model):
    picture = image((300, 200))  # under 1.5 x the 256-pixel input: "auto" does not tile
    predictor.set_image(picture)
    maps = predict_instance_maps(predictor)  # random weights: seeds where the maps are lowest
    seeds = {
        "center_distance_threshold": float(np.quantile(maps.center_distances, 0.2)),
        "boundary_distance_threshold": float(np.quantile(maps.boundary_distances, 0.5)),
    }
    untiled = segment_instances(predictor, picture, **seeds)
    tiled = segment_instances(
        Predictor(model, precision="fp32"), picture, tile_shape="auto", **seeds
    )
    np.testing.assert_array_equal(tiled, untiled)
    assert len(np.unique(untiled)) > 2


def test_a_tiled_image_takes_ais_but_refuses_apg_with_what_to_do(predictor):
    predictor.set_image(image((600, 500)), tile_shape=(200, 200), halo=(24, 24))
    assert predictor.tiled is not None
    steps = list(iter_segment_instances(predictor))
    assert steps[0] == (0, 10) and steps[-1] == (10, 10)  # 3 x 3 tiles, then the watershed
    with pytest.raises(ValueError, match="mode='ais'"):
        segment_instances(predictor, mode="apg")
    with pytest.raises(ValueError, match="pass image="):
        segment_instances(predictor, tile_shape="auto")


def test_cancelling_tiled_ais_between_tiles_leaves_the_rest_unencoded(predictor):
    predictor.set_image(image((600, 500)), tile_shape=(200, 200), halo=(24, 24))
    steps = iter_segment_instances(predictor)
    for _ in range(3):  # the start, then two tiles decoded
        next(steps)
    steps.close()
    assert predictor.tiled.encoded_tiles() == [0, 1]
