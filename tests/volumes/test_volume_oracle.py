"""Given the same embeddings, objects carried through a volume or a time-lapse get micro-sam's
masks: ``segment_mask_in_volume`` for every projection, seeded on one plane and on several,
with and without stop planes, and ``track_from_prompts`` for one object without divisions.

Both sides decode from our per-plane embeddings (handed to micro-sam as its ``image_embeddings``
dict) with the same weights. Equality is exact: a pixel that differed on one plane would change
the next plane's prompts, so the comparison would not hold by chance.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
from volume_data import SPEC, blob_centre, blob_stack, click_mask, encode_stack

from microsam_bridge import run_task
from napari_segany import Predictor
from napari_segany.volumes import PROJECTIONS, segment_volume, track

# (seeded planes, stop_lower, stop_upper, box_extension, iou_threshold) through the 10 planes:
VOLUME_SEEDS = {
    # one seed: down and up until the IoU falls
    "one seed": ([4], False, False, 0.0, 0.5),
    # stop planes at both ends (empty seeds); an odd gap filled from both ends
    "stops": ([1, 3, 6, 9], True, True, 0.1, 0.5),
    # a gap of 2 (one plane from the union of two seeds), a gap of 4 (from both ends, then the
    # middle plane from its two neighbours), adjacent seeds, and out to both edges
    "gaps": ([1, 3, 7, 8], False, False, 2.0, 0.8),
}
# (projection, seeded frames, stop_upper, iou_threshold) through a time-lapse of 10 frames:
TRACKS = {
    "one seed": ("single_point", [1], False, 0.5),
    "two seeds": ("box", [1, 5], False, 0.7),
    "stop frame": ("mask", [2, 8], True, 0.5),
}
TRACK_STEP = (6.0, 9.0)  # pixels per frame: the motion model has something to follow


def _cases():
    cases = []
    for projection in PROJECTIONS:
        for name, (planes, lower, upper, extension, threshold) in VOLUME_SEEDS.items():
            cases.append(dict(
                kind="volume", stack="volume", name=f"{projection}, {name}", planes=planes,
                projection=projection,
                stop_lower=lower, stop_upper=upper, box_extension=extension,
                iou_threshold=threshold, motion_smoothing=0.5,
            ))  # fmt: skip
    for name, (projection, frames, upper, threshold) in TRACKS.items():
        cases.append(dict(
            kind="track", stack="frames", name=f"track, {name}", planes=frames,
            projection=projection,
            stop_lower=False, stop_upper=upper, box_extension=0.05, iou_threshold=threshold,
            motion_smoothing=0.5,
        ))  # fmt: skip
    return cases


CASES = _cases()


def _seeds(case, stack, embeddings, predictor, step):
    """The case's seeds: a click's mask on each seeded plane, empty where a stop flag says."""
    planes = case["planes"]
    seeds = {}
    for z in planes:
        stop = (case["stop_lower"] and z == planes[0]) or (case["stop_upper"] and z == planes[-1])
        shape = stack.shape[1:]
        seeds[z] = (
            np.zeros(shape, bool)
            if stop
            else click_mask(predictor, embeddings[z], blob_centre(z, shape, step))
        )
    return seeds


@pytest.fixture(scope="module")
def answers(object_model, object_model_path, stack_embeddings):
    """(ours, micro-sam's) for every case: micro-sam runs once, on all of them."""
    predictor = Predictor(object_model, precision="fp32")
    volume, volume_embeddings = stack_embeddings
    frames = blob_stack(step=TRACK_STEP, flicker=False)
    frame_embeddings = encode_stack(predictor, frames)
    arrays, ours = {}, []
    for i, case in enumerate(CASES):
        is_volume = case["kind"] == "volume"
        stack, embeddings = (volume, volume_embeddings) if is_volume else (frames, frame_embeddings)
        seeds = _seeds(case, stack, embeddings, predictor, (4, 6) if is_volume else TRACK_STEP)
        seed_volume = np.zeros(stack.shape, np.uint8)
        for z, mask in seeds.items():
            seed_volume[z] = mask
        arrays[f"seeds_{i}"] = seed_volume
        common = dict(
            projection=case["projection"], iou_threshold=case["iou_threshold"],
            box_extension=case["box_extension"], stop_upper=case["stop_upper"],
            embeddings=embeddings,
        )  # fmt: skip
        if is_volume:
            ours.append(
                segment_volume(predictor, stack, seeds, stop_lower=case["stop_lower"], **common)
            )
        else:
            ours.append(track(predictor, stack, seeds, motion_smoothing=0.5, **common))
    for name, embeddings in (("volume", volume_embeddings), ("frames", frame_embeddings)):
        arrays[f"features_{name}"] = np.stack([embeddings[z].features for z in sorted(embeddings)])
    params = {
        "checkpoint": str(object_model_path), "spec": asdict(SPEC),
        "original_size": list(volume.shape[1:]), "input_size": list(predictor.input_size),
        "cases": CASES,
    }  # fmt: skip
    return ours, run_task("volume_segment", arrays, params)


@pytest.mark.parametrize("i", range(len(CASES)), ids=[c["name"] for c in CASES])
def test_objects_propagate_as_in_micro_sam(answers, i):
    ours, theirs = answers
    case = CASES[i]
    mask, reached = ours[i]
    expected = theirs[f"segmentation_{i}"]
    assert mask.dtype == np.bool_ and mask.shape == expected.shape
    differ = np.flatnonzero((mask != expected).any(axis=(1, 2)))
    assert differ.size == 0, f"planes {differ.tolist()} differ from micro-sam's"
    if case["kind"] == "volume":
        assert reached == tuple(int(v) for v in theirs[f"range_{i}"])
    # A comparison of empty (or full) answers would pass too easily: the object must reach
    # planes it was not seeded on, and never fill a plane.
    grown = [z for z in range(mask.shape[0]) if z not in case["planes"] and mask[z].any()]
    assert grown, "the object reached no plane beyond its seeds"
    assert mask.mean(axis=(1, 2)).max() < 0.5
