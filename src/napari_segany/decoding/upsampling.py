"""Low-res mask logits -> logits and masks at the image's pixels: SAM's post-processing, fast.

The reference resizes the decoder's (256, 256) logits to the square model input, crops the
padding and resizes to the image, then thresholds. Both resizes are linear and separable, so
:class:`LogitUpsampler` folds them into one resize per axis: each output pixel is a fixed
combination of at most 3 x 3 low-res logits, the (1024, 1024) intermediate never exists, and
only the low-res rows and columns that reach the image (``low_res_shape``) are read.

For an image the model saw unresized (its long side is the model's input size) the resize is an
integer upsampling, and :meth:`LogitUpsampler.masks` fuses it with the threshold:

* columns are interpolated at low-res height, f fixed-weight phases at a time;
* rows are interpolated and thresholded in slabs that stay in the CPU's cache, so the
  full-size float logits never exist;
* the threshold runs in numpy on a CPU (see :func:`greater`).

Everything equals the reference's ``postprocess_masks(...) > threshold`` up to float rounding (a
pixel whose logit is within rounding of the threshold may differ).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

# Float logits interpolated per slab before thresholding: ~4 MB stays in the CPU's last-level
# cache, where the slab is written and read back; slabs much smaller cost more in calls.
_SLAB_BYTES = 1 << 22
# Float32 elements of upsampled logits held at once by the unfused path (16 MB).
_UPSAMPLED_ELEMENTS = 4 * 1024 * 1024


def cells_reaching(low: int, factor: float, size: int) -> int:
    """How many of ``low`` low-res rows (or columns) reach the first ``size`` pixels of their
    bilinear upsampling by ``factor``: upsampling only those gives these pixels exactly as
    upsampling all of them would."""
    return min(low, math.ceil(size / factor) + 1)


def _bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) weights of torch's 1-D bilinear resize with ``align_corners=False``."""
    # torch computes source positions in float32 (one fused multiply-add); at ~1000 pixels its
    # rounding moves the weights by ~1e-5, so follow it to stay close to the reference.
    f32 = np.float32
    scale = np.float64(f32(in_size) / f32(out_size))
    src = ((np.arange(out_size) + 0.5) * scale - 0.5).astype(f32)
    src = np.maximum(src, f32(0.0))
    i0 = np.minimum(src.astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    frac = np.clip(src - i0.astype(f32), 0.0, 1.0).astype(np.float64)
    weights = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    np.add.at(weights, (rows, i0), 1.0 - frac)
    np.add.at(weights, (rows, i1), frac)
    return weights


def _composite_taps(
    low_res: int, model_size: int, valid: int, out_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Taps of SAM's two resizes along one axis: low_res -> model_size, keep ``valid``, -> out.

    Returns indices and weights, both (out_size, K) with K <= 3: output i is
    ``sum_k weights[i, k] * low[indices[i, k]]``.
    """
    first = _bilinear_matrix(low_res, model_size)[:valid]
    composite = _bilinear_matrix(valid, out_size) @ first  # (out, low_res), banded
    nonzero = composite != 0
    start = np.argmax(nonzero, axis=1)
    stop = low_res - np.argmax(nonzero[:, ::-1], axis=1)
    width = int((stop - start).max())
    offsets = start[:, None] + np.arange(width)[None, :]
    inside = offsets < low_res
    indices = np.where(inside, offsets, start[:, None])
    rows = np.arange(out_size)[:, None]
    weights = np.where(inside, composite[rows, np.minimum(offsets, low_res - 1)], 0.0)
    return indices, weights


@dataclass(frozen=True)
class LogitUpsampler:
    """SAM's post-processing of one image's low-res logits, folded into one resize per axis."""

    # Columns: a banded (w, W) matrix, applied as a few dense blocks along its band, each
    # (input_start, input_stop, block) with block (inputs, outputs) float32.
    col_blocks: tuple[tuple[int, int, torch.Tensor], ...]
    row_index: torch.Tensor  # (H, K) int64: rows are K gathers (K <= 3), cheaper when H is big
    row_weight: torch.Tensor  # (H, K) float32
    low_res_shape: tuple[int, int]
    out_shape: tuple[int, int]
    # The integer factor of an unresized image's upsampling (masks() fuses it), else 0.
    fused_factor: int = 0

    @classmethod
    def build(
        cls,
        low_res: int,
        model_size: int,
        input_size: tuple[int, int],
        out_shape: tuple[int, int],
        device: torch.device,
    ) -> LogitUpsampler:
        """low_res: side of the decoder's logits (256); model_size: the model input side (1024);
        input_size: the resized image inside the padded input; out_shape: the image's (H, W)."""
        r_idx, r_w = _composite_taps(low_res, model_size, input_size[0], out_shape[0])
        c_idx, c_w = _composite_taps(low_res, model_size, input_size[1], out_shape[1])
        cols = int(c_idx.max()) + 1
        col_matrix = np.zeros((cols, out_shape[1]))
        np.add.at(col_matrix, (c_idx, np.arange(out_shape[1])[:, None]), c_w)

        def tensor(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

        # Output blocks that each read about 64 input columns: dense enough for a fast matmul,
        # narrow enough to skip most of the band's zeros.
        per_block = max(128, 64 * out_shape[1] // cols)
        blocks = []
        for start in range(0, out_shape[1], per_block):
            stop = min(start + per_block, out_shape[1])
            first, last = int(c_idx[start:stop].min()), int(c_idx[start:stop].max()) + 1
            blocks.append((first, last, tensor(col_matrix[first:last, start:stop], torch.float32)))

        factor, remainder = divmod(model_size, low_res)
        unresized = tuple(input_size) == tuple(out_shape) and remainder == 0
        return cls(
            col_blocks=tuple(blocks),
            row_index=tensor(r_idx, torch.int64),
            row_weight=tensor(r_w, torch.float32),
            low_res_shape=(int(r_idx.max()) + 1, cols),
            out_shape=(int(out_shape[0]), int(out_shape[1])),
            fused_factor=factor if unresized else 0,
        )

    def logits(self, logits: torch.Tensor) -> torch.Tensor:
        """(M, h, w) low-res logits (at least ``low_res_shape``) -> (M, H, W) float32 logits."""
        logits = logits[:, : self.low_res_shape[0]].float()
        parts = [logits[:, :, first:last] @ block for first, last, block in self.col_blocks]
        cols = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)  # (M, h, W)
        out = cols.index_select(1, self.row_index[:, 0])
        out *= self.row_weight[:, 0, None]
        for k in range(1, self.row_index.shape[1]):
            out.addcmul_(cols.index_select(1, self.row_index[:, k]), self.row_weight[:, k, None])
        return out

    def masks(self, logits: torch.Tensor, threshold: float) -> torch.Tensor:
        """(..., h, w) low-res logits -> (..., H, W) bool masks ``logits > threshold``."""
        lead = logits.shape[:-2]
        flat = logits.reshape(-1, *logits.shape[-2:])
        h, w = self.out_shape
        if self.fused_factor:
            masks = _threshold_upsampled(flat, self.fused_factor, self.out_shape, threshold)
        else:
            masks = torch.empty((flat.shape[0], h, w), dtype=torch.bool, device=flat.device)
            step = max(1, _UPSAMPLED_ELEMENTS // (h * w))
            for start in range(0, flat.shape[0], step):
                part = slice(start, start + step)
                greater(self.logits(flat[part]), threshold, out=masks[part])
        return masks.reshape(*lead, h, w)


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


def _threshold_upsampled(
    low_res: torch.Tensor, factor: int, size: tuple[int, int], threshold: float
) -> torch.Tensor:
    """Masks of an image the model saw unresized: (M, h, w) low-res logits -> (M, H, W) bool,
    ``size`` = (H, W) <= (h * f, w * f), the image's part of the upsampled logits.
    """
    _, h, w = low_res.shape
    height, width = size
    rows, cols = cells_reaching(h, factor, height), cells_reaching(w, factor, width)
    x = low_res[..., :rows, :cols].float()
    wide = upsample_columns(x, factor)[..., :width]
    masks = threshold_upsampled_rows(wide, factor, threshold)[:, :height]
    return masks.contiguous()
