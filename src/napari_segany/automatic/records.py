"""What segment-everything returns: one record per object, and those records painted into one
label image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .geometry import Box


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


def masks_to_labels(records: Sequence[Any], shape: tuple[int, int]) -> np.ndarray:
    """Paint the records into one (H, W) int32 label image; 0 is background.

    records: :class:`MaskRecord` (masks at the image's size) or the tiled form (masks over
    their bbox only, :class:`~napari_segany.tiling.TiledMaskRecord`). Record ``i`` gets label
    ``i + 1``. Larger masks are painted first and smaller ones on top, so a small object
    inside a large one stays visible; a mask hidden entirely by smaller ones leaves no label.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2:
        raise ValueError(f"shape must be the image's (height, width), got {shape}.")
    if len(records) > np.iinfo(np.int32).max:  # ids never wrap
        raise ValueError(f"{len(records)} masks do not fit the ids of an int32 label image.")
    labels = np.zeros(shape, dtype=np.int32)
    for index in sorted(range(len(records)), key=lambda i: -records[i].area):
        record = records[index]
        r0, c0, r1, c1 = record.bbox
        if record.mask.shape == shape:
            window = record.mask[r0:r1, c0:c1]
        elif record.mask.shape == (r1 - r0, c1 - c0) and r1 <= shape[0] and c1 <= shape[1]:
            window = record.mask
        else:
            raise ValueError(
                f"Record {index} has a mask of shape {record.mask.shape}, neither the image's "
                f"{shape} nor its box {tuple(record.bbox)}'s."
            )
        labels[r0:r1, c0:c1][window] = index + 1
    return labels
