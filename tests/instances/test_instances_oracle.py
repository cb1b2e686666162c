"""With the same random encoder and decoder weights and the same embedding, our instance
decoder, AIS and APG give micro-sam's answers (micro-sam 1.8.14 is the oracle)."""

from __future__ import annotations

import numpy as np
import pytest
from instance_matching import assert_same_instances
from instances_oracle_cases import AIS_PARAMS, APG_PARAMS, NMS_PARAMS

from napari_segany import Predictor
from napari_segany.instances import (
    AisParams,
    ApgParams,
    InstanceMaps,
    load_sam_with_decoder,
    predict_instance_maps,
    segment_instances,
    watershed_instances,
)
from napari_segany.instances.apg import candidates_from_masks, mask_nms, paint, point_prompts

_PREDICTORS: dict = {}
_MAPS: dict = {}


def predictor_for(case) -> Predictor:
    """Our predictor with the case's model and micro-sam's decoder file, on the case's
    embedding (the one micro-sam was given)."""
    if case.name not in _PREDICTORS:
        model = load_sam_with_decoder(case.checkpoint, case.decoder_path, device="cpu")
        predictor = Predictor(model, precision="fp32")
        predictor.set_image_embedding(case.features, case.shape)
        _PREDICTORS[case.name] = predictor
    return _PREDICTORS[case.name]


CASES = ["bilinear", "transposed", "full width", "apg"]


def maps_for(case):
    if case.name not in _MAPS:
        _MAPS[case.name] = predict_instance_maps(predictor_for(case))
    return _MAPS[case.name]


@pytest.mark.parametrize("name", CASES)
def test_decoder_maps_equal_torch_ems(oracle_cases, name):
    case = oracle_cases[name]
    maps = maps_for(case)
    theirs = case.theirs["maps"]
    ours = np.stack([maps.foreground, maps.center_distances, maps.boundary_distances])
    assert ours.shape == theirs.shape == (3, *case.shape)
    np.testing.assert_allclose(ours, theirs, atol=2e-5, rtol=0)
    for channel in theirs:  # the random weights give maps with structure
        assert channel.std() > 0.01 and 0.05 < (channel > 0.5).mean() < 0.95


@pytest.mark.parametrize("name", CASES[:3])
def test_ais_from_micro_sams_maps_is_micro_sams_pixel_for_pixel(oracle_cases, name):
    """The post-processing alone (smoothing, seeds, watershed, size filter) on micro-sam's own
    maps: every pixel as micro-sam labels it, ties in the flood included."""
    case = oracle_cases[name]
    foreground, center, boundary = case.theirs["maps"]
    maps = InstanceMaps(foreground, center, boundary)
    for i, params in enumerate(case.ais):
        labels = watershed_instances(maps, AisParams(**params))
        np.testing.assert_array_equal(labels, case.theirs[f"ais_{i}"], err_msg=f"{params}")


@pytest.mark.parametrize("name", CASES[:3])
def test_ais_equals_micro_sams(oracle_cases, name):
    case = oracle_cases[name]
    labels = segment_instances(predictor_for(case), **case.ais[0])  # decoder and watershed
    assert labels.dtype == np.int32 and labels.shape == case.shape
    assert_same_instances(labels, case.theirs["ais_0"], f"AIS {case.ais[0]} on {name}")


@pytest.mark.parametrize("index", range(1, len(AIS_PARAMS)), ids=lambda i: str(AIS_PARAMS[i]))
def test_ais_parameters_act_as_in_micro_sam(bilinear_case, index):
    params = AIS_PARAMS[index]
    labels = segment_instances(predictor_for(bilinear_case), maps=maps_for(bilinear_case), **params)
    assert not np.array_equal(labels, bilinear_case.theirs["ais_0"])  # the parameter acts
    assert_same_instances(labels, bilinear_case.theirs[f"ais_{index}"], f"AIS {params}")
    if params.get("min_size"):
        sizes = np.bincount(labels.ravel())[1:]
        assert sizes.min() >= params["min_size"]


@pytest.mark.parametrize("name", ["bilinear", "transposed", "apg"])
def test_point_prompts_are_micro_sams(oracle_cases, name):
    """One point per seed, where micro-sam puts it (its blockwise distance transform too)."""
    case = oracle_cases[name]
    ours = point_prompts(maps_for(case), ApgParams())
    theirs = case.theirs["points"]
    assert len(theirs) >= 10 if name != "apg" else len(theirs) >= 5
    # micro-sam numbers the seeds block by block, we in raster order: compare as sets
    assert sorted(map(tuple, ours)) == sorted(map(tuple, theirs))


@pytest.mark.parametrize("index", range(len(APG_PARAMS)), ids=lambda i: str(APG_PARAMS[i]))
def test_apg_equals_micro_sams(oracle_cases, index):
    case, params = oracle_cases["apg"], APG_PARAMS[index]
    labels = segment_instances(predictor_for(case), mode="apg", maps=maps_for(case), **params)
    assert labels.dtype == np.int32 and labels.shape == case.shape
    assert_same_instances(labels, case.theirs[f"apg_{index}"], f"APG {params}")


@pytest.mark.parametrize("index", range(len(NMS_PARAMS)), ids=lambda i: str(NMS_PARAMS[i][1]))
def test_mask_nms_and_merging_are_micro_sams(instances_oracle, index):
    """APG's last step on candidates that make NMS decide (duplicates, parts, tiny masks)."""
    c = instances_oracle.candidates
    found = candidates_from_masks(c["nms_masks"], c["nms_iou"], c["nms_stability"])
    params = ApgParams(**NMS_PARAMS[index][1])
    keep = mask_nms(found, params)
    assert 5 < len(keep) < len(found.area)  # NMS dropped some and kept some
    labels = paint(found, keep, c["nms_masks"].shape[1:], params.min_size)
    assert_same_instances(labels, instances_oracle.nms[index], f"NMS {NMS_PARAMS[index][1]}")
