"""APG: a point prompt from each seed of the decoder's maps, decoded by SAM, duplicates
removed by mask NMS; micro-sam's ``AutomaticPromptGenerator.generate``, step by step:

1. seeds: 4-connected components of the pixels with foreground >= ``foreground_threshold``,
   centre distance < ``center_distance_threshold`` and boundary distance <
   ``boundary_distance_threshold`` (the maps unsmoothed, unlike AIS);
2. one positive point per seed, at its pixel farthest from the seed's outer boundary (and
   from the image border), the first such pixel in raster order of the seed's bounding box;
3. SAM decodes the points ``batch_size`` at a time (one mask each, or the best of three with
   ``multimasking``); ``refine_with_box_prompts`` decodes again from each mask's box;
4. masks of ``min_size`` pixels or fewer are dropped, then greedy NMS by predicted IoU times
   stability drops masks whose IoU (or intersection over the smaller, with
   ``intersection_over_min``) with a better one exceeds ``nms_threshold``; as micro-sam, only
   masks whose boxes overlap in area are compared;
5. the masks are painted largest first, each only onto pixels still free; the painted labels
   are split into 4-connected pieces, and pieces smaller than ``min_size`` removed.

Masks are kept cropped to their boxes, so memory and NMS scale with the objects' areas, not
the image's.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .maps import InstanceMaps
from .params import ApgParams

if TYPE_CHECKING:
    from ..predictor import Predictor

# micro-sam computes the distance transform of step 2 in blocks of 512 x 512 pixels with a
# halo of 16, which changes the distances (and so the chosen point) in seeds that cross a
# block's edge by more than the halo. The same blocks give the same points.
_EDT_BLOCK = 512
_EDT_HALO = 16
# micro-sam's box refinement grows each box by this fraction of its size on every side.
_BOX_EXTENSION = 0.01


@dataclass
class Candidates:
    """SAM's masks for N prompts, cropped to their boxes.

    boxes: (N, 4) int64 inclusive (min_row, min_col, max_row, max_col), 0s for an empty mask;
    crops: N bool arrays, ``crops[i]`` the mask inside ``boxes[i]``; area: (N,) int64;
    iou: (N,) float32 predicted IoU; stability: (N,) float32.
    """

    boxes: np.ndarray
    crops: list[np.ndarray]
    area: np.ndarray
    iou: np.ndarray
    stability: np.ndarray


def point_prompts(maps: InstanceMaps, params: ApgParams | None = None) -> np.ndarray:
    """(N, 2) int64 (row, col) points, one per seed of the maps, in seed order (step 1-2)."""
    from scipy import ndimage as ndi

    params = params if params is not None else ApgParams()
    seeds = (maps.center_distances < params.center_distance_threshold) & (
        maps.boundary_distances < params.boundary_distance_threshold
    )
    seeds &= maps.foreground >= params.foreground_threshold
    components, count = ndi.label(seeds)  # scipy's default structure: 4-connected
    if count == 0:
        return np.zeros((0, 2), dtype=np.int64)
    return seed_centres(components)


def seed_centres(components: np.ndarray) -> np.ndarray:
    """(N, 2) (row, col) of the pixel of each component (labels 1..N) farthest from the
    components' outer boundaries and the image border."""
    from scipy import ndimage as ndi
    from skimage.segmentation import find_boundaries

    free = ~find_boundaries(components, mode="outer")
    free[0, :] = free[-1, :] = free[:, 0] = free[:, -1] = False
    distances = _blockwise_distances(free)
    centres = []
    for label, window in enumerate(ndi.find_objects(components), start=1):
        if window is None:
            continue
        inside = np.where(components[window] == label, distances[window], 0.0)
        row, col = np.unravel_index(int(np.argmax(inside)), inside.shape)
        centres.append((row + window[0].start, col + window[1].start))
    return np.array(centres, dtype=np.int64).reshape(-1, 2)


