"""Any image a scientist has -> the uint8 RGB image SAM was trained on.

The rule, applied by :func:`to_uint8_rgb`:

* Layout: ``(H, W)`` and ``(H, W, 1)`` are grayscale and are replicated to three channels;
  ``(H, W, 3)`` is RGB; ``(H, W, 4)`` is RGBA and the alpha channel is dropped. Anything else
  is refused with a message.
* Intensities: ``bool`` becomes 0/255. ``uint8`` is passed through unchanged (bit for bit what
  the reference SAM receives) unless ``contrast_limits`` are given. Every other dtype (and uint8
  with ``contrast_limits``) is mapped linearly so that ``lo`` -> 0 and ``hi`` -> 255, clipped,
  where ``(lo, hi)`` are the ``contrast_limits`` when given (napari's, so SAM sees what the user
  sees) and otherwise the 1st and 99th percentiles of the finite pixels, over all channels at
  once so colours keep their balance.
* Non-finite values: NaN becomes 0; +inf and -inf clip to 255 and 0.
* A constant image (``hi <= lo``) becomes all 0.
"""

from __future__ import annotations

import numpy as np

ROBUST_PERCENTILES = (1.0, 99.0)


def _as_channels_last_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> (H, W, 3) view or copy, same dtype."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[:, :, :3]
    raise ValueError(
        f"Cannot segment an image of shape {image.shape}: SAM takes one 2-D plane, either "
        "grayscale (H, W) or colour (H, W, 3) / (H, W, 4). Pick a single slice or channel "
        "of a stack first."
    )


def intensity_range(
    image: np.ndarray, contrast_limits: tuple[float, float] | None = None
) -> tuple[float, float]:
    """The (lo, hi) that map to 0 and 255: the contrast limits, else robust percentiles."""
    if contrast_limits is not None:
        lo, hi = (float(v) for v in contrast_limits)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"contrast_limits must be finite numbers, got {contrast_limits!r}.")
        return lo, hi
    finite = image[np.isfinite(image)] if image.dtype.kind == "f" else image
    if finite.size == 0:
        return 0.0, 0.0
    lo, hi = np.percentile(finite, ROBUST_PERCENTILES)
    return float(lo), float(hi)


def to_uint8_rgb(
    image: np.ndarray, contrast_limits: tuple[float, float] | None = None
) -> np.ndarray:
    """Convert ``image`` to SAM's input format following the module's rule.

    image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), any real dtype.
    Returns a C-contiguous (H, W, 3) uint8 array.
    """
    image = np.asarray(image)
    if image.dtype.kind not in "biuf":
        raise ValueError(
            f"Cannot segment an image of dtype {image.dtype}: use integer, float or bool pixels."
        )
    rgb = _as_channels_last_rgb(image)
    if min(rgb.shape[:2]) < 1:
        raise ValueError(f"The image is empty (shape {image.shape}).")
    if rgb.dtype == np.bool_:
        return np.ascontiguousarray(rgb.astype(np.uint8) * 255)
    if rgb.dtype == np.uint8 and contrast_limits is None:
        return np.ascontiguousarray(rgb)

    lo, hi = intensity_range(rgb, contrast_limits)
    if hi <= lo:
        return np.zeros(rgb.shape, dtype=np.uint8)
    scaled = (rgb.astype(np.float64) - lo) * (255.0 / (hi - lo))
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    return np.ascontiguousarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8))
