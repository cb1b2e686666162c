"""Full-size boolean masks straight from low-res logits, for images the model sees unresized.

A click returns its masks at the image's size: the (256, 256) logits are upsampled 4x
bilinearly (``align_corners=False``), cropped to the image and thresholded. Done literally, that
writes a float (H, W) per mask and reads it back to threshold it, and torch's generic bilinear
kernel computes every pixel's source rows, columns and weights again. With an integer factor f
the weights repeat with period f, so here

* columns are interpolated at low-res height, f fixed-weight phases at a time;
* rows are interpolated and thresholded in slabs that stay in the CPU's cache, so the
  full-size float logits never exist;
* the threshold runs in numpy on a CPU (see :func:`greater`).

The result equals ``postprocess_masks(...) > threshold`` up to float rounding (a pixel whose
interpolated logit is within rounding of the threshold may differ). Images whose long side is
not the model's input size also need a resize to the image; they take the literal path.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .modeling.sam import cells_reaching

# Float logits interpolated per slab before thresholding: ~4 MB stays in the CPU's last-level
# cache, where the slab is written and read back; slabs much smaller cost more in calls.
_SLAB_BYTES = 1 << 22


def greater(x: torch.Tensor, threshold: float, out: torch.Tensor | None = None) -> torch.Tensor:
    """``x > threshold`` as a bool tensor, into ``out`` (any strides) when given.

    On a CPU the comparison runs in numpy: torch's float -> bool comparison is not vectorised
    and takes 4-8x longer, which for a click's three 1024 x 1024 masks is milliseconds.
    """
    if out is None:
        out = torch.empty(x.shape, dtype=torch.bool, device=x.device)
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        np.greater(x.detach().numpy(), threshold, out=out.numpy())
    else:
        torch.gt(x, threshold, out=out)
    return out


@functools.cache
def phase_weights(factor: int) -> tuple[int, torch.Tensor]:
    """Where the interior starts and the f weights of bilinear upsampling by ``factor``.

    With ``align_corners=False``, output i reads input (i + 0.5) / f - 0.5. The first
    ``factor // 2`` outputs (and the last ``factor - factor // 2``) copy the edge input; then
    output ``start + f * k + q`` is ``lerp(x[k], x[k + 1], weights[q])``.
    """
    start = factor // 2
    weights = [(start + q + 0.5) / factor - 0.5 for q in range(factor)]
    return start, torch.tensor(weights, dtype=torch.float32)


def upsample_columns(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Bilinear upsampling of the last axis by an integer factor: (..., w) -> (..., w * f)."""
    w = x.shape[-1]
    start, weights = phase_weights(factor)
    out = x.new_empty(*x.shape[:-1], w * factor)
    out[..., :start] = x[..., :1]
    out[..., start + factor * (w - 1) :] = x[..., -1:]
    interior = out[..., start : start + factor * (w - 1)].unflatten(-1, (w - 1, factor))
    # Phase-major first, so each product runs along a long contiguous axis (with the f phases
    # innermost it runs ~7x slower), then one strided copy puts the phases in place.
    left = x[..., None, :-1]
    by_phase = torch.addcmul(left, x[..., None, 1:] - left, weights.to(x.device)[:, None])
    interior.copy_(by_phase.transpose(-1, -2))
    return out


def threshold_upsampled_rows(x: torch.Tensor, factor: int, threshold: float) -> torch.Tensor:
    """``upsample(x along rows) > threshold`` without the upsampled floats: (n, h, W) -> bool
    (n, h * f, W)."""
    n, h, w = x.shape
    start, weights = phase_weights(factor)
    weights = weights.to(x.device)[:, None]  # (f, 1): one weight per output row of a pair
    out = torch.empty((n, h * factor, w), dtype=torch.bool, device=x.device)
    greater(x[:, :1].expand(n, start, w), threshold, out=out[:, :start])
    tail = factor - start
    greater(x[:, -1:].expand(n, tail, w), threshold, out=out[:, h * factor - tail :])
    interior = out[:, start : start + factor * (h - 1)].unflatten(1, (h - 1, factor))
    step = max(1, _SLAB_BYTES // (n * factor * w * x.element_size()))
    for first in range(0, h - 1, step):
        pairs = x[:, first : first + step + 1]
        top = pairs[:, :-1, None]
        values = torch.addcmul(top, pairs[:, 1:, None] - top, weights)  # (n, rows, f, W)
        greater(values, threshold, out=interior[:, first : first + step])
    return out


def threshold_masks(
    low_res: torch.Tensor, factor: int, size: tuple[int, int], threshold: float
) -> torch.Tensor:
    """Masks of the image the model saw unresized: (B, M, h, w) low-res logits -> (B, M, H, W)
    bool, ``size`` = (H, W) <= (h * f, w * f), the image's part of the upsampled logits.
    """
    b, m, h, w = low_res.shape
    height, width = size
    rows, cols = cells_reaching(h, factor, height), cells_reaching(w, factor, width)
    x = low_res[..., :rows, :cols].reshape(b * m, rows, cols).float()
    wide = upsample_columns(x, factor)[..., :width]
    masks = threshold_upsampled_rows(wide, factor, threshold)[:, :height]
    return masks.reshape(b, m, height, width).contiguous()
