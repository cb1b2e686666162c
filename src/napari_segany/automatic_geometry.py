"""Where segment-everything looks: crop boxes, point grids, and low-res logits -> image pixels.

Coordinates are (row, col); boxes are (min_row, min_col, max_row, max_col) with the max
*exclusive*, so ``image[r0:r1, c0:c1]`` is the crop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

Box = tuple[int, int, int, int]


def point_grid(n_per_side: int) -> np.ndarray:
    """(n², 2) evenly spaced (row, col) fractions in (0, 1), row-major, cell centres.

    The same points, in the same order, as the reference ``build_point_grid`` (which stores them
    as (x, y)).
    """
    offset = 1 / (2 * n_per_side)
    side = np.linspace(offset, 1 - offset, n_per_side)
    rows = np.repeat(side, n_per_side)
    cols = np.tile(side, n_per_side)
    return np.stack([rows, cols], axis=1)


def layer_point_grids(n_per_side: int, n_layers: int, downscale: int) -> list[np.ndarray]:
    """One grid per crop layer; layer i has ``int(n_per_side / downscale**i)`` points a side."""
    grids = []
    for i in range(n_layers + 1):
        n = int(n_per_side / downscale**i)
        if n < 1:
            raise ValueError(
                f"Crop layer {i} would get no points: points_per_side={n_per_side} divided by "
                f"crop_n_points_downscale_factor**{i}={downscale**i} is below 1. Use more points, "
                "fewer crop layers or a smaller downscale factor."
            )
        grids.append(point_grid(n))
    return grids


def crop_boxes(
    height: int, width: int, n_layers: int, overlap_ratio: float
) -> list[tuple[Box, int]]:
    """(crop box, layer) pairs: the whole image, then (2^i)² overlapping crops in layer i.

    Geometry and order as the reference ``generate_crop_boxes`` (columns outer, rows inner),
    which matters for ties in the cross-crop de-duplication; empty crops are left out.
    """
    boxes: list[tuple[Box, int]] = [((0, 0, height, width), 0)]
    short_side = min(height, width)
    for layer in range(1, n_layers + 1):
        n_side = 2**layer
        overlap = int(overlap_ratio * short_side * (2 / n_side))
        crop_h = int(math.ceil((overlap * (n_side - 1) + height) / n_side))
        crop_w = int(math.ceil((overlap * (n_side - 1) + width) / n_side))
        col0s = [int((crop_w - overlap) * i) for i in range(n_side)]
        row0s = [int((crop_h - overlap) * i) for i in range(n_side)]
        for c0, r0 in product(col0s, row0s):
            r1, c1 = min(r0 + crop_h, height), min(c0 + crop_w, width)
            if r1 > r0 and c1 > c0:  # images a few pixels thin leave some crops empty
                boxes.append(((r0, c0, r1, c1), layer))
    return boxes


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
    """SAM's post-processing of low-res logits, folded into one resize per axis.

    The reference resizes (256, 256) logits to the square model input, crops the padding and
    resizes to the image. Both steps are linear and separable, so each output pixel is a fixed
    combination of at most 3 x 3 low-res logits: computing it directly skips the (1024, 1024)
    intermediate, and only the low-res rows and columns that reach the image (``low_res_shape``)
    are ever read. Equal to the reference up to float rounding.
    """

    # Columns: a banded (w, W) matrix, applied as a few dense blocks along its band, each
    # (input_start, input_stop, block) with block (inputs, outputs) float32.
    col_blocks: tuple[tuple[int, int, torch.Tensor], ...]
    row_index: torch.Tensor  # (H, K) int64: rows are K gathers (K <= 3), cheaper when H is big
    row_weight: torch.Tensor  # (H, K) float32
    low_res_shape: tuple[int, int]
    out_shape: tuple[int, int]

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
        import torch

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

        return cls(
            col_blocks=tuple(blocks),
            row_index=tensor(r_idx, torch.int64),
            row_weight=tensor(r_w, torch.float32),
            low_res_shape=(int(r_idx.max()) + 1, cols),
            out_shape=(int(out_shape[0]), int(out_shape[1])),
        )

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """(M, h, w) low-res logits (at least ``low_res_shape``) -> (M, H, W) float32 logits."""
        import torch

        logits = logits[:, : self.low_res_shape[0]].float()
        parts = [logits[:, :, first:last] @ block for first, last, block in self.col_blocks]
        cols = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)  # (M, h, W)
        out = cols.index_select(1, self.row_index[:, 0])
        out *= self.row_weight[:, 0, None]
        for k in range(1, self.row_index.shape[1]):
            out.addcmul_(cols.index_select(1, self.row_index[:, k]), self.row_weight[:, k, None])
        return out
