"""One slice's mask -> the prompts that segment the object on the next slice.

The rules are micro-sam's (``prompt_based_segmentation.segment_from_mask`` and its helpers), so
that, given the same embeddings, an object propagates to the same masks:

* box: the mask's bounding box with an exclusive end, grown by ``box_extension`` (a fraction
  of the box's size below 1, pixels from 1 on), clipped to the image and rounded;
* points: crop the mask to that box, take the distance of every pixel to the object's outer
  boundary, smooth it (sigma 1), and put positive points on the inner maxima (at least 3 pixels
  apart) and negative points on the outer maxima (5 apart); ``single_point`` keeps only the
  deepest inner pixel;
* mask: the mask resized to SAM's 256 x 256 low-res grid (antialiased, longest side first,
  zero padding), re-binarised at 0.5 and given logits of +-6.9 (``logit(1 - 1e-3)``).

An empty mask gives no points and no box, only (with ``use_mask``) its all-negative logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry import resized_shape
from .projection import Projection
from .smoothing import outer_boundary, smoothed_distance

LOW_RES_SIDE = 256
_EPS = 1e-3
# Written as micro-sam writes logit(p), so the float32 values are the same.
_INSIDE_LOGIT = np.float32(np.log((1 - _EPS) / (1 - (1 - _EPS))))
_OUTSIDE_LOGIT = np.float32(np.log(_EPS / (1 - _EPS)))


@dataclass(frozen=True)
class MaskPrompts:
    """The prompts one mask gives.

    points: (N, 2) float64 (row, col) or None; labels: (N,) int32, 1 inside, 0 outside;
    box: (4,) (min_row, min_col, end_row, end_col) with exclusive ends, or None;
    logits: (1, 256, 256) float32 or None.
    """

    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None
    logits: np.ndarray | None = None

    @property
    def signature(self) -> tuple[int | None, bool, bool]:
        """(number of points or None, has a box, has logits): prompts with the same signature
        go through the decoder in one batch without padding, which would change the answer."""
        n = None if self.points is None else len(self.points)
        return n, self.box is not None, self.logits is not None


def prompts_from_mask(
    mask: np.ndarray,
    projection: Projection,
    box_extension: float = 0.0,
    low_res_side: int = LOW_RES_SIDE,
) -> MaskPrompts:
    """The prompts ``projection`` derives from ``mask`` ((H, W) bool); ``low_res_side`` is
    the model's mask-prompt grid (256 for SAM's 1024-pixel input)."""
    empty = not mask.any()
    points = labels = box = logits = None
    if projection.use_points and not empty:
        points, labels = mask_points(mask, box_extension, projection.single_point)
    if projection.use_box and not empty:
        box = mask_box(mask, box_extension)
    if projection.use_mask:
        logits = mask_logits(mask, low_res_side)
    return MaskPrompts(points, labels, box, logits)


def mask_box(mask: np.ndarray, box_extension: float = 0.0) -> np.ndarray:
    """(4,) int64 (min_row, min_col, end_row, end_col) of a non-empty (H, W) mask, ends
    exclusive, grown by ``box_extension`` and clipped to the image."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    r0, c0, r1, c1 = int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1
    if box_extension == 0:
        grow_r = grow_c = 0
    elif box_extension >= 1:
        grow_r = grow_c = box_extension
    else:
        grow_r, grow_c = box_extension * (r1 - r0), box_extension * (c1 - c0)
    height, width = mask.shape
    box = np.array([
        max(r0 - grow_r, 0), max(c0 - grow_c, 0), min(r1 + grow_r, height), min(c1 + grow_c, width)
    ])  # fmt: skip
    return np.round(box).astype(np.int64)  # half to even, as micro-sam rounds


def mask_points(
    mask: np.ndarray, box_extension: float = 0.0, single_point: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Points on the distance map of a non-empty mask: (N, 2) float64 (row, col) and (N,) int32
    labels, positives first."""
    from skimage.feature import peak_local_max

    r0, c0, r1, c1 = mask_box(mask, box_extension)
    crop = mask[r0:r1, c0:c1]
    offset = np.array([r0, c0])
    distances = smoothed_distance(outer_boundary(crop))
    inner = np.where(crop, distances, np.float32(0.0))
    if single_point:
        deepest = np.unravel_index(int(np.argmax(inner)), inner.shape)  # the first, on ties
        return (np.array(deepest) + offset)[None].astype(np.float64), np.ones(1, np.int32)
    outer = np.where(crop, np.float32(0.0), distances)
    inside = peak_local_max(inner, min_distance=3, exclude_border=False)
    outside = peak_local_max(outer, min_distance=5, exclude_border=False)
    points = np.concatenate([inside, outside]).astype(np.float64) + offset
    labels = np.concatenate([np.ones(len(inside), np.int32), np.zeros(len(outside), np.int32)])
    return points, labels


def mask_logits(mask: np.ndarray, side: int = LOW_RES_SIDE) -> np.ndarray:
    """(H, W) bool -> (1, side, side) float32 low-res logits of the mask, for ``mask_input``."""
    import torch
    import torch.nn.functional as F

    binary = mask.astype(np.float32)
    if binary.shape != (side, side):
        size = resized_shape(*binary.shape, side)
        resized = F.interpolate(
            torch.from_numpy(binary)[None, None], size, mode="bilinear",
            align_corners=False, antialias=True,
        )  # fmt: skip
        binary = np.zeros((side, side), np.float32)
        binary[: size[0], : size[1]] = resized[0, 0].numpy()
    return np.where(binary > 0.5, _INSIDE_LOGIT, _OUTSIDE_LOGIT).astype(np.float32)[None]
