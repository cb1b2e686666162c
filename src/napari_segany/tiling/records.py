"""What segment-everything on tiles returns: one record per object, its mask over its own box.

A record's mask covers its bounding box only, so the records of a 20000 x 20000 image cost what
their objects cover, not M copies of the image. :meth:`TiledMaskRecord.to_mask_record` gives
the untiled form (:class:`~napari_segany.automatic.MaskRecord`, a full-size mask) where the
image is small enough; :func:`~napari_segany.automatic.masks_to_labels` paints either form
into a label image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..automatic import MaskRecord
from .grid import Box


@dataclass(frozen=True, eq=False)
class TiledMaskRecord:
    """One object found by segment-everything on a tiled image.

    mask: (r1 - r0, c1 - c0) bool over ``bbox``. bbox: (min_row, min_col, max_row, max_col)
    in image pixels, max exclusive, the object's bounding box. area: its pixels.
    predicted_iou, stability_score: as :class:`~napari_segany.automatic.MaskRecord`'s (for an
    object merged across tiles, the mean predicted IoU and the lowest stability of its parts).
    point: the (row, col) image pixel prompt that produced it (the best part's, when merged).
    tiles: the tiles it was found in, more than one when its parts were merged across tiles.
    crop_box: the outer block of the tile it was found in (the bbox when merged).
    """

    mask: np.ndarray
    bbox: Box
    area: int
    predicted_iou: float
    stability_score: float
    point: tuple[float, float]
    tiles: tuple[int, ...]
    crop_box: Box

    def full_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """(H, W) bool at the image's size."""
        full = np.zeros(tuple(shape), dtype=bool)
        r0, c0, r1, c1 = self.bbox
        full[r0:r1, c0:c1] = self.mask
        return full

    def to_mask_record(self, shape: tuple[int, int]) -> MaskRecord:
        """The untiled record, its mask at the image's size (H * W bytes each)."""
        return MaskRecord(
            mask=self.full_mask(shape),
            area=self.area,
            bbox=self.bbox,
            predicted_iou=self.predicted_iou,
            stability_score=self.stability_score,
            point=self.point,
            crop_box=self.crop_box,
        )
