"""The filters of segment-everything: mask quality, crop edges, duplicates, small regions.

Each filter decides exactly as the reference ``SamAutomaticMaskGenerator`` does (same
comparisons, same float32 box arithmetic, same tie order), so the two keep the same masks.
Boxes here are the reference's: (min_row, min_col, max_row, max_col) with the max *inclusive*
(the last row and column of the mask), as float32 for IoU.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import torch

    from ..decoding.upsampling import LogitUpsampler
    from .geometry import Box

# Masks whose box comes this close (pixels) to a crop's inner edge are cut off by the crop.
CROP_EDGE_TOLERANCE = 20.0
# Float32 elements of upsampled logits held at once (16 MB): memory stays bounded whatever
# the image size or the number of candidate masks.
_UPSAMPLED_ELEMENTS = 4 * 1024 * 1024
# Rows of the IoU matrix computed at once in box NMS.
_NMS_BLOCK = 512


@dataclass(frozen=True)
class MaskStats:
    """What the filters need about M candidate masks, measured at the image's resolution.

    stability: (M,) float32 IoU of the masks thresholded at +offset and -offset (NaN when both
    are empty); area: (M,) int64 pixels; boxes: (M, 4) int64 inclusive boxes (0s if empty).
    """

    stability: torch.Tensor
    area: torch.Tensor
    boxes: torch.Tensor


def _chunks(count: int, per_item: int) -> Iterator[slice]:
    step = max(1, _UPSAMPLED_ELEMENTS // max(per_item, 1))
    for start in range(0, count, step):
        yield slice(start, min(start + step, count))


def mask_stats(
    logits: torch.Tensor,
    upsampler: LogitUpsampler,
    threshold: float,
    offset: float,
    min_stability: float = 0.0,
) -> MaskStats:
    """Stability score, area and box of each mask, from its low-res logits (M, h, w).

    Computed on the full-resolution logits, like the reference, but a few masks at a time and
    straight from the low-res logits (see :class:`LogitUpsampler`). Masks whose stability is
    below ``min_stability`` (when positive) are about to be dropped: they get area 0 and no
    box, which saves thresholding them.
    """
    import torch

    from ..decoding.upsampling import greater

    h, w = upsampler.out_shape
    stability, area, boxes = [], [], []
    for part in _chunks(logits.shape[0], h * w):
        full = upsampler.logits(logits[part])  # (m, H, W)
        # One mask is always inside the other, so their IoU is a ratio of pixel counts.
        inner = _count(greater(full, threshold + offset))
        outer = _count(greater(full, threshold - offset))
        stable = inner.float() / outer.float()
        stability.append(stable)
        part_area = torch.zeros_like(inner)
        part_boxes = torch.zeros((len(inner), 4), dtype=torch.int64, device=inner.device)
        keep = (
            stable >= min_stability
            if min_stability > 0.0
            else torch.ones_like(stable, dtype=torch.bool)
        )
        if bool(keep.all()):
            binary = greater(full, threshold)
            part_area, part_boxes = _count(binary), _inclusive_boxes(binary)
        elif bool(keep.any()):
            binary = greater(full[keep], threshold)
            part_area[keep], part_boxes[keep] = _count(binary), _inclusive_boxes(binary)
        area.append(part_area)
        boxes.append(part_boxes)
        del full
    if not stability:
        empty = logits.new_zeros((0,))
        return MaskStats(empty, empty.long(), empty.long().reshape(0, 4))
    return MaskStats(torch.cat(stability), torch.cat(area), torch.cat(boxes))


def upsampled_masks(
    logits: torch.Tensor, upsampler: LogitUpsampler, threshold: float
) -> Iterator[np.ndarray]:
    """(M, h, w) low-res logits -> M (H, W) bool masks on the host, a few at a time."""
    h, w = upsampler.out_shape
    for part in _chunks(logits.shape[0], h * w):
        yield from upsampler.masks(logits[part], threshold).cpu().numpy()


def _count(binary: torch.Tensor) -> torch.Tensor:
    """(M, H, W) bool -> (M,) int64 number of True pixels."""
    import torch

    # Summing bytes is ~20x faster than summing bools (which converts them to int64 first).
    return binary.flatten(1).view(torch.uint8).sum(dim=1, dtype=torch.int32).long()


def _inclusive_boxes(binary: torch.Tensor) -> torch.Tensor:
    """(M, H, W) bool -> (M, 4) int64 (min_row, min_col, max_row, max_col); 0s when empty."""
    import torch

    rows = binary.any(dim=2).to(torch.uint8)  # (M, H)
    cols = binary.any(dim=1).to(torch.uint8)  # (M, W)
    h, w = rows.shape[1], cols.shape[1]
    first_row = rows.argmax(dim=1)
    last_row = h - 1 - rows.flip(1).argmax(dim=1)
    first_col = cols.argmax(dim=1)
    last_col = w - 1 - cols.flip(1).argmax(dim=1)
    boxes = torch.stack([first_row, first_col, last_row, last_col], dim=1)
    return boxes * rows.any(dim=1, keepdim=True)


def boxes_of_masks(masks: np.ndarray) -> np.ndarray:
    """(M, H, W) bool -> (M, 4) int64 inclusive boxes (0s when empty), on the host."""
    rows = masks.any(axis=2)
    cols = masks.any(axis=1)
    h, w = rows.shape[1], cols.shape[1]
    boxes = np.stack(
        [
            rows.argmax(axis=1),
            cols.argmax(axis=1),
            h - 1 - rows[:, ::-1].argmax(axis=1),
            w - 1 - cols[:, ::-1].argmax(axis=1),
        ],
        axis=1,
    ).astype(np.int64)
    return boxes * rows.any(axis=1, keepdims=True)


def near_crop_edge(
    boxes: torch.Tensor, crop_box: Box, image_shape: tuple[int, int]
) -> torch.Tensor:
    """(M, 4) inclusive boxes in crop coordinates -> (M,) True where a mask is cut by the crop.

    A box side within :data:`CROP_EDGE_TOLERANCE` of a crop side that is not also an image
    side means the object probably continues outside the crop (compared as the reference does,
    against the crop's exclusive far edge).
    """
    import torch

    r0, c0, r1, c1 = crop_box
    crop = torch.tensor([r0, c0, r1, c1], dtype=torch.float32, device=boxes.device)
    image = torch.tensor([0, 0, *image_shape], dtype=torch.float32, device=boxes.device)
    offset = torch.tensor([r0, c0, r0, c0], device=boxes.device)
    placed = (boxes + offset).float()
    tol = CROP_EDGE_TOLERANCE
    near_crop = torch.isclose(placed, crop[None], atol=tol, rtol=0)
    near_image = torch.isclose(placed, image[None], atol=tol, rtol=0)
    return (near_crop & ~near_image).any(dim=1)


def box_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression; returns the kept indices, best score first.

    boxes: (N, 4) inclusive boxes; scores: (N,). A box is dropped when its IoU with a kept box
    of higher score is above ``iou_threshold``. Equal scores keep their input order. IoU uses
    float32 and areas (max - min) along each axis, as torchvision's ``nms`` does.
    """
    import torch

    order = torch.sort(scores, descending=True, stable=True).indices
    n = order.shape[0]
    if n == 0 or iou_threshold >= 1.0:  # an IoU never exceeds 1: nothing to suppress
        return order
    b = boxes[order].float()
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    removed = np.zeros(n, dtype=bool)
    keep: list[int] = []
    for start in range(0, n, _NMS_BLOCK):
        stop = min(start + _NMS_BLOCK, n)
        first = b[start:stop, None, :]  # (blk, 1, 4)
        rest = b[None, start:, :]  # (1, n - start, 4)
        lo = torch.maximum(first, rest)  # (blk, n - start, 4); [:2] are the overlap's min
        hi = torch.minimum(first, rest)  # [2:] are the overlap's max
        height = (hi[..., 2] - lo[..., 0]).clamp_min(0)
        width = (hi[..., 3] - lo[..., 1]).clamp_min(0)
        inter = height * width
        iou = inter / (area[start:stop, None] + area[None, start:] - inter)
        # Compared in float64, as torchvision's kernel does (a float32 IoU of exactly 0.3
        # exceeds the double 0.3).
        over = iou.cpu().numpy().astype(np.float64) > iou_threshold  # (blk, n - start)
        for i in range(stop - start):
            if removed[start + i]:
                continue
            keep.append(start + i)
            later = over[i]
            later[: i + 1] = False
            removed[start:] |= later
    return order[torch.as_tensor(keep, dtype=torch.int64, device=order.device)]


def remove_small_regions(
    mask: np.ndarray, min_area: int, mode: Literal["holes", "islands"]
) -> tuple[np.ndarray, bool]:
    """Fill holes, or remove islands, smaller than ``min_area`` pixels (8-connected).

    mask: (H, W) bool. ``holes`` are connected regions of background, including ones that touch
    the image border; if every island is small, the largest one stays. Returns the new mask and
    whether anything changed.
    """
    from skimage.measure import label

    fill_holes = mode == "holes"
    regions, n = label(mask != fill_holes, connectivity=2, return_num=True)
    sizes = np.bincount(regions.ravel(), minlength=n + 1)[1:]
    small = sizes < min_area
    if not small.any():
        return mask, False
    if fill_holes:
        lookup = np.concatenate([[False], small])
        return mask | lookup[regions], True
    large = ~small
    if not large.any():
        large[int(np.argmax(sizes))] = True
    lookup = np.concatenate([[False], large])
    return lookup[regions], True
