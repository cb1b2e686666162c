"""A single prompt decoded with its image tokens in low-rank form equals the direct decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_segany.folded_decoder import FoldedDecoder
from napari_segany.transforms import rowcol_to_model_xy

PROMPTS = {
    "one point": dict(points=[[300.0, 400.0]], labels=[1]),
    "points with a negative": dict(points=[[20.0, 30.0], [900.0, 1000.0]], labels=[1, 0]),
    "box": dict(box=[100.0, 200.0, 600.0, 500.0]),
    "box and points": dict(points=[[350.0, 300.0], [120.0, 250.0]], labels=[1, 0],
                           box=[100.0, 200.0, 600.0, 500.0]),
    "nine points": dict(points=[[100.0 * i + 7, 1000.0 - 90.0 * i] for i in range(9)],
                        labels=[1, 0, 1, 1, 0, 1, 0, 0, 1]),
}  # fmt: skip


def _sparse(model, points=None, labels=None, box=None) -> torch.Tensor:
    size = (1024, 1024)
    point_prompt = box_prompt = None
    if points is not None:
        xy = rowcol_to_model_xy(np.asarray(points, float), size, model.image_size)
        point_prompt = (torch.as_tensor(xy, dtype=torch.float32)[None], torch.tensor([labels]))
    if box is not None:
        r0, c0, r1, c1 = box
        box_prompt = torch.tensor([[c0, r0, c1, r1]], dtype=torch.float32)
    sparse, _ = model.prompt_encoder(points=point_prompt, boxes=box_prompt, masks=None)
    return sparse


def _both(decoder: FoldedDecoder, sparse: torch.Tensor, multimask: bool):
    """(iou, low-res logits, batch) with low-rank image tokens, then with materialized ones."""
    out = []
    for low_rank in (True, False):
        decoder.low_rank = low_rank
        batch = decoder.decode(sparse, multimask)
        out.append((batch.iou, decoder.upscale(batch), batch))
    return out


def _features(seed: int, offset: float = 0.0) -> torch.Tensor:
    return torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(seed)) + offset


@pytest.mark.parametrize("name", PROMPTS)
@pytest.mark.parametrize("multimask", [True, False])
def test_low_rank_click_equals_the_direct_decoding(tiny_model, name, multimask):
    with torch.inference_mode():
        decoder = FoldedDecoder(tiny_model, _features(0))
        (iou, logits, batch), (iou_direct, logits_direct, direct) = _both(
            decoder, _sparse(tiny_model, **PROMPTS[name]), multimask
        )
    assert batch.low_rank is not None and batch.image_tokens is None
    assert direct.low_rank is None and direct.image_tokens is not None
    assert logits.shape == logits_direct.shape == (1, 3 if multimask else 1, 256, 256)
    torch.testing.assert_close(iou, iou_direct, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(logits, logits_direct, atol=1e-5 * logits_direct.abs().max(), rtol=0)
    assert 0.0 < float((logits_direct > 0).float().mean()) < 1.0  # masks with an edge


@pytest.mark.parametrize("offset", [0.0, 4.0, -10.0])
def test_tokens_far_from_zero_mean_keep_their_layer_norms_exact(tiny_model, offset):
    # The layer norms' variances come from sums of squares: a large mean per token would
    # cancel digits if those sums were formed carelessly.
    with torch.inference_mode():
        decoder = FoldedDecoder(tiny_model, _features(3, offset))
        (iou, logits, _), (iou_direct, logits_direct, _) = _both(
            decoder, _sparse(tiny_model, **PROMPTS["points with a negative"]), True
        )
    torch.testing.assert_close(iou, iou_direct, atol=1e-4, rtol=1e-3)
    agree = ((logits > 0) == (logits_direct > 0)).float().mean()
    assert agree >= 0.9999
    torch.testing.assert_close(logits, logits_direct, atol=1e-4 * logits_direct.abs().max(), rtol=0)


def test_segment_everything_grid_crop_from_a_low_rank_prompt(tiny_model):
    # A last batch of one point in segment everything takes the low-rank path with a cropped
    # grid; its logits are the crop of the full grid's.
    with torch.inference_mode():
        cropped = FoldedDecoder(tiny_model, _features(1), grid_shape=(40, 64))
        full = FoldedDecoder(tiny_model, _features(1))
        point = torch.tensor([[300.0, 120.0]])
        batch = cropped.decode_points(point)
        assert batch.low_rank is not None
        logits = cropped.upscale(batch)
        expected = full.upscale(full.decode_points(point))
    assert logits.shape == (1, 3, 160, 256)
    torch.testing.assert_close(logits, expected[..., :160, :], atol=1e-6, rtol=1e-5)


def test_batches_and_long_prompts_make_their_tokens_in_full(tiny_model):
    with torch.inference_mode():
        decoder = FoldedDecoder(tiny_model, _features(2))
        batch = decoder.decode_points(torch.tensor([[100.0, 200.0], [700.0, 50.0]]))
        assert batch.low_rank is None and batch.image_tokens.shape == (2, 4096, 256)
        # 20 points: 8 heads x 26 tokens is more than half the 256 channels.
        many = dict(points=[[40.0 * i + 3, 50.0 * i + 9] for i in range(20)], labels=[1] * 20)
        long = decoder.decode(_sparse(tiny_model, **many))
        assert long.low_rank is None
        assert decoder.upscale(long).shape == (1, 3, 256, 256)
