"""Segment everything: prompt the image with a grid of points and keep the good masks.

The algorithm, parameter names and defaults are those of the reference
``segment_anything.SamAutomaticMaskGenerator``, and so are the masks it keeps (up to float
rounding). It is several times faster because it filters on the predicted IoU before it
upsamples anything, shares the image-side work of the decoder between prompts, and measures
each mask at the image's resolution straight from the low-res logits, a few at a time.

:func:`iter_generate_masks` is a generator that yields progress and returns the masks; the
plain function :func:`generate_masks` runs it to the end. Stop iterating (or ``close()`` the
generator) to cancel between two batches of points.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..imaging import to_uint8_rgb
from ..progress import ProgressCallback, drain
from .geometry import Box, crop_boxes
from .params import AutomaticParams, settings_from
from .records import MaskRecord

if TYPE_CHECKING:
    import torch

    from ..decoding.upsampling import LogitUpsampler
    from ..predictor import Predictor

# On a CPU, prompts go through the decoder (and the upsampling) in passes whose large
# intermediates stay near this many float32 elements (16 MB, 4 prompts of SAM's 64 x 64 x 256
# image tokens). On 2 cores such passes ran as fast as larger ones, which were slower (fresh
# pages for every intermediate), and memory stays small. A GPU takes the caller's whole batch
# (``points_per_batch``, the reference's memory knob) in one pass.
_CPU_PASS_ELEMENTS = 4 * 1024 * 1024


# ---- public functions ------------------------------------------------------------------------


def generate_masks(
    predictor: Predictor,
    image: np.ndarray | None = None,
    *,
    contrast_limits: tuple[float, float] | None = None,
    progress: ProgressCallback | None = None,
    **params: Any,
) -> list[MaskRecord]:
    """Segment everything in ``image`` (or in the predictor's current image); see
    :func:`iter_generate_masks`. ``progress(done, total)`` is called after every step."""
    steps = iter_generate_masks(predictor, image, contrast_limits=contrast_limits, **params)
    return drain(steps, progress)


def iter_generate_masks(
    predictor: Predictor,
    image: np.ndarray | None = None,
    *,
    contrast_limits: tuple[float, float] | None = None,
    **params: Any,
) -> Generator[tuple[int, int], None, list[MaskRecord]]:
    """Segment everything; yields ``(done, total)`` steps and returns the masks.

    predictor: a :class:`~napari_segany.Predictor`. image: (H, W), (H, W, 3) or (H, W, 4), any
    dtype (converted as :func:`~napari_segany.to_uint8_rgb` does, with ``contrast_limits``).
    With an image, every crop is encoded, and the predictor keeps the whole image's embedding
    afterwards. Without one, the predictor's current embedding is used as it is (no encoding;
    crops need the image). params: the fields of :class:`AutomaticParams`.

    A step is one crop encoded or one batch of ``points_per_batch`` points decoded. The masks
    come back as :class:`MaskRecord` s, best first in the reference's order (predicted IoU,
    or, with crops, smaller crops first). The generator's ``StopIteration.value`` holds them.
    A mask without pixels is never returned (the reference keeps such masks when the
    stability filter is off).
    Bad parameters and a missing image are reported here, before the first step.
    """
    settings = settings_from(params)
    if image is not None:
        rgb = to_uint8_rgb(image, contrast_limits)
        shape = (int(rgb.shape[0]), int(rgb.shape[1]))
    else:
        if settings.crop_n_layers > 0:
            raise ValueError(
                "Crops need the image itself: pass image=... when crop_n_layers > 0 (each crop "
                "is encoded on its own)."
            )
        if not predictor.is_image_set:
            raise ValueError("No image: pass image=..., or call predictor.set_image(image) first.")
        rgb, shape = None, predictor.original_size
    return _generate(predictor, rgb, shape, settings)


def _generate(
    predictor: Predictor,
    rgb: np.ndarray | None,
    shape: tuple[int, int],
    settings: AutomaticParams,
) -> Generator[tuple[int, int], None, list[MaskRecord]]:
    """The work of :func:`iter_generate_masks`; rgb: (H, W, 3) uint8, or None to reuse the
    predictor's embedding."""
    import torch

    grids = settings.layer_grids()
    crops = crop_boxes(*shape, settings.crop_n_layers, settings.crop_overlap_ratio)
    batch = settings.points_per_batch
    total = sum(math.ceil(len(grids[layer]) / batch) for _, layer in crops)
    total += len(crops) if rgb is not None else 0
    done = 0
    yield done, total

    whole_image = None  # the whole image's embedding, restored after the crops
    found: list[_CropMasks] = []
    try:
        for crop_box, layer in crops:
            if rgb is not None:
                r0, c0, r1, c1 = crop_box
                predictor.set_image(rgb[r0:r1, c0:c1])
                if len(crops) > 1 and whole_image is None:
                    whole_image = predictor.get_embedding_state()
                done += 1
                yield done, total
            with torch.inference_mode():
                scan = _CropScan(predictor, crop_box, shape, settings)
            crop_h, crop_w = crop_box[2] - crop_box[0], crop_box[3] - crop_box[1]
            points = grids[layer] * np.array([crop_h, crop_w], dtype=np.float64)
            for start in range(0, len(points), batch):
                with torch.inference_mode():
                    scan.add_points(points[start : start + batch])
                done += 1
                yield done, total
            with torch.inference_mode():
                found.append(scan.finish())
    finally:
        if whole_image is not None:
            predictor.set_image_embedding(whole_image.features, whole_image.original_size)

    with torch.inference_mode():
        return _records(found, shape, settings, predictor.mask_threshold)


