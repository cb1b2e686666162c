"""Any image a scientist has -> the uint8 RGB image SAM was trained on.

The rule, applied by :func:`to_uint8_rgb`:

* Layout: ``(H, W)`` and ``(H, W, 1)`` are grayscale and are replicated to three channels;
  ``(H, W, 3)`` is RGB; ``(H, W, 4)`` is RGBA and the alpha channel is dropped. Anything else
  is refused with a message.
* Intensities: ``bool`` becomes 0/255. ``uint8`` is passed through unchanged (bit for bit what
  the reference SAM receives) unless ``contrast_limits`` other than (0, 255) are given. Every
  other dtype (and uint8 with other limits) is mapped linearly so that ``lo`` -> 0 and
  ``hi`` -> 255, rounded half to even and clipped, where ``(lo, hi)`` are the
  ``contrast_limits`` when given (napari's, so SAM sees what the user sees) and otherwise the
  1st and 99th percentiles of the finite pixels, over all channels at once so colours keep
  their balance (for images over 16 million values, of a regular subsample of about that many).
* Non-finite values: NaN becomes 0; +inf and -inf clip to 255 and 0.
* A constant image (``hi <= lo``) becomes all 0.

Memory stays bounded whatever the image's size: 8- and 16-bit integers map through a lookup
table, other types a block of rows at a time, and :func:`to_uint8` leaves grayscale as one
channel, so a 20000 x 20000 image costs one uint8 plane, not several float64 copies of it.
"""

from __future__ import annotations

import numpy as np

ROBUST_PERCENTILES = (1.0, 99.0)
# Percentiles of larger images come from a regular subsample of about this many values.
PERCENTILE_SAMPLE = 1 << 24
# Values converted at once by the float path (4 M values: 32 MB of float64 temporaries).
_BLOCK_VALUES = 1 << 22


def rule_channels(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 1) -> (H, W) view; (H, W, 3) or (H, W, 4) -> (H, W, 3) view."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
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
    values = np.asarray(image)
    step = max(1, int(np.ceil(np.sqrt(values.size / PERCENTILE_SAMPLE))))
    sample = values[::step, ::step] if values.ndim >= 2 else values
    finite = sample[np.isfinite(sample)] if sample.dtype.kind == "f" else sample.ravel()
    if finite.size == 0:
        return 0.0, 0.0
    lo, hi = np.percentile(finite, ROBUST_PERCENTILES)
    return float(lo), float(hi)


def to_uint8(image: np.ndarray, contrast_limits: tuple[float, float] | None = None) -> np.ndarray:
    """The module's intensity rule without replicating grayscale: (H, W) or (H, W, 3) uint8.

    image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), any real dtype. A uint8 image with no
    limits (or limits (0, 255)) comes back as a view, without a copy.
    """
    image = np.asarray(image)
    if image.dtype.kind not in "biuf":
        raise ValueError(
            f"Cannot segment an image of dtype {image.dtype}: use integer, float or bool pixels."
        )
    plane = rule_channels(image)
    if min(plane.shape[:2]) < 1:
        raise ValueError(f"The image is empty (shape {image.shape}).")
    if plane.dtype == np.bool_:
        return plane.view(np.uint8) * np.uint8(255)
    if plane.dtype == np.uint8 and (
        contrast_limits is None or tuple(float(v) for v in contrast_limits) == (0.0, 255.0)
    ):
        return plane
    lo, hi = intensity_range(plane, contrast_limits)
    if hi <= lo:
        return np.zeros(plane.shape, dtype=np.uint8)
    if plane.dtype.kind in "iu" and plane.dtype.itemsize <= 2:
        # Every value a 8- or 16-bit image can hold, mapped once.
        info = np.iinfo(plane.dtype)
        lut = _scaled(np.arange(info.min, info.max + 1, dtype=np.float64), lo, hi)
        index = plane.astype(np.int64) - info.min if info.min else plane
        return lut[index]
    out = np.empty(plane.shape, dtype=np.uint8)
    rows = max(1, _BLOCK_VALUES // max(1, plane[0].size))
    for start in range(0, plane.shape[0], rows):
        out[start : start + rows] = _scaled(plane[start : start + rows], lo, hi)
    return out


def _scaled(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    scaled = (values.astype(np.float64) - lo) * (255.0 / (hi - lo))
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def to_uint8_rgb(
    image: np.ndarray, contrast_limits: tuple[float, float] | None = None
) -> np.ndarray:
    """Convert ``image`` to SAM's input format following the module's rule.

    image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), any real dtype.
    Returns a C-contiguous (H, W, 3) uint8 array.
    """
    return as_rgb(to_uint8(image, contrast_limits))


def as_rgb(plane: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 -> C-contiguous (H, W, 3) uint8."""
    if plane.ndim == 2:
        return np.repeat(plane[:, :, None], 3, axis=2)
    return np.ascontiguousarray(plane)
