"""The fast upscaling against the literal transposed convolutions it replaces."""

import copy

import pytest
import torch

from napari_segany.decoding.upscaling import StackedMLPs, upscale_masks


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_upscaled_masks_equal_the_transposed_convolutions(tiny_model, dtype):
    decoder = copy.deepcopy(tiny_model.mask_decoder).to(dtype)  # the fixture stays float32
    gen = torch.Generator().manual_seed(0)
    c = decoder.transformer_dim
    tokens = torch.randn(2, 5, 7, c, generator=gen).to(dtype)  # (B, h, w, C): any grid
    hyper = torch.randn(2, 3, c // 8, generator=gen).to(dtype)
    with torch.inference_mode():
        masks = upscale_masks(decoder, tokens, hyper)
        features = decoder.output_upscaling(tokens.permute(0, 3, 1, 2))  # (B, C/8, 4h, 4w)
        expected = torch.einsum("bmc,bchw->bmhw", hyper, features)
    assert masks.shape == (2, 3, 20, 28) and masks.dtype == dtype
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(masks, expected, atol=tol * expected.abs().max(), rtol=tol)


def test_stacked_hypernetworks_equal_each_mlp(tiny_model):
    mlps = tiny_model.mask_decoder.output_hypernetworks_mlps
    x = torch.randn(len(mlps), 7, mlps[0].layers[0].in_features)
    with torch.inference_mode():
        stacked = StackedMLPs(list(mlps))(x)
        expected = torch.stack([mlp(x[i]) for i, mlp in enumerate(mlps)])
    torch.testing.assert_close(stacked, expected, rtol=1e-5, atol=1e-6)
