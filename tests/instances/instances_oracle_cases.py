"""The oracle cases for instance segmentation, run once per session through micro-sam.

Each case encodes an image with our Predictor (fp32), asks micro-sam (in its own environment)
to make a random instance decoder, write it in its decoder-file format and run its AIS and
APG on our embedding; then our side loads the same file. micro-sam starts once for all cases:
importing it alone takes several seconds.

APG runs on a SAM whose mask is the image's bright regions whatever the prompt
(``tests/tiling/tiling_models.py``): random SAM weights give masks of nearly the whole image
with logits near 0, whose stability scores are all 0, so NMS would decide between ties. The
candidate NMS and merging are also compared on their own, on masks made up for it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microsam_bridge import run_task
from oracle import oracle_image
from reference_models import TinySpec, save_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tiling"))
from tiling_models import bright_region_sam  # noqa: E402

AIS_PARAMS: list[dict[str, Any]] = [
    {},  # micro-sam's defaults
    {"min_size": 40},
    # without smoothing the maps' pixel noise makes objects of a few pixels, where one pixel
    # decided by float rounding would change the IoU by more than 5%
    {"foreground_smoothing": 0.0, "distance_smoothing": 0.0, "min_size": 20},
    {"center_distance_threshold": 0.45, "boundary_distance_threshold": 0.55,
     "foreground_threshold": 0.5, "foreground_smoothing": 1.5, "distance_smoothing": 1.1},
]  # fmt: skip
APG_PARAMS: list[dict[str, Any]] = [
    {},  # micro-sam's defaults
    # every other parameter at once: each APG run costs micro-sam about ten seconds here
    {"multimasking": True, "batch_size": 7, "refine_with_box_prompts": True,
     "intersection_over_min": True, "nms_threshold": 0.5, "min_size": 60,
     "mask_threshold": 2.0},
]  # fmt: skip
# micro-sam's apply_nms keyword arguments, and ours (ApgParams) for the same
NMS_PARAMS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"min_size": 25, "nms_thresh": 0.9}, {}),
    ({"min_size": 25, "nms_thresh": 0.5}, {"nms_threshold": 0.5}),
    ({"min_size": 25, "nms_thresh": 0.6, "intersection_over_min": True},
     {"nms_threshold": 0.6, "intersection_over_min": True}),
    ({"min_size": 0, "nms_thresh": 0.3}, {"min_size": 0, "nms_threshold": 0.3}),
]  # fmt: skip


def blob_image(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Bright and dark blobs about 20 pixels across, so the bright-region SAM finds many."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = 128 + 110 * np.sin(rows / 6.0 + 0.3) * np.cos(cols / 7.0)
    rgb = np.repeat(base[..., None], 3, axis=2) + rng.normal(0, 5, (*shape, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


@dataclass
class Case:
    """One image, one random decoder and what micro-sam made of them."""

    name: str
    spec: TinySpec
    checkpoint: Path
    shape: tuple[int, int]
    width: int
    transposed: bool
    seed: int
    ais: list[dict[str, Any]] = field(default_factory=list)
    apg: list[dict[str, Any]] = field(default_factory=list)
    image: Callable[[tuple[int, int], int], np.ndarray] = oracle_image
    # fractions of the image below 0.5 in the foreground, centre and boundary distance maps
    below: tuple[float, float, float] = (0.5, 0.5, 0.5)
    # filled in by run_cases
    decoder_path: Path | None = None
    training_checkpoint: Path | None = None
    features: np.ndarray | None = None
    input_size: tuple[int, int] | None = None
    theirs: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Oracle:
    cases: dict[str, Case]
    candidates: dict[str, np.ndarray]  # made-up NMS candidates: masks, iou, stability
    nms: list[np.ndarray]  # micro-sam's merged labels, one per NMS_PARAMS
    seconds: dict[str, float]  # micro-sam's time per stage


def make_cases(small_checkpoint: Path, folder: Path) -> list[Case]:
    bright = save_checkpoint(bright_region_sam(TinySpec()), folder / "bright.pth")
    # Models with a 256-pixel input keep the decoder cheap (its maps are 16x the embedding).
    small_spec = TinySpec(img_size=256)
    # Random decoders make many tiny seeds; fewer pixels below 0.5 in the distance maps
    # (see ``below``) make fewer, larger objects, closer to cells.
    cells = (0.5, 0.2, 0.3)
    return [
        # a non-square image: resize, crop and resize back; micro-sam's training format too
        Case("bilinear", small_spec, small_checkpoint, (301, 457), 16, False, 3, AIS_PARAMS,
             below=cells),
        # transposed-convolution upsampling, whose random weights make a checkerboard
        # (micro-sam smooths the foreground for it); an image over 512 pixels a side, so
        # APG's blockwise distance transform has blocks
        Case("transposed", small_spec, small_checkpoint, (700, 560), 16, True, 5,
             [{"min_size": 20}], below=cells),
        # the full-width decoder (torch-em's 512-256-128-64), loaded by micro-sam's own
        # get_decoder
        Case("full width", small_spec, small_checkpoint, (200, 300), 64, False, 7,
             AIS_PARAMS[:2], below=cells),
        # APG, with micro-sam's 1024-pixel geometry (its APG assumes it). SAM decodes one
        # point per seed, about 100 ms each on a CPU, and micro-sam compares every pair of
        # overlapping masks: a small image and few seeds.
        Case("apg", TinySpec(), bright, (110, 150), 8, False, 11, [], APG_PARAMS,
             image=blob_image, below=(0.5, 0.12, 0.3)),
    ]  # fmt: skip


def nms_candidates(shape: tuple[int, int] = (160, 200), seed: int = 0) -> dict[str, np.ndarray]:
    """Masks that make NMS decide: ellipses of many sizes, near-duplicates shifted by a pixel
    or three, masks inside others, masks below the size limit."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    masks = []
    for _ in range(30):
        r, c = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        a, b = rng.uniform(3, 40), rng.uniform(3, 40)
        mask = ((rows - r) / a) ** 2 + ((cols - c) / b) ** 2 <= 1
        masks.append(mask)
        if rng.random() < 0.4:  # a near-duplicate
            masks.append(np.roll(mask, tuple(rng.integers(-3, 4, 2)), axis=(0, 1)))
        if rng.random() < 0.2:  # a part of it
            masks.append(mask & (cols < c))
    masks = np.array([m for m in masks if m.any()])
    return {
        "nms_masks": masks,
        "nms_iou": rng.uniform(0.5, 1.0, len(masks)).astype(np.float32),
        "nms_stability": rng.uniform(0.5, 1.0, len(masks)).astype(np.float32),
    }


