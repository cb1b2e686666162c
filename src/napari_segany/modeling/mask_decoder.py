"""SAM's mask decoder: image embedding + prompt tokens -> mask logits and predicted IoU."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP, LayerNorm2d, activate
from .transformer import TwoWayTransformer


class MaskDecoder(nn.Module):
    """Predicts one single-object mask and ``num_multimask_outputs`` ambiguity-resolving masks."""

    def __init__(
        self,
        *,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3,
        activation: type[nn.Module] = nn.GELU,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            activation(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            activation(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth
        )

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns mask logits (B, M, 4h, 4w) and predicted IoU (B, M).

        image_embeddings: (1 or B, C, h, w); image_pe: (1, C, h, w); sparse: (B, N, C);
        dense: (B, C, h, w). M is 3 with ``multimask_output``, else 1.
        """
        chosen = slice(1, None) if multimask_output else slice(0, 1)
        return self.predict_masks(
            image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings, chosen
        )

    def predict_masks(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        mask_tokens: slice = slice(None),
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, M, 4h, 4w) and IoU (B, M) of the chosen mask tokens (default: all)."""
        batch = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        output_tokens = output_tokens.unsqueeze(0).expand(batch, -1, -1)
        tokens = torch.cat(
            [output_tokens.to(sparse_prompt_embeddings.dtype), sparse_prompt_embeddings], dim=1
        )  # (B, 1 + num_mask_tokens + N, C)

        if image_embeddings.shape[0] != batch:
            image_embeddings = image_embeddings.expand(batch, -1, -1, -1)
        src = image_embeddings + dense_prompt_embeddings  # (B, C, h, w)
        pos_src = image_pe.expand(batch, -1, -1, -1)
        _, _, h, w = src.shape

        hs, keys = self.transformer(src, pos_src, tokens)  # (B, h*w, C)
        iou = self.iou_prediction_head(hs[:, 0, :])[:, mask_tokens]
        chosen = list(range(self.num_mask_tokens))[mask_tokens]
        hyper_in = torch.stack(
            [self.output_hypernetworks_mlps[i](hs[:, 1 + i, :]) for i in chosen], dim=1
        )  # (B, M, C/8)
        return self.upscale_masks(keys.view(batch, h, w, -1), hyper_in), iou

    def upscale_masks(self, image_tokens: torch.Tensor, hyper_in: torch.Tensor) -> torch.Tensor:
        """Mask logits from transformed image tokens and hypernetwork outputs.

        image_tokens: (B, h, w, C) (any h, w: a part of the grid gives that part's logits);
        hyper_in: (B, M, C/8). Returns (B, M, 4h, 4w).
        """
        b, h, w, c = image_tokens.shape
        weight, bias = self.first_upscaling()
        first = torch.addmm(bias, image_tokens.reshape(b * h * w, c), weight)  # bias in the GEMM
        return self.masks_from_first_upscaling(first.view(b, h * w, -1), hyper_in, h, w)

    def first_upscaling(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first transposed convolution as one matrix product per image token: weight
        (C, 4 * C/4) and bias (4 * C/4,), output columns ordered (a, b, channel) for the 2 x 2
        children (a, b) of the token.

        A 2x2 stride-2 transposed convolution is one matrix product per pixel, so each runs
        as a single GEMM, several times faster on CPUs than the generic transposed convolution.
        """
        conv = self.output_upscaling[0]
        return _transposed_conv_matrix(conv), conv.bias.repeat(4)

    def masks_from_first_upscaling(
        self, first: torch.Tensor, hyper_in: torch.Tensor, h: int, w: int
    ) -> torch.Tensor:
        """Mask logits from the first transposed convolution's output (B, h*w, 4 * C/4) (see
        :meth:`first_upscaling`) and hypernetwork outputs (B, M, C/8): (B, M, 4h, 4w).

        Pixels stay in "blocked" order (each input pixel followed by its 2x2, then 4x4
        children) because nothing here depends on where a pixel is; only the final masks, 3
        values per pixel instead of 32 channels, are put in image order.
        """
        _, norm, act1, up2, act2 = self.output_upscaling
        b = first.shape[0]
        x = first.reshape(b, h * w * 4, -1)  # (B, h*w*4, C/4)
        x = activate(act1, F.layer_norm(x, (x.shape[-1],), norm.weight, norm.bias, norm.eps))
        c_in = x.shape[-1]
        x = torch.addmm(up2.bias.repeat(4), x.reshape(-1, c_in), _transposed_conv_matrix(up2))
        upscaled = activate(act2, x.view(b, h * w * 16, -1))  # (B, h*w*16, C/8)
        return _blocked_to_image(hyper_in @ upscaled.transpose(1, 2), h, w)


def _transposed_conv_matrix(conv: nn.ConvTranspose2d) -> torch.Tensor:
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
