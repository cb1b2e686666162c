"""bioimage-cpp's Gaussian smoothing, step for step, which micro-sam smooths with.

micro-sam smooths the distance transform of a mask before putting its point prompts on the
maxima (propagation), and the instance decoder's maps before their watershed (AIS), both with
bioimage-cpp's ``gaussian_smoothing``: a point or a watershed seed moves when a value changes
in its last bit. This is that library's portable kernel step for step (float32, radius
ceil(3 sigma), mirror border, rows then columns): it equals the library bit for bit when the
library runs its portable code (``BIOIMAGE_CPP_FILTERS_FORCE_SCALAR=1``, or a CPU without
AVX2/FMA). Its AVX2 code fuses multiply-adds, which moves some values by one unit in the last
place.
"""

from __future__ import annotations

import numpy as np


def gaussian_kernel_half(sigma: float) -> np.ndarray:
    """The centre tap and one side of a normalised Gaussian: (radius + 1,) float32."""
    radius = max(1, int(np.ceil(3.0 * sigma)))
    x = np.arange(radius + 1, dtype=np.float64)
    raw = np.exp(-x * x * (0.5 / (sigma * sigma)))
    total = raw[0]
    for value in raw[1:]:  # summed in this order, as the library does
        total += 2.0 * value
    return (raw * (1.0 / total)).astype(np.float32)


def _mirror(index: np.ndarray, n: int) -> np.ndarray:
    """Reflect indices about the edge pixels without repeating them (scipy's ``mirror``)."""
    if n <= 1:
        return np.zeros_like(index)
    period = 2 * (n - 1)
    r = np.mod(index, period)
    return np.where(r >= n, period - r, r)


def _smooth_axis(image: np.ndarray, half: np.ndarray, axis: int) -> np.ndarray:
    n = image.shape[axis]
    radius = len(half) - 1
    # The image with ``radius`` mirrored pixels each side; its shifted slices are views, taken
    # along the axis in place (no transposed copies), and the sums are made in two buffers.
    padded = np.take(image, _mirror(np.arange(-radius, n + radius), n), axis=axis)

    def shifted(start: int) -> np.ndarray:
        index = [slice(None)] * image.ndim
        index[axis] = slice(start, start + n)
        return padded[tuple(index)]

    acc = np.multiply(image, half[0])
    pair = np.empty_like(acc)
    for k in range(1, radius + 1):
        # acc + half[k] * (left + right), the library's operations in its order.
        np.add(shifted(radius - k), shifted(radius + k), out=pair)
        np.multiply(pair, half[k], out=pair)
        np.add(acc, pair, out=acc)
    return acc


def gaussian_smooth(image: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """(H, W) -> (H, W) float32 Gaussian smoothing with bioimage-cpp's kernel and arithmetic."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    half = gaussian_kernel_half(sigma)
    return _smooth_axis(_smooth_axis(image, half, 0), half, 1)
