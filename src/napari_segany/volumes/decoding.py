"""The masks of many objects' prompts on one slice, in as few decoder passes as the answer allows.

Prompts with the same signature (number of points, box or not, logits or not) are stacked into
one ``decode_torch`` batch. Prompts with different numbers of points are not padded to one
batch: SAM's padding points are tokens the decoder attends to, so padding changes the masks.
Each batch row is decoded independently of the others, so an object's mask does not depend on
which other objects share its batch (up to float rounding in batched matrix products).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .prompts import MaskPrompts

if TYPE_CHECKING:
    from ..predictor import Predictor


def decode_masks(predictor: Predictor, prompts: Sequence[MaskPrompts]) -> list[np.ndarray]:
    """One (H, W) bool mask per prompt set, on the predictor's current image, single-mask
    output (as micro-sam's propagation asks)."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        groups[p.signature].append(i)
    masks: list[np.ndarray | None] = [None] * len(prompts)
    for signature, members in groups.items():
        if signature == (None, False, False):  # the same answer for every such object
            decoded = _decode_batch(predictor, [prompts[members[0]]]) * len(members)
        else:
            decoded = _decode_batch(predictor, [prompts[i] for i in members])
        for i, mask in zip(members, decoded):
            masks[i] = mask
    return masks


def _decode_batch(predictor: Predictor, prompts: Sequence[MaskPrompts]) -> list[np.ndarray]:
    import torch

    first = prompts[0]
    coords = labels = boxes = logits = None
    if first.points is not None:
        xy = np.stack([predictor.model_coords(p.points) for p in prompts])  # (B, N, 2)
        coords = torch.as_tensor(xy.reshape(len(prompts), -1, 2))
        labels = torch.as_tensor(np.stack([p.labels for p in prompts]).reshape(len(prompts), -1))
    if first.box is not None:
        boxes = torch.as_tensor(predictor.model_boxes(np.stack([p.box for p in prompts])))
    if first.logits is not None:
        logits = torch.as_tensor(np.stack([p.logits for p in prompts]))  # (B, 1, 256, 256)
    with torch.inference_mode():
        # decode_torch, not predict_torch: an object whose previous mask was empty has no
        # prompt at all, and micro-sam decodes SAM's answer to that.
        decoded = predictor.decode_torch(coords, labels, boxes, logits, multimask_output=False)
        low_res = predictor.low_res_logits(decoded)  # (B, 1, 256, 256)
        masks = predictor.upsampler.masks(low_res, predictor.mask_threshold)
    return list(masks[:, 0].cpu().numpy())
