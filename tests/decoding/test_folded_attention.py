"""Each cross attention of the decoder, folded, against the literal Attention module."""

from __future__ import annotations

import math

import pytest
import torch

from napari_segany.decoding.folded_attention import FoldedAttention


@pytest.fixture
def attention(tiny_model):
    return tiny_model.mask_decoder.transformer.layers[1].cross_attn_image_to_token


def _inputs(batch: int = 3, tokens: int = 7, n: int = 64, c: int = 256):
    gen = torch.Generator().manual_seed(batch)
    return (torch.randn(batch, tokens, c, generator=gen), torch.randn(batch, n, c, generator=gen),
            torch.randn(batch, n, c, generator=gen))  # fmt: skip


def test_tokens_to_image_equals_the_literal_attention(attention):
    q, keys_pe, keys = _inputs()
    with torch.inference_mode():
        got = FoldedAttention(attention).tokens_to_image(q, keys_pe, keys)
        expected = attention(q, keys_pe, keys)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_image_to_tokens_equals_the_literal_attention(attention):
    k, keys_pe, _ = _inputs()
    v = torch.randn_like(k)
    with torch.inference_mode():
        weights, values = FoldedAttention(attention).image_to_tokens(keys_pe, k, v)
        got = weights.transpose(1, 2) @ values  # (B, N, C)
        expected = attention(keys_pe, k, v)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_shared_image_projections_give_the_same_answers(attention):
    """Image tokens projected once for all prompts, as the first decoder block does."""
    q, keys_pe, _ = _inputs(batch=1)
    image = keys_pe.expand(4, -1, -1)
    prompts = torch.randn(4, 7, 256, generator=torch.Generator().manual_seed(9))
    folded = FoldedAttention(attention)
    heads = attention.num_heads
    with torch.inference_mode():
        queries = attention.q_proj(keys_pe)[0]  # (N, heads * d)
        n, width = queries.shape
        q_t = queries.view(n, heads, width // heads).transpose(0, 1)  # (heads, N, d)
        q_t = (q_t / math.sqrt(width // heads)).transpose(1, 2).contiguous()  # (heads, d, N)
        weights, values = folded.shared_image_to_tokens(q_t, prompts, prompts)
        got = weights.transpose(1, 2) @ values
        expected = attention(image, prompts, prompts)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
