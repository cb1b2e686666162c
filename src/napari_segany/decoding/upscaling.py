"""The mask decoder's last step, fast: transformed image tokens and the hypernetworks' outputs
-> low-res mask logits.

The reference upsamples the (C, h, w) image tokens through two 2x2 stride-2 transposed
convolutions to (C/8, 4h, 4w) and takes each mask token's product with that. A 2x2 stride-2
transposed convolution is one matrix product per input pixel, so here each runs as a single
GEMM, several times faster on a CPU than the generic kernel, and pixels stay in "blocked"
order (each input pixel followed by its 2x2, then 4x4 children) until the final masks, three
values per pixel instead of 32 channels, are put in image order. Equal to the literal
``MaskDecoder.output_upscaling`` up to float rounding (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..modeling.common import MLP, activate
from ..modeling.mask_decoder import MaskDecoder


class StackedMLPs:
    """MLPs of one shape (the decoder's hypernetworks, one per mask output) as one batched
    product per layer: at a click's size each small product costs more to launch than to run.
    """

    def __init__(self, mlps: Sequence[MLP]) -> None:
        depth = len(mlps[0].layers)
        self.layers = [
            (
                torch.stack([mlp.layers[i].weight.t() for mlp in mlps]),  # (K, in, out)
                torch.stack([mlp.layers[i].bias for mlp in mlps])[:, None],  # (K, 1, out)
            )
            for i in range(depth)
        ]
        self.sigmoid_output = mlps[0].sigmoid_output

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(K, P, in): P inputs for each of the K MLPs -> (K, P, out)."""
        last = len(self.layers) - 1
        for i, (weight, bias) in enumerate(self.layers):
            x = torch.baddbmm(bias, x, weight)
            if i < last:
                x = torch.relu_(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


@dataclass(frozen=True)
class UpscalingMatrices:
    """The decoder's output upscaling with each 2x2 stride-2 transposed convolution as one
    (Cin, 4 * Cout) matrix and its bias repeated for the 4 children, made once per model."""

    first: torch.Tensor
    first_bias: torch.Tensor
    norm: nn.Module
    act1: nn.Module
    second: torch.Tensor
    second_bias: torch.Tensor
    act2: nn.Module

    @classmethod
    def of(cls, decoder: MaskDecoder) -> UpscalingMatrices:
        first_conv, norm, act1, second_conv, act2 = decoder.output_upscaling
        return cls(
            _as_matrix(first_conv), first_conv.bias.repeat(4), norm, act1,
            _as_matrix(second_conv), second_conv.bias.repeat(4), act2,
        )  # fmt: skip


def upscale_masks(
    upscaling: UpscalingMatrices | MaskDecoder, image_tokens: torch.Tensor, hyper_in: torch.Tensor
) -> torch.Tensor:
    """Mask logits from transformed image tokens and hypernetwork outputs.

    upscaling: the decoder's upscaling as matrices (or the decoder, to make them now);
    image_tokens: (B, h, w, C) (any h, w: a part of the grid gives that part's logits);
    hyper_in: (B, M, C/8). Returns (B, M, 4h, 4w).
    """
    if isinstance(upscaling, MaskDecoder):
        upscaling = UpscalingMatrices.of(upscaling)
    up = upscaling
    norm = up.norm
    b, h, w, c = image_tokens.shape
    # Biases added in place after each product: addmm would first copy the broadcast bias
    # into its (N, 4 * Cout) output, which costs more than the addition.
    x = torch.mm(image_tokens.reshape(b * h * w, c), up.first).add_(up.first_bias)
    x = x.view(b, h * w * 4, -1)  # (B, h*w*4, C/4), blocked order
    x = activate(up.act1, F.layer_norm(x, (x.shape[-1],), norm.weight, norm.bias, norm.eps))
    x = torch.mm(x.reshape(-1, x.shape[-1]), up.second).add_(up.second_bias)
    upscaled = activate(up.act2, x.view(b, h * w * 16, -1))  # (B, h*w*16, C/8)
    return _blocked_to_image(hyper_in @ upscaled.transpose(1, 2), h, w)


def _as_matrix(conv: nn.ConvTranspose2d) -> torch.Tensor:
    """A stride-2, 2x2 transposed convolution's weight as a (Cin, 4 * Cout) matrix with columns
    (a, b, Cout): row p of ``x @ matrix`` holds the (a, b) children of input pixel p."""
    c_in, c_out = conv.weight.shape[:2]
    return conv.weight.permute(0, 2, 3, 1).reshape(c_in, 4 * c_out)


# An integer as wide as two values: (c, d) pairs move as one word.
_PAIR_WORDS = {2: torch.int32, 4: torch.int64}


def _blocked_to_image(masks: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, M, h*w*16) masks in blocked pixel order -> (B, M, 4h, 4w) in image order.

    Blocked order (i, j, a, b, c, d) is row 4i + 2a + c, column 4j + 2b + d. The values move in
    runs that stay together: first (b, c, d), 8 values, then d, 2 values. Copying each run as
    wide integers rather than value by value makes the two copies ~4x faster on a CPU.
    """
    b, m = masks.shape[:2]
    word = _PAIR_WORDS.get(masks.element_size())
    if word is None:  # float64: no integer is wide enough, move the values themselves
        x = masks.reshape(b, m, h, w, 2, 2, 2, 2).permute(0, 1, 2, 4, 6, 3, 5, 7)
        return x.reshape(b, m, 4 * h, 4 * w)
    pairs = masks.contiguous().view(word)  # (B, M, h*w*8): one word per (c, d) pair
    x = pairs.reshape(b * m, h, w, 2, 4).permute(0, 1, 3, 2, 4)  # (i, a, j, [b c d])
    x = x.reshape(b * m, h, 2, w, 2, 2).permute(0, 1, 2, 5, 3, 4)  # (i, a, c, j, b, [d])
    return x.contiguous().view(masks.dtype).reshape(b, m, 4 * h, 4 * w)
