"""The model's literal mask decoder behind the :class:`~.base.Decoder` interface.

This is Meta's computation step by step: every prompt redoes the image side, and the whole
(B, M, 256, 256) logits are made at once. It is the yardstick for the fast decoder and the
path to read when in doubt; ``NAPARI_SEGANY_DECODER=reference`` runs everything through it.
"""

from __future__ import annotations

import torch

from ..modeling import Sam
from .base import Decoded

# Prompts decoded at once: the literal upscaling holds (B, 32, 256, 256) floats, 8 MB each.
_PROMPTS_PER_PASS = 16


class ReferenceDecoder:
    """Decoding of prompts on one image embedding with ``model.mask_decoder`` as it is."""

    def __init__(self, model: Sam, features: torch.Tensor) -> None:
        self.decoder = model.mask_decoder
        dtype = self.decoder.iou_token.weight.dtype
        self.features = features.to(dtype)  # (1, C, h, w)
        self.image_pe = model.prompt_encoder.get_dense_pe().to(dtype)
        self.no_mask = model.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        self.embedding_hw = (int(features.shape[-2]), int(features.shape[-1]))

    def decode(self, sparse: torch.Tensor, dense: torch.Tensor | None, multimask: bool) -> Decoded:
        b = sparse.shape[0]
        if dense is None:
            dense = self.no_mask.expand(b, -1, *self.embedding_hw)
        logits, ious = [], []
        for start in range(0, b, _PROMPTS_PER_PASS):
            part = slice(start, start + _PROMPTS_PER_PASS)
            masks, iou = self.decoder(
                image_embeddings=self.features,
                image_pe=self.image_pe,
                sparse_prompt_embeddings=sparse[part],
                dense_prompt_embeddings=dense[part],
                multimask_output=multimask,
            )
            logits.append(masks)
            ious.append(iou)
        return Decoded(iou=torch.cat(ious), state=torch.cat(logits))

    def upscale(
        self,
        decoded: Decoded,
        prompts: torch.Tensor | None = None,
        grid: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        logits = decoded.state if prompts is None else decoded.state[prompts]
        if grid is None:
            return logits
        rows, cols = grid
        return logits[..., : 4 * rows, : 4 * cols]
