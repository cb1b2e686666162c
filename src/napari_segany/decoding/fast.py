"""SAM's mask decoder rearranged for many prompts on one image embedding: clicks and grids.

The reference decoder redoes the image-side work for every prompt: its first block projects the
same (4096, 256) image tokens again, and its attentions project every prompt's image tokens to
(4096, 128) queries, keys and values. :class:`FastDecoder` computes the same function (equal up
to float rounding; the oracle tests run both decoders against Meta's SAM) but

* projects the image tokens of the first block once per image, since before any image token
  has attended to a prompt they are the same for every prompt without a mask prompt (or,
  for one or two prompts on a fresh image, folds that block too, which costs less);
* folds each attention's projection of the image tokens into the much smaller prompt side
  (``q . (W_k x) = (W_k^T q) . x``, and the value and output projections likewise), so no
  per-prompt (4096, 128) projections are formed (:mod:`.folded_attention`);
* returns the predicted IoU first and upscales only the prompts the caller keeps, and only the
  part of the embedding grid the caller asks for (segment-everything skips the padding), with
  the transposed convolutions as GEMMs (:mod:`.upscaling`).

A single click is this with one prompt; segment-everything is this with hundreds. What depends
on the weights alone is made once per model (:mod:`.prepared`), so a stack's planes pay only
for their own image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..modeling import Sam
from .base import Decoded
from .prepared import prepared_decoder
from .upscaling import upscale_masks


@dataclass
class _Outputs:
    """What :meth:`FastDecoder.upscale` needs of a decoded batch: image_tokens (B, N, C) after
    the transformer, mask_tokens (B, M, C) of the chosen outputs, and which of the decoder's
    mask tokens they are (1..3 for multimask, 0 for a single mask)."""

    image_tokens: torch.Tensor
    mask_tokens: torch.Tensor
    outputs: slice


class FastDecoder:
    """Decoding of prompts on one image embedding, the image side shared and folded.

    features: (1, C, h, w) image embedding.
    """

    def __init__(self, model: Sam, features: torch.Tensor) -> None:
        decoder = model.mask_decoder
        self.decoder = decoder
        self.transformer = decoder.transformer
        self.prepared = prepared = prepared_decoder(model)
        dtype = decoder.iou_token.weight.dtype
        features = features.to(dtype)
        _, c, h, w = features.shape
        self.embedding_hw = (h, w)
        self._features = features
        # Token-major, made once: every prompt reads them, and a transposed view turns each of
        # those reads into a strided gather. Prompts without a mask prompt all add the same
        # "no mask" embedding.
        self.image_tokens = _tokens(features).add_(prepared.no_mask.view(1, 1, c))  # (1, N, C)
        self.image_pe = prepared.image_pe
        self._to_image, self._to_tokens = prepared.to_image, prepared.to_tokens
        self._final = prepared.final
        self._keys_pe: torch.Tensor | None = None  # see _with_positions
        self._shared: tuple[torch.Tensor, ...] | None = None  # see _first_block
        self._shared_pe: torch.Tensor | None = None  # see _shared_with_positions

    def _first_block(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The first block's image-side projections, shared by all prompts without a mask
        prompt: keys, values (heads, N, d) and pre-scaled transposed queries (heads, d, N)."""
        if self._shared is None:
            t2i = self.transformer.layers[0].cross_attn_token_to_image
            i2t = self.transformer.layers[0].cross_attn_image_to_token
            tokens_pe = self._shared_with_positions()
            k0 = _heads_first(t2i.k_proj(tokens_pe), t2i.num_heads)
            v0 = _heads_first(t2i.v_proj(self.image_tokens), t2i.num_heads)
            q0 = _heads_first(i2t.q_proj(tokens_pe), i2t.num_heads)
            # Pre-scaled and transposed for (heads, B*T, d) @ (heads, d, N).
            q0t = (q0 / math.sqrt(q0.shape[-1])).transpose(1, 2).contiguous()
            self._shared = (k0, v0, q0t)
        return self._shared

    def _shared_with_positions(self) -> torch.Tensor:
        """(1, N, C) the shared image tokens plus their positions, made once."""
        if self._shared_pe is None:
            self._shared_pe = self.image_tokens + self.image_pe
        return self._shared_pe

    def _folds_first_block(self, batch: int) -> bool:
        """Whether a batch's first block folds its image side rather than projecting it.

        Projecting the shared image tokens costs three (N, C) x (C, C/2) products once per
        image; folding costs about one such product per prompt. A few prompts on a fresh
        image (a click, a plane of a propagation) fold; many, or any once the projections
        exist, share them.
        """
        return self._shared is None and batch <= _FOLD_FIRST_BLOCK

    def _with_positions(self, keys: torch.Tensor) -> torch.Tensor:
        """``keys + image_pe``: (B, N, C); for one prompt, in a buffer this decoder keeps.

        Each call's sum is dead before the next one, and for a click a fresh buffer costs more
        in page faults than the addition. Batches of prompts get a new one: kept, it would
        hold hundreds of MB through the upscaling that follows.
        """
        if keys.shape[0] != 1:
            return keys + self.image_pe
        buffer = self._keys_pe
        if buffer is None or buffer.shape != keys.shape or buffer.dtype != keys.dtype:
            buffer = self._keys_pe = torch.empty_like(keys)
        return torch.add(keys, self.image_pe, out=buffer)

    # ---- the transformer ---------------------------------------------------------------------

    def decode(
        self, sparse: torch.Tensor, dense: torch.Tensor | None = None, multimask: bool = True
    ) -> Decoded:
        """sparse: (B, T, C) prompt-encoder embeddings of B prompts (points and/or boxes);
        dense: (B, C, h, w) mask-prompt embeddings, or None for prompts without a mask."""
        decoder = self.decoder
        b = sparse.shape[0]
        outputs = slice(1, decoder.num_mask_tokens) if multimask else slice(0, 1)
        output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
        tokens = torch.cat(
            [output_tokens[None].expand(b, -1, -1), sparse.to(output_tokens.dtype)], dim=1
        )  # (B, T, C)
        if dense is None:
            image = _ImageSide(self, b, None)
        else:  # a mask prompt changes the image tokens themselves: nothing is shared
            image = _ImageSide(self, b, _tokens(self._features + dense.to(self._features.dtype)))
        queries = tokens
        for i, layer in enumerate(self.transformer.layers):
            queries = layer.token_self_attention(queries, tokens)
            attn = image.tokens_to_image(i, queries + tokens)
            queries = layer.norm2(queries + attn)
            queries = layer.norm3(queries + layer.mlp(queries))
            image.image_to_tokens(i, queries + tokens, queries)

        # Only the IoU token and the chosen mask tokens are read after the last attention.
        wanted = torch.tensor(
            [0, *range(1 + outputs.start, 1 + outputs.stop)], device=tokens.device
        )
        q_sub, pe_sub = queries[:, wanted], tokens[:, wanted]
        final = image.final_tokens_to_image(q_sub + pe_sub)
        q_sub = self.transformer.norm_final_attn(q_sub + final)
        iou = decoder.iou_prediction_head(q_sub[:, 0])[:, outputs]  # (B, M)
        return Decoded(iou=iou, state=_Outputs(image.keys, q_sub[:, 1:], outputs))

    # ---- upscaling ---------------------------------------------------------------------------

    def upscale(
        self,
        decoded: Decoded,
        prompts: torch.Tensor | None = None,
        grid: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        state: _Outputs = decoded.state
        if prompts is None:
            prompts = torch.arange(decoded.iou.shape[0], device=decoded.iou.device)
        h, w = self.embedding_hw
        rows, cols = grid or (h, w)
        hyper = self.prepared.hypernetworks(state.outputs)(
            state.mask_tokens[prompts].transpose(0, 1)
        )
        hyper = hyper.transpose(0, 1)  # (P, M, C / 8)
        c = state.image_tokens.shape[-1]
        count = prompts.shape[0]
        if count == 0:
            return hyper.new_zeros((0, hyper.shape[1], 4 * rows, 4 * cols))
        first = int(prompts[0])
        if int(prompts[-1]) - first + 1 == count:  # a run of prompts: a view, not a copy
            tokens = state.image_tokens[first : first + count]
        else:
            tokens = state.image_tokens[prompts]
        tokens = tokens.view(-1, h, w, c)[:, :rows, :cols]
        # One prompt at a time: the 32-channel upscaled features of many prompts at once
        # would take hundreds of MB.
        parts = [
            upscale_masks(self.prepared.upscaling, tokens[k : k + 1], hyper[k : k + 1])
            for k in range(count)
        ]
        return parts[0] if count == 1 else torch.cat(parts)


# The most prompts a fresh image's first block folds for (see _folds_first_block): measured
# break-even between two and three prompts on 64 x 64 embeddings.
_FOLD_FIRST_BLOCK = 2


class _ImageSide:
    """The image side of a batch of prompts: each prompt's (N, C) image tokens, made in full
    once the first block has updated them (before that they are shared, unless mask prompts
    gave every prompt its own)."""

    def __init__(self, decoder: FastDecoder, batch: int, keys: torch.Tensor | None) -> None:
        self.decoder = decoder
        self.batch = batch
        self.keys = keys  # None: still the shared image tokens
        self._keys_pe: torch.Tensor | None = None
        self.folds = keys is None and decoder._folds_first_block(batch)

    def _shared(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The shared image tokens with and without positions, as (B, N, C) views."""
        d = self.decoder
        shape = (self.batch, -1, -1)
        return d._shared_with_positions().expand(shape), d.image_tokens.expand(shape)

    def tokens_to_image(self, layer: int, q: torch.Tensor) -> torch.Tensor:
        d = self.decoder
        to_image = d._to_image[layer]
        if self.keys is None:
            if self.folds:
                return to_image.tokens_to_image(q, *self._shared())
            k0, v0, _ = d._first_block()
            return to_image.tokens_to_shared_image(q, k0, v0)
        self._keys_pe = d._with_positions(self.keys)
        return to_image.tokens_to_image(q, self._keys_pe, self.keys)

    def image_to_tokens(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        d = self.decoder
        to_tokens = d._to_tokens[layer]
        if self.keys is None:
            if self.folds:
                weights, values = to_tokens.image_to_tokens(self._shared()[0], k, v)
            else:
                _, _, q0t = d._first_block()
                weights, values = to_tokens.shared_image_to_tokens(q0t, k, v)
            updated = torch.baddbmm(d.image_tokens, weights.transpose(1, 2), values)
        else:
            weights, values = to_tokens.image_to_tokens(self._keys_pe, k, v)
            # In place in the keys of an earlier layer, which nothing else reads (a fresh
            # buffer costs page faults).
            updated = self.keys.baddbmm_(weights.transpose(1, 2), values)
        self._keys_pe = None  # free a (B, N, C) buffer
        self.keys = d.transformer.layers[layer].norm4(updated)

    def final_tokens_to_image(self, q: torch.Tensor) -> torch.Tensor:
        d = self.decoder
        if self.keys is None:  # a transformer without layers
            self.keys = d.image_tokens.expand(self.batch, -1, -1)
        return d._final.tokens_to_image(q, d._with_positions(self.keys), self.keys)


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, h*w, C), contiguous: a fresh tensor.

    Image by image, as the transpose of a (C, h*w) matrix: torch copies a transposed matrix
    in cache-sized blocks, about twice as fast as the strided copy of the 3-d transpose.
    """
    b, c = x.shape[:2]
    out = x.new_empty((b, x[0].numel() // c, c))
    for image, tokens in zip(x, out):
        tokens.copy_(image.reshape(c, -1).t())
    return out


def _heads_first(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(1, N, heads * d) -> (heads, N, d), contiguous."""
    _, n, c = x.shape
    return x[0].view(n, heads, c // heads).transpose(0, 1).contiguous()
