"""The whole image's intensity mapping, so that every tile is mapped to uint8 alike.

:func:`~napari_segany.imaging.to_uint8_rgb` maps an image with its contrast limits or, without
them, with the 1st and 99th percentiles of its pixels. Computed per tile, that makes one cell
look different in two tiles (micro-sam normalises every tile on its own by its min and max).
:func:`whole_image_range` finds the (lo, hi) that the untiled rule takes for the *whole* image,
so a tile mapped with it equals that block of the whole image mapped at once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import imaging
from ..imaging import intensity_range

# Arrays that are not numpy (zarr, dask) are read as a regular subsample of about this many
# values, the sample the rule itself takes of large images, never whole.
_SAMPLE_VALUES = getattr(imaging, "_PERCENTILE_SAMPLE", 1 << 24)


def whole_image_range(
    image: Any, contrast_limits: tuple[float, float] | None = None
) -> tuple[float, float] | None:
    """The (lo, hi) the whole ``image`` is mapped with, or None where the rule passes pixels
    through (uint8 and bool without contrast_limits).

    image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), numpy or any array that slices into
    numpy arrays (memory-mapped, zarr, dask). Memory stays bounded whatever its size.
    """
    dtype = np.dtype(image.dtype)
    if contrast_limits is not None:
        return intensity_range(np.zeros((1, 1), dtype), contrast_limits)  # checks them
    if dtype == np.bool_ or dtype == np.uint8:
        return None
    if not isinstance(image, np.ndarray):
        channels = 1 if image.ndim == 2 or image.shape[2] == 1 else 3
        values = int(image.shape[0]) * int(image.shape[1]) * channels
        step = max(1, math.ceil(math.sqrt(values / _SAMPLE_VALUES)))
        image = np.asarray(image[::step, ::step])
    return intensity_range(_plane(image))


def _plane(image: Any) -> Any:
    """The channels the rule reads: (H, W) for grayscale, (H, W, 3) for colour (a view)."""
    shape = tuple(image.shape)
    if len(shape) == 2:
        return image
    if len(shape) == 3 and shape[2] == 1:
        return image[:, :, 0]
    if len(shape) == 3 and shape[2] in (3, 4):
        return image[:, :, :3]
    raise ValueError(
        f"Cannot segment an image of shape {shape}: SAM takes one 2-D plane, either grayscale "
        "(H, W) or colour (H, W, 3) / (H, W, 4). Pick a single slice or channel of a stack first."
    )
