"""SAM's mask decoder rearranged for prompts on one image embedding: clicks and grids of them.

The reference decoder redoes the image-side work for every prompt: its first block projects the
same (4096, 256) image tokens again, and its attentions project every prompt's image tokens to
(4096, 128) queries, keys and values. :class:`FoldedDecoder` computes the same function (equal up
to float rounding; tests compare it with ``MaskDecoder`` and the oracle tests with the
reference) but

* projects the image tokens of the first block once per image, since before any image token
  has attended to a prompt they are the same for every prompt without a mask prompt;
* folds each attention's projection of the image tokens into the much smaller prompt side
  (``q . (W_k x) = (W_k^T q) . x``, and the value and output projections likewise), so no
  per-prompt (4096, 128) projections are formed (:mod:`.folded_attention`);
* returns the predicted IoU first and upsamples only the prompts the caller keeps, and only the
  part of the embedding grid the caller asks for (segment-everything skips the padding);
* on a CPU, keeps a single prompt's image tokens as per-image projections plus the prompt's
  low-rank updates, never as (4096, 256) arrays (:mod:`.lowrank_tokens`).

A single click is this with one prompt; segment-everything is this with hundreds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .folded_attention import FoldedAttention
from .lowrank_tokens import LowRankTokens, SharedImage
from .modeling import Sam
from .modeling.common import MLP


@dataclass
class DecodedBatch:
    """Transformer outputs of B prompts, enough to upsample any of them later.

    iou: (B, M) predicted IoU of the M chosen outputs; image_tokens: (B, N, C) image tokens
    after the transformer, or None when ``low_rank`` holds them (one prompt); mask_tokens:
    (B, M, C) their output tokens; outputs: which of the decoder's mask tokens they are (1..3
    for multimask, 0 for a single mask).
    """

    iou: torch.Tensor
    image_tokens: torch.Tensor | None
    mask_tokens: torch.Tensor
    outputs: slice
    low_rank: LowRankTokens | None = None


class FoldedDecoder:
    """Decoding of prompts without a mask prompt on one image embedding.

    features: (1, C, h, w) image embedding; grid_shape: the (rows, cols) of the embedding grid
    that :meth:`upscale` returns (default: all of it; segment-everything passes the part that
    covers the image, since the rest is padding and never reaches the image's masks).
    """

    def __init__(
        self, model: Sam, features: torch.Tensor, grid_shape: tuple[int, int] | None = None
    ) -> None:
        decoder = model.mask_decoder
        self.model = model
        self.decoder = decoder
        self.transformer = decoder.transformer
        dtype = decoder.iou_token.weight.dtype
        features = features.to(dtype)
        _, c, h, w = features.shape
        self.embedding_hw = (h, w)
        self.grid_shape = grid_shape or (h, w)
        # Prompts without a mask prompt all add the same "no mask" embedding.
        dense = model.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        src = features + dense  # (1, C, h, w)
        pe = model.prompt_encoder.get_dense_pe().to(dtype)  # (1, C, h, w)
        # Token-major copies, made once: every prompt reads them, and a transposed view
        # turns each of those reads into a strided gather.
        self.image_tokens = src.flatten(2).transpose(1, 2).contiguous()  # (1, N, C)
        self.image_pe = pe.flatten(2).transpose(1, 2).contiguous()
        layers = self.transformer.layers
        self._to_image = [
            FoldedAttention(layer.cross_attn_token_to_image, f"to_image{i}")
            for i, layer in enumerate(layers)
        ]
        self._to_tokens = [
            FoldedAttention(layer.cross_attn_image_to_token, f"to_tokens{i}")
            for i, layer in enumerate(layers)
        ]
        self._final = FoldedAttention(self.transformer.final_attn_token_to_image, "final")
        # (heads, N, d): the first block's image-side projections, shared by all prompts.
        t2i, i2t = layers[0].cross_attn_token_to_image, layers[0].cross_attn_image_to_token
        tokens_pe = self.image_tokens + self.image_pe
        self._k0 = self._heads_first(t2i.k_proj(tokens_pe), t2i.num_heads)
        self._v0 = self._heads_first(t2i.v_proj(self.image_tokens), t2i.num_heads)
        q0 = self._heads_first(i2t.q_proj(tokens_pe), i2t.num_heads)
        # Pre-scaled and transposed for (heads, B*T, d) @ (heads, d, N).
        self._q0t = (q0 / math.sqrt(q0.shape[-1])).transpose(1, 2).contiguous()
        self._keys_pe: torch.Tensor | None = None  # see _with_positions
        self._stacked: dict[tuple[int, int], StackedMLPs] = {}  # hypernetworks per output set
        # Single prompts on a CPU keep their image tokens in low-rank form (see
        # _low_rank_suits); False makes every prompt's tokens in full, as for batches.
        self.low_rank = True
        self._shared: SharedImage | None = None  # made at the first single prompt
        self._first_upscaling: tuple[torch.Tensor, torch.Tensor] | None = None

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

    @staticmethod
    def _heads_first(x: torch.Tensor, heads: int) -> torch.Tensor:
        """(1, N, heads * d) -> (heads, N, d), contiguous."""
        _, n, c = x.shape
        return x[0].view(n, heads, c // heads).transpose(0, 1).contiguous()

    # ---- the transformer ---------------------------------------------------------------------

    def decode_points(self, points_xy: torch.Tensor) -> DecodedBatch:
        """Three candidates each for B single positive points: (B, 2) (x, y), model pixels."""
        b = points_xy.shape[0]
        labels = torch.ones((b, 1), dtype=torch.int64, device=points_xy.device)
        sparse, _ = self.model.prompt_encoder(
            points=(points_xy[:, None, :], labels), boxes=None, masks=None
        )
        return self.decode(sparse, multimask=True)

    def decode(self, sparse: torch.Tensor, multimask: bool = True) -> DecodedBatch:
        """sparse: (B, T, C) prompt-encoder embeddings of B prompts (points and/or boxes).

        multimask: the three ambiguity-resolving outputs, or the single-mask output.
        """
        decoder = self.decoder
        b = sparse.shape[0]
        outputs = slice(1, decoder.num_mask_tokens) if multimask else slice(0, 1)
        output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
        tokens = torch.cat(
            [output_tokens[None].expand(b, -1, -1), sparse.to(output_tokens.dtype)], dim=1
        )  # (B, T, C)
        image = _LowRankSide(self) if self._low_rank_suits(tokens) else _MaterializedSide(self, b)
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
        return DecodedBatch(iou, image.tokens(), q_sub[:, 1:], outputs, image.low_rank())

    def _low_rank_suits(self, tokens: torch.Tensor) -> bool:
        """Whether one prompt's image tokens are best kept in low-rank form (LowRankTokens).

        Only on a CPU, where a click's time is its arithmetic and memory traffic (a GPU runs
        the direct products faster than the extra small kernels launch), in fp32 or fp64 (the
        layer norm's variance comes from sums of squares), and only while the rank per layer,
        heads x tokens, stays under half the channels: beyond that the low-rank products are
        no smaller than the direct ones.
        """
        b, t, c = tokens.shape
        layers = self.transformer.layers
        if b != 1 or not self.low_rank or len(layers) == 0:
            return False
        heads = layers[0].cross_attn_image_to_token.num_heads
        return (
            tokens.device.type == "cpu"
            and tokens.dtype in (torch.float32, torch.float64)
            and heads * t <= c // 2
        )

    def _shared_image(self) -> SharedImage:
        """The image side of LowRankTokens, made at the first single prompt."""
        if self._shared is None:
            factors = {}
            for i, layer in enumerate(self.transformer.layers):
                factors[f"g{i}"], factors[f"b{i}"] = layer.norm4.weight, layer.norm4.bias
            self._shared = SharedImage(self.image_tokens[0], self.image_pe[0], factors)
        return self._shared

    # ---- upsampling --------------------------------------------------------------------------

    def _hypernetworks(self, outputs: slice) -> StackedMLPs:
        key = (outputs.start, outputs.stop)
        if key not in self._stacked:
            self._stacked[key] = StackedMLPs(self.decoder.output_hypernetworks_mlps[outputs])
        return self._stacked[key]

    def upscale(self, batch: DecodedBatch, prompts: torch.Tensor | None = None) -> torch.Tensor:
        """Low-res mask logits of the chosen prompts: (P, M, 4 * rows, 4 * cols).

        prompts: (P,) indices into the batch, default all. Only the grid rows and columns in
        ``grid_shape`` are upsampled: each 4 x 4 block of logits depends on its own image token
        alone.
        """
        if prompts is None:
            prompts = torch.arange(batch.iou.shape[0], device=batch.iou.device)
        h, w = self.embedding_hw
        rows, cols = self.grid_shape
        hyper = self._hypernetworks(batch.outputs)(batch.mask_tokens[prompts].transpose(0, 1))
        hyper = hyper.transpose(0, 1)  # (P, M, C / 8)
        if batch.low_rank is not None:  # one prompt: the first upscaling as a low-rank map
            if self._first_upscaling is None:
                self._first_upscaling = self.decoder.first_upscaling()
            weight, bias = self._first_upscaling
            first = batch.low_rank.mapped("upscaling", weight, bias)  # (N, 4 * C / 4)
            if (rows, cols) != (h, w):
                first = first.view(h, w, -1)[:rows, :cols].reshape(rows * cols, -1)
            return self.decoder.masks_from_first_upscaling(first[None], hyper, rows, cols)
        c = batch.image_tokens.shape[-1]
        first, count = int(prompts[0]), prompts.shape[0]
        if int(prompts[-1]) - first + 1 == count:  # a run of prompts: a view, not a copy
            tokens = batch.image_tokens[first : first + count]
        else:
            tokens = batch.image_tokens[prompts]
        tokens = tokens.view(-1, h, w, c)[:, :rows, :cols]
        # One prompt at a time: the 32-channel upscaled features of many prompts at once
        # would take hundreds of MB.
        return torch.cat(
            [self.decoder.upscale_masks(tokens[k : k + 1], hyper[k : k + 1]) for k in range(count)]
        )


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


class _MaterializedSide:
    """The image side of a batch of prompts, each prompt's (N, C) image tokens made in full
    after the first layer (before it they are the shared ones)."""

    def __init__(self, decoder: FoldedDecoder, batch: int) -> None:
        self.decoder = decoder
        self.batch = batch
        self.keys: torch.Tensor | None = None  # None: still the shared image tokens
        self._keys_pe: torch.Tensor | None = None

    def tokens_to_image(self, layer: int, q: torch.Tensor) -> torch.Tensor:
        d = self.decoder
        to_image = d._to_image[layer]
        if self.keys is None:
            return to_image.tokens_to_shared_image(q, d._k0, d._v0)
        self._keys_pe = d._with_positions(self.keys)
        return to_image.tokens_to_image(q, self._keys_pe, self.keys)

    def image_to_tokens(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        d = self.decoder
        to_tokens = d._to_tokens[layer]
        if self.keys is None:
            weights, values = to_tokens.shared_image_to_tokens(d._q0t, k, v)
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

    def tokens(self) -> torch.Tensor:
        return self.keys

    def low_rank(self) -> None:
        return None


class _LowRankSide:
    """The image side of one prompt, its image tokens kept in low-rank form throughout."""

    def __init__(self, decoder: FoldedDecoder) -> None:
        self.decoder = decoder
        self.keys = LowRankTokens(decoder._shared_image())

    def tokens_to_image(self, layer: int, q: torch.Tensor) -> torch.Tensor:
        d = self.decoder
        to_image = d._to_image[layer]
        if layer == 0:  # still the shared tokens, projected once per image
            return to_image.tokens_to_shared_image(q, d._k0, d._v0)
        return to_image.tokens_to_low_rank_image(q, self.keys)

    def image_to_tokens(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        d = self.decoder
        to_tokens = d._to_tokens[layer]
        if layer == 0:
            weights, rows = to_tokens.shared_image_weights(d._q0t, k)[0], to_tokens.value_rows(v)
        else:
            weights, rows = to_tokens.low_rank_image_to_tokens(self.keys, k, v)
        norm = d.transformer.layers[layer].norm4
        self.keys = self.keys.updated(weights, rows, norm, layer)

    def final_tokens_to_image(self, q: torch.Tensor) -> torch.Tensor:
        return self.decoder._final.tokens_to_low_rank_image(q, self.keys)

    def tokens(self) -> None:
        return None

    def low_rank(self) -> LowRankTokens:
        return self.keys
