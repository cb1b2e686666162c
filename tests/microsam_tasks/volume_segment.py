"""micro-sam's propagation through a volume and its tracking through a time-lapse, on our
embeddings.

IN.npz: ``features_<stack>`` (Z, 1, C, h, w) float32 for each stack, one embedding per plane
(ours, so that both sides decode from the same numbers); ``seeds_<i>`` (Z, H, W) uint8 for
case i, 1 on the object's seeds and 0 elsewhere.
PARAMS.json: ``checkpoint``, ``spec`` (see ``_common.sam_from_checkpoint``),
``original_size`` [H, W], ``input_size`` [h, w] (the same for all stacks), and ``cases``, a
list of ``{"kind": "volume" | "track", "stack", "planes": [...], "projection",
"iou_threshold", "box_extension", "stop_lower", "stop_upper", "motion_smoothing"}``.
OUT.npz: ``segmentation_<i>`` (Z, H, W) bool and, for volumes, ``range_<i>`` (2,).

bioimage-cpp, which micro-sam smooths its distance maps with, runs its portable filter code
here: its AVX2 code fuses multiply-adds, so its maxima (micro-sam's point prompts) would depend
on the CPU; the portable code gives the same answer everywhere, and ours follows it.
"""

from __future__ import annotations

import os

os.environ["BIOIMAGE_CPP_FILTERS_FORCE_SCALAR"] = "1"

import numpy as np  # noqa: E402
from _common import read_inputs, sam_from_checkpoint, write_outputs  # noqa: E402
from segment_anything import SamPredictor  # noqa: E402


def main() -> None:
    import torch

    # These decodes are small (one prompt on a 64 x 64 embedding): one thread does them about
    # as fast as two on an idle machine, and several times faster on a busy one.
    torch.set_num_threads(1)
    arrays, params, out_path = read_inputs()
    predictor = SamPredictor(sam_from_checkpoint(params["checkpoint"], params["spec"]))
    out = {}
    for i, case in enumerate(params["cases"]):
        # micro-sam's embedding dict for a 3-D stack (util.precompute_image_embeddings' format).
        embeddings = {
            "features": arrays[f"features_{case['stack']}"],
            "input_size": tuple(params["input_size"]),
            "original_size": tuple(params["original_size"]),
        }
        seeds = arrays[f"seeds_{i}"].astype(np.uint32)
        planes = np.array(sorted(case["planes"]))
        if case["kind"] == "volume":
            segmentation, reached = _volume(predictor, embeddings, seeds, planes, case)
            out[f"range_{i}"] = np.array(reached)
        else:
            segmentation = _track(predictor, embeddings, seeds, planes, case)
        out[f"segmentation_{i}"] = segmentation == 1
    write_outputs(out_path, **out)


def _volume(predictor, embeddings, seeds, planes, case):
    from micro_sam.multi_dimensional_segmentation import segment_mask_in_volume

    return segment_mask_in_volume(
        seeds, predictor, embeddings, planes, case["stop_lower"], case["stop_upper"],
        iou_threshold=case["iou_threshold"], projection=case["projection"],
        box_extension=case["box_extension"],
    )  # fmt: skip


def _track(predictor, embeddings, seeds, planes, case):
    import napari
    from micro_sam.sam_annotator.util import track_from_prompts

    # track_from_prompts reads each seeded frame's state ("track" or "division") off the
    # annotator's point layer; one "track" point per seeded frame says: no division.
    frames = np.array([[t, 0.0, 0.0] for t in planes])
    points = napari.layers.Points(frames, properties={"state": ["track"] * len(planes)})
    boxes = napari.layers.Shapes()
    segmentation, has_division = track_from_prompts(
        points, boxes, seeds, predictor, planes, embeddings, case["stop_upper"],
        threshold=case["iou_threshold"], projection=case["projection"],
        motion_smoothing=case["motion_smoothing"], box_extension=case["box_extension"],
    )  # fmt: skip
    assert not has_division
    return segmentation


if __name__ == "__main__":
    main()
