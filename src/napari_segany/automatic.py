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
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from .automatic_geometry import Box, crop_boxes, layer_point_grids
from .imaging import to_uint8_rgb
from .transforms import rowcol_to_model_xy

if TYPE_CHECKING:
    import torch

    from .automatic_geometry import LogitUpsampler
    from .predictor import Predictor

ProgressCallback = Callable[[int, int], None]

# On a CPU, prompts go through the decoder (and the upsampling) in passes whose large
# intermediates stay near this many float32 elements (16 MB, 4 prompts of SAM's 64 x 64 x 256
# image tokens). On 2 cores such passes ran as fast as larger ones, which were slower (fresh
# pages for every intermediate), and memory stays small. A GPU takes the caller's whole batch
# (``points_per_batch``, the reference's memory knob) in one pass.
_CPU_PASS_ELEMENTS = 4 * 1024 * 1024


@dataclass(frozen=True)
class AutomaticParams:
    """Settings of segment-everything: the reference ``SamAutomaticMaskGenerator``'s names
    and defaults (tuned there for vit_h), with coordinates in (row, col).

    points_per_side: the grid has points_per_side² points (per crop layer 0).
    points_per_batch: points decoded between two progress reports (and chances to cancel).
    pred_iou_thresh: keep masks whose predicted IoU is above this (0 or less: no filter).
    stability_score_thresh: keep masks whose stability score is at least this (0: no filter).
    stability_score_offset: the stability score is the IoU of the mask thresholded at
        +offset and -offset (logits).
    box_nms_thresh: of two masks in one crop whose boxes overlap with IoU above this, keep the
        one with the higher predicted IoU (1.0: keep all).
    crop_n_layers: also segment crops: layer i cuts the image into (2^i)² overlapping crops.
    crop_nms_thresh: box IoU above which masks from different crops are duplicates (the one
        from the smaller crop stays).
    crop_overlap_ratio: overlap of neighbouring crops in layer 1, as a fraction of the image's
        short side (less in later layers).
    crop_n_points_downscale_factor: layer i gets points_per_side / factor^i points a side.
    point_grids: explicit grids, one per crop layer, each an (N, 2) array of (row, col)
        fractions of the crop's height and width in [0, 1]; replaces points_per_side. (The
        reference takes (x, y) here.)
    min_mask_region_area: fill holes and remove islands smaller than this many pixels, then
        drop new duplicates (box IoU above the larger NMS threshold) (0: off).
    """

    points_per_side: int | None = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    point_grids: tuple[tuple[tuple[float, float], ...], ...] | None = field(default=None)
    min_mask_region_area: int = 0

    def __post_init__(self) -> None:
        _check_int("points_per_batch", self.points_per_batch, minimum=1)
        _check_int("crop_n_layers", self.crop_n_layers, minimum=0)
        _check_int("crop_n_points_downscale_factor", self.crop_n_points_downscale_factor, 1)
        _check_int("min_mask_region_area", self.min_mask_region_area, minimum=0)
        for name in (
            "pred_iou_thresh",
            "stability_score_thresh",
            "stability_score_offset",
            "box_nms_thresh",
            "crop_nms_thresh",
            "crop_overlap_ratio",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise ValueError(f"{name} must be a number, got {value!r}.")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}.")
        if not 0.0 <= self.crop_overlap_ratio < 1.0:
            raise ValueError(
                f"crop_overlap_ratio must be in [0, 1), got {self.crop_overlap_ratio!r}."
            )
        if self.point_grids is not None:
            object.__setattr__(self, "point_grids", _normalised_grids(self.point_grids))
            if len(self.point_grids) < self.crop_n_layers + 1:
                raise ValueError(
                    f"point_grids has {len(self.point_grids)} grid(s) but crop_n_layers="
                    f"{self.crop_n_layers} needs one per layer, {self.crop_n_layers + 1} in all."
                )
        elif self.points_per_side is None:
            raise ValueError("Give points_per_side or point_grids: there are no points to use.")
        else:
            _check_int("points_per_side", self.points_per_side, minimum=1)
            layer_point_grids(  # raises when a layer would get no points
                self.points_per_side, self.crop_n_layers, self.crop_n_points_downscale_factor
            )

    def layer_grids(self) -> list[np.ndarray]:
        """One (N, 2) array of (row, col) fractions per crop layer."""
        if self.point_grids is not None:
            return [np.array(g, dtype=np.float64).reshape(-1, 2) for g in self.point_grids]
        return layer_point_grids(
            self.points_per_side, self.crop_n_layers, self.crop_n_points_downscale_factor
        )


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def _normalised_grids(grids: Any) -> tuple[tuple[tuple[float, float], ...], ...]:
    """Sequence of (N, 2) arrays -> nested tuples (hashable, so params compare by value)."""
    out = []
    for i, grid in enumerate(grids):
        points = np.asarray(grid, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
            raise ValueError(
                f"point_grids[{i}] must be a non-empty (N, 2) array of (row, col) fractions; "
                f"got shape {points.shape}."
            )
        if not np.all(np.isfinite(points)) or points.min() < 0 or points.max() > 1:
            raise ValueError(
                f"point_grids[{i}] must hold fractions of the crop size in [0, 1] as (row, col)."
            )
        out.append(tuple((float(r), float(c)) for r, c in points))
    return tuple(out)


@dataclass(frozen=True, eq=False)
class MaskRecord:
    """One object found by segment-everything.

    mask: (H, W) bool at the image's size. area: its number of pixels.
    bbox: (min_row, min_col, max_row, max_col) with the max *exclusive*, so
    ``mask[r0:r1, c0:c1]`` holds every pixel of the object (the reference's XYWH box, as
    (y, x, y + h + 1, x + w + 1)).
    predicted_iou: the model's own estimate of the mask's quality.
    stability_score: IoU of the mask thresholded at +offset and -offset.
    point: the (row, col) prompt in image pixels that produced the mask.
    crop_box: the crop it was found in, same convention as bbox (the whole image in layer 0).
    """

    mask: np.ndarray
    area: int
    bbox: Box
    predicted_iou: float
    stability_score: float
    point: tuple[float, float]
    crop_box: Box


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
    while True:
        try:
            done, total = next(steps)
        except StopIteration as finished:
            return finished.value
        if progress is not None:
            progress(done, total)


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
        return _records(found, shape, settings, predictor.model.mask_threshold)


def masks_to_labels(records: Sequence[MaskRecord], shape: tuple[int, int]) -> np.ndarray:
    """Paint the records into one (H, W) int32 label image; 0 is background.

    Record ``i`` gets label ``i + 1``. Larger masks are painted first and smaller ones on top,
    so a small object inside a large one stays visible; a mask hidden entirely by smaller ones
    leaves no label.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2:
        raise ValueError(f"shape must be the image's (height, width), got {shape}.")
    labels = np.zeros(shape, dtype=np.int32)
    for index in sorted(range(len(records)), key=lambda i: -records[i].area):
        record = records[index]
        if record.mask.shape != shape:
            raise ValueError(
                f"Record {index} has a mask of shape {record.mask.shape}, not the image's {shape}."
            )
        r0, c0, r1, c1 = record.bbox
        window = labels[r0:r1, c0:c1]
        window[record.mask[r0:r1, c0:c1]] = index + 1
    return labels


def settings_from(params: dict[str, Any]) -> AutomaticParams:
    """Validated settings from keyword parameters; TypeError names unknown ones."""
    names = {f.name for f in fields(AutomaticParams)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise TypeError(
            f"Unknown segment-everything parameter(s) {', '.join(unknown)}; the parameters are "
            f"{', '.join(sorted(names))}."
        )
    return AutomaticParams(**params)


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
        from .automatic_geometry import LogitUpsampler
        from .folded_decoder import FoldedDecoder

        model = predictor.model
        self.model = model
        self.device = predictor.device
        self.crop_box = crop_box
        self.image_shape = image_shape
        self.settings = settings
        self.crop_size = predictor.original_size
        low_res = model.prompt_encoder.mask_input_size[0]
        self.upsampler = LogitUpsampler.build(
            low_res, model.image_size, predictor.input_size, self.crop_size, self.device
        )
        rows, cols = self.upsampler.low_res_shape
        # The embedding tensor itself: the numpy copy of get_image_embedding() would cost a
        # device round trip per crop.
        self.decoder = FoldedDecoder(
            model, predictor.features, (math.ceil(rows / 4), math.ceil(cols / 4))
        )
        self.per_pass = self.upscale_per_pass = settings.points_per_batch
        if self.device.type == "cpu":
            grid_h, grid_w = self.decoder.embedding_hw
            channels = model.prompt_encoder.embed_dim
            per_prompt = grid_h * grid_w * channels  # image tokens, and each (B, N, C) temporary
            self.per_pass = max(1, _CPU_PASS_ELEMENTS // per_prompt)
            upscaled = self.decoder.grid_shape[0] * self.decoder.grid_shape[1] * 16 * channels // 8
            self.upscale_per_pass = max(1, _CPU_PASS_ELEMENTS // upscaled)
        self._kept: list[tuple[torch.Tensor, ...]] = []
        self._points: list[np.ndarray] = []

    def add_points(self, points: np.ndarray) -> None:
        """points: (B, 2) (row, col) in crop pixels."""
        import torch

        xy = rowcol_to_model_xy(points, self.crop_size, self.model.image_size)
        xy = torch.as_tensor(xy, device=self.device)
        for start in range(0, len(points), self.per_pass):
            self._decode_and_filter(
                xy[start : start + self.per_pass], points[start : start + self.per_pass]
            )

    def _decode_and_filter(self, xy: torch.Tensor, points: np.ndarray) -> None:
        """xy: (B, 2) model-input (x, y) of ``points``, (B, 2) (row, col) in crop pixels."""
        from .automatic_filters import mask_stats, near_crop_edge

        settings = self.settings
        batch = self.decoder.decode_points(xy)
        iou = batch.iou.float()  # (B, M)
        keep = iou > settings.pred_iou_thresh
        if settings.pred_iou_thresh <= 0.0:
            keep[:] = True
        prompts = keep.any(dim=1).nonzero()[:, 0]
        rows, cols = self.upsampler.low_res_shape
        for start in range(0, prompts.shape[0], self.upscale_per_pass):
            chosen = prompts[start : start + self.upscale_per_pass]
            chosen_keep = keep[chosen]  # (P, M)
            # Prompt-major, then output: the reference's candidate order.
            logits = self.decoder.upscale(batch, chosen)[chosen_keep][:, :rows, :cols]
            stats = mask_stats(
                logits,
                self.upsampler,
                self.model.mask_threshold,
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

        from .automatic_filters import box_nms

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

    from .automatic_filters import box_nms, boxes_of_masks, remove_small_regions, upsampled_masks

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