# ---- one crop --------------------------------------------------------------------------------


@dataclass
class _CropMasks:
    """Masks kept in one crop. logits: (K, h, w) low-res; boxes: (K, 4) inclusive, in image
    pixels; iou, stability: (K,); points: (K, 2) (row, col) in image pixels."""

    crop_box: Box
    upsampler: LogitUpsampler
    logits: torch.Tensor
    boxes: torch.Tensor
    iou: torch.Tensor
    stability: torch.Tensor
    points: np.ndarray


class _CropScan:
    """Decodes the points of one crop (encoded in ``predictor``) and filters their masks."""

    def __init__(
        self,
        predictor: Predictor,
        crop_box: Box,
        image_shape: tuple[int, int],
        settings: AutomaticParams,
    ) -> None:
        self.predictor = predictor
        self.device = predictor.device
        self.crop_box = crop_box
        self.image_shape = image_shape
        self.settings = settings
        self.upsampler = predictor.upsampler
        self.per_pass = self.upscale_per_pass = settings.points_per_batch
        if self.device.type == "cpu":
            channels, grid_h, grid_w = predictor.embedding_shape
            per_prompt = grid_h * grid_w * channels  # image tokens, and each (B, N, C) temporary
            self.per_pass = max(1, _CPU_PASS_ELEMENTS // per_prompt)
            rows, cols = self.upsampler.low_res_shape
            upscaled = rows * cols * channels // 8  # the last upscaling's features of a prompt
            self.upscale_per_pass = max(1, _CPU_PASS_ELEMENTS // upscaled)
        self._kept: list[tuple[torch.Tensor, ...]] = []
        self._points: list[np.ndarray] = []

    def add_points(self, points: np.ndarray) -> None:
        """points: (B, 2) (row, col) in crop pixels."""
        import torch

        xy = torch.as_tensor(self.predictor.model_coords(points), device=self.device)
        for start in range(0, len(points), self.per_pass):
            self._decode_and_filter(
                xy[start : start + self.per_pass], points[start : start + self.per_pass]
            )

    def _decode_and_filter(self, xy: torch.Tensor, points: np.ndarray) -> None:
        """xy: (B, 2) model-input (x, y) of ``points``, (B, 2) (row, col) in crop pixels."""
        import torch

        from .filters import mask_stats, near_crop_edge

        settings = self.settings
        predictor = self.predictor
        labels = torch.ones((xy.shape[0], 1), dtype=torch.int64, device=self.device)
        decoded = predictor.decode_torch(xy[:, None, :], labels, multimask_output=True)
        iou = decoded.iou.float()  # (B, M)
        keep = iou > settings.pred_iou_thresh
        if settings.pred_iou_thresh <= 0.0:
            keep[:] = True
        prompts = keep.any(dim=1).nonzero()[:, 0]
        rows, cols = self.upsampler.low_res_shape
        for start in range(0, prompts.shape[0], self.upscale_per_pass):
            chosen = prompts[start : start + self.upscale_per_pass]
            chosen_keep = keep[chosen]  # (P, M)
            # Prompt-major, then output: the reference's candidate order.
            logits = predictor.low_res_logits(decoded, chosen, image_only=True)
            logits = logits[chosen_keep][:, :rows, :cols]
            stats = mask_stats(
                logits,
                self.upsampler,
                predictor.mask_threshold,
                settings.stability_score_offset,
                settings.stability_score_thresh,
            )
            ok = stats.area > 0
            if settings.stability_score_thresh > 0.0:
                ok &= stats.stability >= settings.stability_score_thresh
            ok &= ~near_crop_edge(stats.boxes, self.crop_box, self.image_shape)
            which = chosen[:, None].expand_as(chosen_keep)[chosen_keep][ok]
            self._kept.append(
                (
                    logits[ok].contiguous(),
                    stats.boxes[ok],
                    iou[chosen][chosen_keep][ok],
                    stats.stability[ok],
                )
            )
            self._points.append(points[which.cpu().numpy()])

    def finish(self) -> _CropMasks:
        """Remove duplicates within the crop and move everything to image coordinates."""
        import torch

        from .filters import box_nms

        rows, cols = self.upsampler.low_res_shape
        if self._kept:
            logits, boxes, iou, stability = (torch.cat(parts) for parts in zip(*self._kept))
            points = np.concatenate(self._points)
        else:
            logits = torch.zeros((0, rows, cols), device=self.device)
            boxes = torch.zeros((0, 4), dtype=torch.int64, device=self.device)
            iou = stability = torch.zeros((0,), device=self.device)
            points = np.zeros((0, 2))
        self._kept, self._points = [], []
        keep = box_nms(boxes, iou, self.settings.box_nms_thresh)
        r0, c0 = self.crop_box[:2]
        offset = torch.tensor([r0, c0, r0, c0], device=self.device)
        return _CropMasks(
            crop_box=self.crop_box,
            upsampler=self.upsampler,
            logits=logits[keep],
            boxes=boxes[keep] + offset,
            iou=iou[keep],
            stability=stability[keep],
            points=points[keep.cpu().numpy()] + np.array([r0, c0]),
        )


# ---- all crops -> records --------------------------------------------------------------------


def _records(
    found: list[_CropMasks],
    shape: tuple[int, int],
    settings: AutomaticParams,
    threshold: float,
) -> list[MaskRecord]:
    import torch

    from .filters import box_nms, boxes_of_masks, remove_small_regions, upsampled_masks

    crop_of = np.concatenate([np.full(len(c.iou), i) for i, c in enumerate(found)])
    index_in_crop = np.concatenate([np.arange(len(c.iou)) for c in found])
    boxes = torch.cat([c.boxes for c in found])
    if len(found) > 1:
        # Prefer masks from smaller crops: they saw the object at a higher resolution.
        areas = torch.tensor(
            [(c.crop_box[2] - c.crop_box[0]) * (c.crop_box[3] - c.crop_box[1]) for c in found]
        )
        scores = (1 / areas)[torch.as_tensor(crop_of, dtype=torch.int64)]
        keep = box_nms(boxes.cpu(), scores, settings.crop_nms_thresh).numpy()
        crop_of, index_in_crop = crop_of[keep], index_in_crop[keep]

    # One array per record, so that keeping a few records does not keep all masks alive.
    masks = [np.zeros(shape, dtype=bool) for _ in crop_of]
    for i, crop in enumerate(found):
        rows = np.flatnonzero(crop_of == i)
        if rows.size == 0:
            continue
        picked = torch.as_tensor(index_in_crop[rows], device=crop.logits.device)
        r0, c0, r1, c1 = crop.crop_box
        for row, mask in zip(rows, upsampled_masks(crop.logits[picked], crop.upsampler, threshold)):
            masks[row][r0:r1, c0:c1] = mask

    def column(name: str) -> np.ndarray:
        values = [getattr(crop, name).cpu().numpy() for crop in found]
        return np.concatenate(values)[_flat_index(found, crop_of, index_in_crop)]

    boxes_np, iou, stability = column("boxes"), column("iou"), column("stability")
    points = np.concatenate([c.points for c in found])[_flat_index(found, crop_of, index_in_crop)]
    order = np.arange(len(masks))
    if settings.min_mask_region_area > 0 and len(masks):
        unchanged = np.ones(len(masks), dtype=bool)
        for i in range(len(masks)):
            mask, changed_holes = remove_small_regions(
                masks[i], settings.min_mask_region_area, "holes"
            )
            mask, changed_islands = remove_small_regions(
                mask, settings.min_mask_region_area, "islands"
            )
            if changed_holes or changed_islands:
                masks[i] = mask
                unchanged[i] = False
                boxes_np[i] = boxes_of_masks(mask[None])[0]
        # Masks that needed no cleaning win against new duplicates of cleaned ones.
        threshold_nms = max(settings.box_nms_thresh, settings.crop_nms_thresh)
        order = box_nms(
            torch.as_tensor(boxes_np),
            torch.as_tensor(unchanged, dtype=torch.float32),
            threshold_nms,
        ).numpy()

    crop_boxes_list = [found[i].crop_box for i in crop_of]
    return [
        MaskRecord(
            mask=masks[i],
            area=int(np.count_nonzero(masks[i])),
            bbox=_exclusive(boxes_np[i]),
            predicted_iou=float(iou[i]),
            stability_score=float(stability[i]),
            point=(float(points[i, 0]), float(points[i, 1])),
            crop_box=crop_boxes_list[i],
        )
        for i in order
    ]


def _flat_index(
    found: list[_CropMasks], crop_of: np.ndarray, index_in_crop: np.ndarray
) -> np.ndarray:
    """(crop, index in crop) pairs -> indices into the crops' concatenated arrays."""
    starts = np.cumsum([0] + [len(c.iou) for c in found])[:-1]
    return starts[crop_of] + index_in_crop if len(crop_of) else np.zeros(0, dtype=np.int64)


def _exclusive(box: np.ndarray) -> Box:
    r0, c0, r1, c1 = (int(v) for v in box)
    return (r0, c0, r1 + 1, c1 + 1)
