"""micro-sam's instance decoders (random weights) and its AIS and APG on given embeddings.

For each case, the task builds torch-em's UNETR on the tiny SAM's encoder with random decoder
weights, writes the decoder to ``decoder_path`` in micro-sam's decoder-file format (the
UNETR's state dict without ``encoder.*``), loads that file back the way micro-sam does and
runs ``InstanceSegmentationWithDecoder`` and ``AutomaticPromptGenerator`` on the embedding it
is handed (ours, so both sides start from the same numbers).

IN.npz: ``features_<c>`` (1, C, h, w) float32 for case c.
PARAMS.json: ``cases``, each with ``checkpoint``, ``spec`` (see ``_common.sam_from_checkpoint``),
``decoder_path``, ``initial_features`` (64 loads through micro-sam's own ``get_decoder``;
other widths build the same UNETR with that width, which ``get_decoder`` cannot),
``transposed``, ``seed``, ``below`` (see ``centre_outputs``), ``input_size``,
``original_size``, ``ais`` and ``apg`` (lists of keyword arguments of ``generate``);
optional ``training_checkpoint``: also write the SAM and decoder weights as one torch-em
training checkpoint there (``{"model_state": {"sam.*"}, "decoder_state"}``).
OUT.npz: ``maps_<c>`` (3, H, W) foreground, centre and boundary distances; ``points_<c>``
(N, 2) (row, col) the point prompts micro-sam derives from them (default thresholds);
``ais_<c>_<i>`` and ``apg_<c>_<i>`` labels (H, W) for the i-th parameter set.

Also, on given candidate masks, micro-sam's mask NMS and merging (``util.apply_nms``, APG's last
step): IN.npz ``nms_masks`` (K, H, W) bool, ``nms_iou`` and ``nms_stability`` (K,) float32;
PARAMS.json ``nms`` (keyword arguments of ``apply_nms``); OUT.npz ``nms_<i>`` labels.
"""

from __future__ import annotations

import os

# bioimage-cpp's portable smoothing, as in volume_segment: its AVX2 code fuses multiply-adds,
# so the watershed's seeds and heights would depend on the CPU.
os.environ["BIOIMAGE_CPP_FILTERS_FORCE_SCALAR"] = "1"

import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import read_inputs, sam_from_checkpoint, write_outputs  # noqa: E402
from micro_sam._vendored import batched_mask_to_box  # noqa: E402
from micro_sam.instance_segmentation import (  # noqa: E402
    AutomaticPromptGenerator,
    DecoderAdapter,
    InstanceSegmentationWithDecoder,
    _derive_point_prompts,
    get_decoder,
)
from micro_sam.training.trainable_sam import TrainableSAM  # noqa: E402
from micro_sam.util import apply_nms  # noqa: E402
from segment_anything import SamPredictor  # noqa: E402
from torch_em.model import UNETR  # noqa: E402


def unetr(encoder, width: int, transposed: bool) -> UNETR:
    """torch-em's UNETR as micro-sam's ``get_unetr`` builds it, at decoder width ``width``."""
    return UNETR(
        backbone="sam", encoder=encoder, out_channels=3, use_sam_stats=True,
        final_activation="Sigmoid", use_skip_connection=False, resize_input=True,
        use_conv_transpose=transposed, initial_features=width,
    )  # fmt: skip


@torch.no_grad()
def random_decoder_state(encoder, width: int, transposed: bool, seed: int) -> dict:
    """A decoder whose maps have structure: torch's default init for the convolutions, and
    random batch-norm statistics and biases (zero means, unit variances and zero biases
    would leave them blank)."""
    torch.manual_seed(seed)
    model = unetr(encoder, width, transposed)
    gen = torch.Generator().manual_seed(seed + 1)
    for key, tensor in model.state_dict().items():
        if key.startswith("encoder") or not tensor.is_floating_point():
            continue
        if key.endswith("running_var"):
            tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
        elif key.endswith(("running_mean", "bias")):
            tensor.copy_(0.1 * torch.randn(tensor.shape, generator=gen))
        elif ".block.2." in key and key.endswith("weight"):  # batch-norm scales
            tensor.copy_(1.0 + 0.2 * torch.randn(tensor.shape, generator=gen))
    return {k: v for k, v in model.state_dict().items() if not k.startswith("encoder")}