def run_cases(cases: list[Case], folder: Path) -> Oracle:
    """Encode each case's image with our Predictor and ask micro-sam for its answers."""
    from napari_segany import Predictor, load_model

    arrays, specs = nms_candidates(), []
    for c, case in enumerate(cases):
        predictor = Predictor(load_model(case.checkpoint, device="cpu"), precision="fp32")
        predictor.set_image(case.image(case.shape, c))
        case.features = predictor.get_image_embedding()
        case.input_size = predictor.input_size
        case.decoder_path = folder / f"case{c}_decoder.pt"
        if c == 0:
            case.training_checkpoint = folder / f"case{c}_training.pt"
        arrays[f"features_{c}"] = case.features
        specs.append(
            {
                "checkpoint": str(case.checkpoint), "spec": asdict(case.spec),
                "decoder_path": str(case.decoder_path), "initial_features": case.width,
                "transposed": case.transposed, "seed": case.seed, "below": list(case.below),
                "input_size": list(case.input_size), "original_size": list(case.shape),
                "ais": case.ais, "apg": case.apg,
                "training_checkpoint": str(case.training_checkpoint or ""),
            }
        )  # fmt: skip
    params = {"cases": specs, "nms": [theirs for theirs, _ in NMS_PARAMS]}
    out = run_task("instances_oracle", arrays, params)
    for c, case in enumerate(cases):
        names = {
            key: _local_name(key, c)
            for key in out
            if key.startswith(("maps", "points", "ais", "apg"))
        }
        case.theirs = {name: out[key] for key, name in names.items() if name is not None}
    candidates = {k: v for k, v in arrays.items() if k.startswith("nms_")}
    nms = [out[f"nms_{i}"] for i in range(len(NMS_PARAMS))]
    seconds = {
        k.removeprefix("seconds_"): float(v) for k, v in out.items() if k.startswith("seconds_")
    }
    return Oracle({case.name: case for case in cases}, candidates, nms, seconds)


def _local_name(key: str, c: int) -> str | None:
    """``maps_0`` -> ``maps``, ``ais_0_2`` -> ``ais_2`` for case 0; None for other cases."""
    parts = key.split("_")
    if len(parts) >= 2 and parts[1] == str(c):
        return "_".join([parts[0], *parts[2:]])
    return None
