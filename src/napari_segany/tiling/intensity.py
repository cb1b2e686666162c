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

from ..imaging import PERCENTILE_SAMPLE, intensity_range, rule_channels


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
    if not isinstance(image, np.ndarray):  # zarr, dask: read only the rule's subsample
        channels = 1 if image.ndim == 2 or image.shape[2] == 1 else 3
        values = int(image.shape[0]) * int(image.shape[1]) * channels
        step = max(1, math.ceil(math.sqrt(values / PERCENTILE_SAMPLE)))
        image = np.asarray(image[::step, ::step])
    return intensity_range(rule_channels(image))
