"""A single prompt's first upscaling from the per-image projection equals the direct product."""

import dataclasses

import numpy as np
import torch

from napari_segany.folded_decoder import FoldedDecoder
from napari_segany.transforms import rowcol_to_model_xy


def _sparse(model, points, labels):
    xy = rowcol_to_model_xy(np.asarray(points, float), (1024, 1024), model.image_size)
    coords = torch.as_tensor(xy, dtype=torch.float32)[None]
    sparse, _ = model.prompt_encoder(
        points=(coords, torch.as_tensor([labels])), boxes=None, masks=None
    )
    return sparse


def test_single_prompt_upscaling_matches_the_direct_product(tiny_model):
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(1, 256, 64, 64, generator=gen)
    with torch.inference_mode():
        decoder = FoldedDecoder(tiny_model, features)
        for points, labels in [([[300.0, 400.0]], [1]), ([[20.0, 30.0], [900.0, 1000.0]], [1, 0])]:
            batch = decoder.decode(_sparse(tiny_model, points, labels), multimask=True)
            assert batch.steps is not None and len(batch.steps) == 2
            ours = decoder.upscale(batch)
            direct = decoder.upscale(dataclasses.replace(batch, steps=None))
            assert ours.shape == direct.shape == (1, 3, 256, 256)
            torch.testing.assert_close(ours, direct, atol=1e-5 * direct.abs().max(), rtol=1e-4)
            assert 0.0 < float((direct > 0).float().mean()) < 1.0


def test_batches_of_prompts_keep_no_history(tiny_model):
    features = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        decoder = FoldedDecoder(tiny_model, features)
        batch = decoder.decode_points(torch.tensor([[100.0, 200.0], [700.0, 50.0]]))
    assert batch.steps is None