def _blockwise_distances(free: np.ndarray) -> np.ndarray:
    """Euclidean distance of each True pixel to the nearest False one, float32, computed
    per block with a halo as micro-sam does (see ``_EDT_BLOCK``)."""
    from scipy import ndimage as ndi

    h, w = free.shape
    out = np.zeros((h, w), dtype=np.float32)
    for r0 in range(0, h, _EDT_BLOCK):
        for c0 in range(0, w, _EDT_BLOCK):
            r1, c1 = min(r0 + _EDT_BLOCK, h), min(c0 + _EDT_BLOCK, w)
            o0, p0 = max(r0 - _EDT_HALO, 0), max(c0 - _EDT_HALO, 0)
            o1, p1 = min(r1 + _EDT_HALO, h), min(c1 + _EDT_HALO, w)
            block = ndi.distance_transform_edt(free[o0:o1, p0:p1])
            out[r0:r1, c0:c1] = block[r0 - o0 : r1 - o0, c0 - p0 : c1 - p0]
    return out


def iter_decode_prompts(
    predictor: Predictor,
    params: ApgParams,
    points: np.ndarray | None = None,
    boxes: np.ndarray | None = None,
) -> Generator[int, None, Candidates]:
    """SAM's masks for N points (N, 2) (row, col) or N boxes (N, 4) (min_row, min_col,
    max_row, max_col), one prompt per mask (step 3). Yields the number of prompts decoded
    after each batch of ``params.batch_size``; returns the masks."""
    import torch

    prompts = points if points is not None else boxes
    threshold = predictor.mask_threshold if params.mask_threshold is None else params.mask_threshold
    if points is not None:
        model_prompts = predictor.model_coords(np.asarray(points, dtype=np.float64))
    else:
        model_prompts = predictor.model_boxes(np.asarray(boxes, dtype=np.float64))
    parts: list[Candidates] = []
    for start in range(0, len(prompts), params.batch_size):
        chunk = torch.as_tensor(model_prompts[start : start + params.batch_size])
        with torch.inference_mode():
            if points is not None:
                labels = torch.ones(chunk.shape[0], 1, dtype=torch.int64)
                logits, iou, _ = predictor.predict_torch(
                    chunk[:, None, :], labels, multimask_output=params.multimasking,
                    return_logits=True,
                )  # fmt: skip
            else:
                logits, iou, _ = predictor.predict_torch(
                    boxes=chunk, multimask_output=params.multimasking, return_logits=True
                )
            if params.multimasking:  # the mask SAM rates best (the first of equals)
                best = iou.argmax(dim=1)
                rows = torch.arange(iou.shape[0], device=iou.device)
                logits, iou = logits[rows, best], iou[rows, best]
            else:
                logits, iou = logits[:, 0], iou[:, 0]
            parts.append(_measure(logits, iou.float(), float(threshold)))
        yield min(start + params.batch_size, len(prompts))
    return _concat(parts)


def _measure(logits, iou, threshold: float) -> Candidates:
    """Candidates from full-resolution logits (B, H, W) and predicted IoU (B,)."""
    import torch

    # SAM's stability score: the masks at +1 and -1 logit, one inside the other.
    inner = (logits > threshold + 1.0).flatten(1).sum(dim=1, dtype=torch.int32)
    outer = (logits > threshold - 1.0).flatten(1).sum(dim=1, dtype=torch.int32)
    stability = (inner.float() / outer.float()).cpu().numpy()
    masks = (logits > threshold).cpu().numpy()
    return candidates_from_masks(masks, iou.cpu().numpy(), stability)


def candidates_from_masks(masks: np.ndarray, iou: np.ndarray, stability: np.ndarray) -> Candidates:
    """Candidates from full masks (N, H, W) bool with their predicted IoU and stability (N,)."""
    rows, cols = masks.any(axis=2), masks.any(axis=1)  # (N, H), (N, W)
    boxes = np.zeros((len(masks), 4), dtype=np.int64)
    crops = []
    for i, mask in enumerate(masks):
        r, c = np.flatnonzero(rows[i]), np.flatnonzero(cols[i])
        if r.size == 0:
            crops.append(np.zeros((1, 1), dtype=bool))
            continue
        boxes[i] = (r[0], c[0], r[-1], c[-1])
        crops.append(mask[r[0] : r[-1] + 1, c[0] : c[-1] + 1].copy())
    area = np.array([int(np.count_nonzero(c)) for c in crops], dtype=np.int64)
    return Candidates(
        boxes, crops, area, np.asarray(iou, np.float32), np.asarray(stability, np.float32)
    )


