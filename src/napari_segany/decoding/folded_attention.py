"""The mask decoder's cross attentions with the image side's projections folded away.

Between a few prompt tokens (T of them) and thousands of image tokens (N = 4096), the reference
projects every image token to queries, keys and values. Attention logits are bilinear, so the
image side's projection can move to the prompt side instead:
``(W_k x + b_k) . q = x . (W_k^T q) + b_k . q``, and likewise the value and output projections
move past the softmax-weighted sums. What touches the image tokens is then one (N, C) x (C, hT)
product for the logits and one for the mixing, with no per-prompt (N, C/2) projections.

The weights are rearranged once (per head, scaled, with biases folded in) so that the prompt
side is a few small batched matrix products rather than general contractions, whose set-up
costs more than their arithmetic at these sizes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..modeling.transformer import Attention


def per_head(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(B, heads, T, K) @ (heads, K, D) -> (B, heads, T, D)."""
    b, heads, t, k = x.shape
    if b == 1:
        return torch.bmm(x[0], weight)[None]
    y = torch.bmm(x.transpose(0, 1).reshape(heads, b * t, k), weight)
    return y.view(heads, b, t, -1).transpose(0, 1)


class FoldedAttention:
    """One cross attention of the decoder, for prompt tokens against image tokens.

    Image tokens are (B, N, C) per prompt (B = 1 may be shared by every prompt); prompt tokens
    are (B, T, C). Results equal ``Attention`` up to float rounding.
    """

    def __init__(self, attn: Attention) -> None:
        self.attn = attn
        heads = self.heads = attn.num_heads
        d = attn.internal_dim // heads
        scale = 1.0 / math.sqrt(d)

        def with_bias(proj: torch.nn.Linear) -> torch.Tensor:
            # (heads, d, C + 1): a projection's weight and bias per head, with the logits'
            # 1 / sqrt(d); a folded prompt token is then one row of this product.
            weight = proj.weight.view(heads, d, -1)
            return torch.cat([weight, proj.bias.view(heads, d, 1)], dim=2) * scale

        self._keys_folded = with_bias(attn.k_proj)  # image keys, for prompt queries
        self._queries_folded = with_bias(attn.q_proj)  # image queries, for prompt keys
        self._values_t = attn.v_proj.weight.view(heads, d, -1).transpose(1, 2).contiguous()
        # Weights of a softmax sum to 1, so the value bias passes through to a fixed output bias.
        self._out_bias = attn.out_proj.bias + attn.out_proj.weight @ attn.v_proj.bias
        # (heads, d + 1, C): each head's slice of the output projection, then bias / heads,
        # the map from a head's values with a trailing 1 to channels (see folded_values).
        out_per_head = attn.out_proj.weight.view(-1, heads, d).permute(1, 2, 0)
        bias_row = (attn.out_proj.bias / heads).expand(heads, 1, -1)
        self._out_heads = torch.cat([out_per_head, bias_row], dim=1)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, heads * d) -> (B, heads, T, d), a view."""
        b, t, c = x.shape
        return x.view(b, t, self.heads, c // self.heads).transpose(1, 2)

    def _logits(self, prompt: torch.Tensor, folded: torch.Tensor, image: torch.Tensor):
        """Attention logits between the prompt's projected tokens (B, heads, T, d) and image
        tokens (B, N, C) that ``folded`` would project: (B, heads * T, N), contiguous."""
        b, heads, t, _ = prompt.shape
        rows = per_head(prompt, folded).reshape(b, heads * t, -1)  # (B, hT, C + 1)
        c = rows.shape[-1] - 1
        # The image tokens as the product's left operand, in their own layout: ~1.5x faster
        # than as a transposed right one. Softmax then wants the image axis last (~2x faster
        # than along a middle axis), which is worth a transposed copy.
        logits = torch.baddbmm(rows[..., c:].transpose(1, 2), image, rows[..., :c].transpose(1, 2))
        return logits.transpose(1, 2).contiguous()

    # ---- prompt tokens attend to image tokens --------------------------------------------

    def tokens_to_image(
        self, q: torch.Tensor, keys_pe: torch.Tensor, keys: torch.Tensor
    ) -> torch.Tensor:
        """q: (B, T, C) tokens + their embedding; keys_pe: (B, N, C) image tokens + positions;
        keys: (B, N, C) image tokens. Returns the attention output (B, T, C)."""
        b, t, _ = q.shape
        logits = self._logits(self._heads(self.attn.q_proj(q)), self._keys_folded, keys_pe)
        weights = logits.softmax(dim=-1)  # over the N image tokens, a contiguous axis
        mixed = torch.bmm(weights, keys).view(b, self.heads, t, -1)  # (B, heads, T, C)
        out = per_head(mixed, self._values_t)  # (B, heads, T, d)
        out = out.transpose(1, 2).reshape(b, t, self.attn.internal_dim)
        return F.linear(out, self.attn.out_proj.weight, self._out_bias)

    def tokens_to_shared_image(
        self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor
    ) -> torch.Tensor:
        """Prompt tokens (B, T, C) attend to image tokens already projected once for all
        prompts: keys, values (heads, N, d). Returns (B, T, C)."""
        b, t, _ = q.shape
        heads = self.heads
        qh = self._heads(self.attn.q_proj(q)).transpose(0, 1).reshape(heads, b * t, -1)
        out = F.scaled_dot_product_attention(qh, keys, values)  # (heads, B*T, d)
        out = out.view(heads, b, t, -1).permute(1, 2, 0, 3).reshape(b, t, self.attn.internal_dim)
        return self.attn.out_proj(out)

    # ---- image tokens attend to prompt tokens --------------------------------------------

    def image_to_tokens(
        self, keys_pe: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-prompt image tokens attend to the prompt's tokens.

        keys_pe: (B, N, C) image tokens + positions (the queries); k: (B, T, C) tokens + their
        embedding; v: (B, T, C) tokens. Returns softmax weights (B, heads * T, N) and folded
        values (B, heads * T, C): the attention output is ``weights^T @ values``.
        """
        b, t, _ = k.shape
        logits = self._logits(self._heads(self.attn.k_proj(k)), self._queries_folded, keys_pe)
        # Each head's softmax runs over its T tokens, a middle axis: vectorised over N.
        weights = logits.view(b, self.heads, t, -1).softmax(dim=2)
        return weights.view(b, self.heads * t, -1), self.folded_values(v)

    def shared_image_to_tokens(
        self, queries_t: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`image_to_tokens`, for image queries projected once for all prompts:
        queries_t (heads, d, N), already scaled by 1 / sqrt(d)."""
        b, t, _ = k.shape
        heads = self.heads
        kh = self._heads(self.attn.k_proj(k)).transpose(0, 1).reshape(heads, b * t, -1)
        logits = torch.bmm(kh, queries_t)  # (heads, B*T, N)
        weights = logits.view(heads, b, t, -1).softmax(dim=2)
        return weights.transpose(0, 1).reshape(b, heads * t, -1), self.folded_values(v)

    def folded_values(self, v: torch.Tensor) -> torch.Tensor:
        """Values with the output projection (and its bias) folded in: (B, T, C) tokens ->
        (B, heads * T, C).

        For image queries, ``weights^T @ folded`` is the attention's output: each head's weights
        sum to 1 over its T tokens, so adding bias / heads to every row of every head adds the
        bias once.
        """
        b, t, _ = v.shape
        folded = per_head(self._values_with_one(v), self._out_heads)  # (B, heads, T, C)
        return folded.reshape(b, self.heads * t, -1)

    def _values_with_one(self, v: torch.Tensor) -> torch.Tensor:
        """(B, T, C) tokens -> their per-head values with a trailing 1: (B, heads, T, d + 1)."""
        values = self._heads(self.attn.v_proj(v))
        return torch.cat([values, values.new_ones(values.shape[:3] + (1,))], dim=3)
