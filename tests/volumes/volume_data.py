"""What the volume tests share: a SAM whose masks are compact objects, and stacks to carry
them through.

Random weights give masks of pixel noise (a thousand fragments), whose prompts are hundreds of
points and a box over the whole image: nothing like a cell, and slow. The model here is the
tiling tests' bright-region SAM (its mask is where the image is brighter than grey) with the
decoder's image-from-prompt attention given small random weights back, so prompts move the
boundary by tens to hundreds of pixels: the masks are compact, follow the image from plane to
plane, and still change when a prompt does.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from reference_models import TinySpec, save_checkpoint

# One encoder block without global attention: the bright-region model's blocks add nothing
# (their output projections are zero), so more would only cost time.
SPEC = TinySpec(depth=1, global_attn_indexes=())
# Weight of the random image-from-prompt attention put back into the bright-region model.
PROMPT_WEIGHT = 0.2


def _bright_region_sam(spec: TinySpec) -> torch.nn.Module:
    path = Path(__file__).resolve().parents[1] / "tiling" / "tiling_models.py"
    loader = importlib.util.spec_from_file_location("volume_tiling_models", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module.bright_region_sam(spec)


@torch.no_grad()
def object_sam(seed: int = 0, spec: TinySpec = SPEC) -> torch.nn.Module:
    """A reference ``segment_anything`` Sam whose masks are bright objects, nudged by prompts."""
    sam = _bright_region_sam(spec)
    generator = torch.Generator().manual_seed(seed)
    for layer in sam.mask_decoder.transformer.layers:
        weight = layer.cross_attn_image_to_token.out_proj.weight
        weight.copy_(torch.randn(weight.shape, generator=generator) * PROMPT_WEIGHT)
    return sam.eval()


def object_checkpoint(folder: Path, seed: int = 0) -> Path:
    return save_checkpoint(object_sam(seed), Path(folder) / f"sam_objects_{seed}.pth")


def blob_stack(
    n_planes: int = 10,
    shape: tuple[int, int] = (120, 160),
    step: tuple[float, float] = (4, 6),
    flicker: bool = True,
) -> np.ndarray:
    """(Z, H, W) uint8: a bright blob that drifts by ``step`` pixels a plane and fades from
    plane 7 on, and a smaller one in a corner; with ``flicker`` the corner blob is missing on
    every third plane and the first plane is inverted: an object with places to stop."""
    h, w = shape
    rows, cols = np.mgrid[0:h, 0:w]
    planes = []
    for z in range(n_planes):
        r0, c0 = 0.33 * h + step[0] * z, 0.31 * w + step[1] * z
        brightness = 150 if z < 7 else 150 - 45 * (z - 6)
        blob = np.exp(-(((rows - r0) / (18.0 + z)) ** 2 + ((cols - c0) / 25.0) ** 2))
        corner = np.exp(-(((rows - 0.8 * h) / 12.0) ** 2 + ((cols - 0.2 * w) / 15.0) ** 2))
        texture = 20 * np.sin(rows / 9.0) * np.cos(cols / 13.0)
        corner_brightness = 0 if flicker and z % 3 == 0 else 120
        plane = 60 + brightness * blob + corner_brightness * corner + texture
        if flicker and z == 0:
            plane = 255 - plane[::-1]
        noise = np.random.default_rng(z).normal(0, 8, shape)
        planes.append(np.clip(plane + noise, 0, 255).astype(np.uint8))
    return np.stack(planes)


def blob_centre(
    z: int, shape: tuple[int, int] = (120, 160), step: tuple[float, float] = (4, 6)
) -> tuple[float, float]:
    """Where :func:`blob_stack`'s drifting blob is on plane ``z`` (row, col)."""
    return 0.33 * shape[0] + step[0] * z, 0.31 * shape[1] + step[1] * z


def encode_stack(predictor, stack: np.ndarray) -> dict:
    """{plane: embedding} of every plane of ``stack``."""
    embeddings = {}
    for z in range(stack.shape[0]):
        predictor.set_image(stack[z])
        embeddings[z] = predictor.get_embedding_state()
    return embeddings


def click_mask(predictor, embedding, point) -> np.ndarray:
    """SAM's single mask for one click on a plane: a seed as a user would make it."""
    predictor.set_image_embedding(embedding.features, embedding.original_size)
    masks, _, _ = predictor.predict(points=np.array([point]), labels=np.array([1]), multimask=False)
    return masks[0]


def overlay(singles: dict[int, np.ndarray], seeds: dict[int, dict[int, np.ndarray]]):
    """The labels the documented overlap rule makes of objects segmented one at a time."""
    labels = np.zeros(next(iter(singles.values())).shape, np.int32)
    seeded = np.zeros(labels.shape, bool)
    for k in sorted(seeds):
        for z, mask in seeds[k].items():
            labels[z][mask & ~seeded[z]] = k
            seeded[z] |= mask
    for k in sorted(singles, reverse=True):  # lower ids last: they win
        grown = singles[k].copy()
        for z in seeds[k]:
            grown[z] = False
        labels[grown & ~seeded] = k
    return labels