def _concat(parts: list[Candidates]) -> Candidates:
    if not parts:
        return Candidates(
            np.zeros((0, 4), np.int64), [], np.zeros(0, np.int64), np.zeros(0, np.float32),
            np.zeros(0, np.float32),
        )  # fmt: skip
    return Candidates(
        np.concatenate([p.boxes for p in parts]),
        [c for p in parts for c in p.crops],
        np.concatenate([p.area for p in parts]),
        np.concatenate([p.iou for p in parts]),
        np.concatenate([p.stability for p in parts]),
    )


def refinement_boxes(found: Candidates, shape: tuple[int, int]) -> np.ndarray:
    """(N, 4) (min_row, min_col, max_row, max_col) boxes for a second round of decoding:
    each mask's box grown by 1% of its size on every side, as micro-sam derives them.

    micro-sam clips the far x to the image's height and the far y to its width (its
    ``_derive_box_prompts``); the same is done here so that results match (on a square
    image the two readings agree).
    """
    r0, c0, r1, c1 = (found.boxes[:, i].astype(np.float64) for i in range(4))
    h, w = r1 - r0, c1 - c0  # micro-sam's XYWH from inclusive boxes: one pixel short
    e = _BOX_EXTENSION
    return np.stack(
        [
            np.maximum(r0 - h * e, 0),
            np.maximum(c0 - w * e, 0),
            np.minimum(r0 + (1 + e) * h, shape[1]),
            np.minimum(c0 + (1 + e) * w, shape[0]),
        ],
        axis=1,
    )


def mask_nms(found: Candidates, params: ApgParams) -> list[int]:
    """Indices of the masks kept by step 4, best first."""
    candidates = np.arange(len(found.area))
    if params.min_size > 0:
        candidates = candidates[found.area > params.min_size]
    scores = found.iou[candidates] * found.stability[candidates]  # float32
    # Best first, equal scores in prompt order (NaN, from an empty mask, first as in torch).
    order = candidates[np.lexsort((candidates, -np.nan_to_num(scores, nan=np.inf)))]
    boxes = found.boxes.astype(np.float32)
    threshold = np.float32(params.nms_threshold)
    keep: list[int] = []
    alive = list(order)
    while alive:
        best, rest = alive[0], alive[1:]
        keep.append(int(best))
        alive = [j for j in rest if _overlap(found, boxes, best, j, params) <= threshold]
    return keep


def _overlap(found: Candidates, boxes: np.ndarray, i: int, j: int, params: ApgParams):
    """IoU (or intersection over the smaller) of masks i and j as float32; 0 unless their
    boxes overlap in area (micro-sam's ``_overlap_matrix``)."""
    lo = np.maximum(boxes[i], boxes[j])
    hi = np.minimum(boxes[i], boxes[j])
    if (hi[2] - lo[0]) <= 0 or (hi[3] - lo[1]) <= 0:
        return np.float32(0.0)
    r0, c0, r1, c1 = (int(v) for v in (lo[0], lo[1], hi[2], hi[3]))
    bi, bj = found.boxes[i], found.boxes[j]
    a = found.crops[i][r0 - bi[0] : r1 - bi[0] + 1, c0 - bi[1] : c1 - bi[1] + 1]
    b = found.crops[j][r0 - bj[0] : r1 - bj[0] + 1, c0 - bj[1] : c1 - bj[1] + 1]
    inter = np.float32(np.count_nonzero(a & b))
    if params.intersection_over_min:
        smaller = np.float32(min(found.area[i], found.area[j]))
        return inter / (smaller + np.float32(1e-6))
    union = np.float32(found.area[i] + found.area[j]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / union


def paint(found: Candidates, keep: list[int], shape: tuple[int, int], min_size: int) -> np.ndarray:
    """(H, W) int32 labels from the kept masks (step 5)."""
    from skimage.measure import label

    from .ais import remove_small_objects

    labels = np.zeros(shape, dtype=np.int32)
    # Largest first; equal areas keep the NMS order (Python's sort is stable).
    for new_id, i in enumerate(sorted(keep, key=lambda k: found.area[k], reverse=True), 1):
        if found.area[i] == 0:
            continue
        r0, c0, r1, c1 = found.boxes[i]
        window = labels[r0 : r1 + 1, c0 : c1 + 1]
        window[found.crops[i] & (window == 0)] = new_id
    pieces = label(labels, background=0, connectivity=1).astype(np.int32)  # numbered 1..N
    return remove_small_objects(pieces, min_size) if min_size > 0 else pieces