@torch.no_grad()
def centre_outputs(state: dict, encoder, width: int, transposed: bool, features, case) -> None:
    """Shift the output biases so that each map is below 0.5 on the fraction ``below`` of
    the case (default: half) of this image: random weights alone may leave a map on one
    side of 0.5 everywhere; fewer pixels below 0.5 in the distance maps give fewer seeds."""
    model = unetr(encoder, width, transposed)
    encoder_part = {k: v for k, v in model.state_dict().items() if k.startswith("encoder")}
    model.load_state_dict({**encoder_part, **state}, strict=True)
    maps = DecoderAdapter(model)(  # training mode, as micro-sam's get_decoder leaves it
        features, tuple(case["input_size"]), tuple(case["original_size"])
    )
    logits = torch.logit(maps[0].clamp(1e-6, 1 - 1e-6)).flatten(1)
    below = case.get("below", [0.5, 0.5, 0.5])
    shift = torch.stack([logits[i].quantile(below[i]) for i in range(3)])
    state["out_conv.bias"] = state["out_conv.bias"] - shift


def load_decoder(encoder, path: str, width: int):
    """The decoder file at ``path``, loaded as micro-sam loads it."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if width == 64:
        return get_decoder(encoder, state, device="cpu")
    transposed = any(".block." in k for k in state if k.startswith("decoder.samplers"))
    model = unetr(encoder, width, transposed)
    encoder_part = {k: v for k, v in model.state_dict().items() if k.startswith("encoder")}
    model.load_state_dict({**encoder_part, **state}, strict=True)
    return DecoderAdapter(model)  # training mode: get_decoder's batch norms use image statistics


def main() -> None:
    arrays, params, out_path = read_inputs()
    out = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:  # seconds per stage, for whoever wonders where time goes
        nonlocal clock
        out[f"seconds_{name}"] = np.array(time.perf_counter() - clock)
        clock = time.perf_counter()

    for c, case in enumerate(params["cases"]):
        sam = sam_from_checkpoint(case["checkpoint"], case["spec"])
        width, transposed = case["initial_features"], case["transposed"]
        features = torch.from_numpy(arrays[f"features_{c}"])
        state = random_decoder_state(sam.image_encoder, width, transposed, case["seed"])
        centre_outputs(state, sam.image_encoder, width, transposed, features, case)
        torch.save(state, case["decoder_path"])
        if case.get("training_checkpoint"):
            model_state = TrainableSAM(sam).state_dict()  # "sam.image_encoder..." and so on
            torch.save(
                {"model_state": model_state, "decoder_state": state}, case["training_checkpoint"]
            )
        decoder = load_decoder(sam.image_encoder, case["decoder_path"], width)
        lap(f"make_decoder_{c}")

        predictor = SamPredictor(sam)
        embeddings = {
            "features": features,
            "input_size": tuple(case["input_size"]),
            "original_size": tuple(case["original_size"]),
        }
        image = np.zeros((*case["original_size"], 3), dtype=np.uint8)  # unused: embeddings given
        segmenter = InstanceSegmentationWithDecoder(predictor, decoder)
        segmenter.initialize(image, image_embeddings=embeddings)
        maps = segmenter.get_state()
        lap(f"decoder_{c}")
        out[f"maps_{c}"] = np.stack(
            [maps["foreground"], maps["center_distances"], maps["boundary_distances"]]
        ).astype(np.float32)
        prompts = _derive_point_prompts(**maps)
        xy = np.zeros((0, 2)) if prompts is None else prompts["points"][:, 0]
        out[f"points_{c}"] = np.asarray(xy[:, ::-1], dtype=np.int64)
        for i, kwargs in enumerate(case.get("ais", [])):
            out[f"ais_{c}_{i}"] = np.asarray(segmenter.generate(**kwargs)).astype(np.int64)
        lap(f"ais_{c}")
        if case.get("apg"):
            generator = AutomaticPromptGenerator(predictor, decoder)
            generator.initialize(image, image_embeddings=embeddings)
            for i, kwargs in enumerate(case["apg"]):
                out[f"apg_{c}_{i}"] = np.asarray(generator.generate(**kwargs)).astype(np.int64)
                lap(f"apg_{c}_{i}")
    for i, kwargs in enumerate(params.get("nms", [])):
        predictions = candidate_predictions(arrays)
        out[f"nms_{i}"] = np.asarray(apply_nms(predictions, **kwargs)).astype(np.int64)
    write_outputs(out_path, **out)


def candidate_predictions(arrays) -> list[dict]:
    """The candidates as micro-sam's batched_inference hands them to apply_nms."""
    masks = torch.from_numpy(arrays["nms_masks"])
    boxes = batched_mask_to_box(masks)  # (K, 4) inclusive XYXY
    return [
        {
            "segmentation": masks[k],
            "area": masks[k].sum(),
            "bbox": [int(boxes[k, 0]), int(boxes[k, 1]), int(boxes[k, 2] - boxes[k, 0]),
                     int(boxes[k, 3] - boxes[k, 1])],
            "predicted_iou": float(arrays["nms_iou"][k]),
            "stability_score": float(arrays["nms_stability"][k]),
        }
        for k in range(masks.shape[0])
    ]  # fmt: skip


if __name__ == "__main__":
    main()
