"""The whole image as SAM sees it, read one block at a time with the whole image's mapping."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..imaging import to_uint8_rgb
from .grid import Box
from .intensity import whole_image_range


class SourceImage:
    """An image of any size and dtype, and the one intensity mapping all its tiles share.

    image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), any real dtype, anything that slices into
    numpy arrays (numpy, memory-mapped, zarr, dask); it is kept, not copied, and read a block at
    a time. contrast_limits: napari's, so SAM sees what the user sees; without them, the whole
    image's 1st and 99th percentiles (uint8 and bool pass through), as
    :func:`~napari_segany.imaging.to_uint8_rgb` maps an untiled image.
    """

    def __init__(self, image: Any, contrast_limits: tuple[float, float] | None = None) -> None:
        if not hasattr(image, "shape") or not hasattr(image, "dtype"):
            image = np.asarray(image)
        if image.ndim >= 2 and min(image.shape[:2]) < 1:
            raise ValueError(f"The image is empty (shape {tuple(image.shape)}).")
        # The rule's checks of layout and dtype, on one pixel instead of a converted copy.
        to_uint8_rgb(np.asarray(image[:1, :1]))
        self.image = image
        self.shape = (int(image.shape[0]), int(image.shape[1]))
        self.limits = whole_image_range(image, contrast_limits)
        self._last: tuple[Box, np.ndarray] | None = None

    def rgb(self, box: Box) -> np.ndarray:
        """(r1 - r0, c1 - c0, 3) uint8: the block ``box`` of the image, mapped as the whole.

        The last block is kept: a tile is read once to find its key in the embedding store
        and again to encode it, and on a lazy image (zarr, dask) each read is a fetch.
        The result is read-only.
        """
        box = tuple(int(v) for v in box)
        if self._last is not None and self._last[0] == box:
            return self._last[1]
        r0, c0, r1, c1 = box
        rgb = to_uint8_rgb(np.asarray(self.image[r0:r1, c0:c1]), self.limits)
        rgb.flags.writeable = False  # shared by the next caller of the same block
        self._last = (box, rgb)
        return rgb
