"""The fast decoder against the model's literal mask decoder, on the same image and prompts.

Both sit behind one interface; the oracle tests compare each with Meta's SAM, and these compare
them directly on what segment-everything and the tiling use: batches, a subset of prompts,
part of the grid, and mask prompts, which the fast decoder cannot share.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_segany import Predictor
from napari_segany.decoding import DECODERS, make_decoder
from napari_segany.decoding.fast import FastDecoder
from napari_segany.decoding.reference import ReferenceDecoder
from oracle import oracle_image


@pytest.fixture(scope="module")
def encoded(tiny_model):
    """A predictor with a non-square image set (padding on the right) and its embedding."""
    predictor = Predictor(tiny_model, precision="fp32")
    predictor.set_image(oracle_image((300, 211), seed=1))
    features = torch.as_tensor(predictor.get_image_embedding())
    return predictor, features


def _prompts(model, kind: str, batch: int = 5):
    gen = torch.Generator().manual_seed(len(kind))
    xy = torch.rand(batch, 3, 2, generator=gen) * torch.tensor([700.0, 1000.0])
    labels = torch.tensor([[1, 0, 1]]).expand(batch, -1)
    boxes = torch.sort(torch.rand(batch, 2, 2, generator=gen) * 700, dim=1).values.reshape(-1, 4)
    masks = torch.randn(batch, 1, 256, 256, generator=gen) * 3
    points = (xy, labels) if kind in ("points", "points + box", "mask") else None
    box = boxes if kind in ("box", "points + box") else None
    mask = masks if kind == "mask" else None
    with torch.inference_mode():
        sparse, dense = model.prompt_encoder(points=points, boxes=box, masks=mask)
    return sparse, (dense if mask is not None else None)


@pytest.mark.parametrize("kind", ["points", "box", "points + box", "mask"])
@pytest.mark.parametrize("multimask", [True, False])
def test_fast_decoder_equals_the_literal_one(encoded, tiny_model, kind, multimask):
    _, features = encoded
    sparse, dense = _prompts(tiny_model, kind)
    with torch.inference_mode():
        fast, literal = FastDecoder(tiny_model, features), ReferenceDecoder(tiny_model, features)
        a, b = fast.decode(sparse, dense, multimask), literal.decode(sparse, dense, multimask)
        expected = literal.upscale(b)
        got = fast.upscale(a)
    assert got.shape == expected.shape == (5, 3 if multimask else 1, 256, 256)
    torch.testing.assert_close(a.iou, b.iou, rtol=1e-4, atol=1e-5)
    scale = float(expected.abs().max())
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * scale)
    assert scale > 0.0


@pytest.mark.parametrize("kind", ["points", "box"])
@pytest.mark.parametrize("batches", [(1,), (2,), (3,), (6, 1), (1, 2, 6)])
def test_any_batch_size_in_any_order_equals_the_literal_decoder(encoded, tiny_model, kind, batches):
    """One or two prompts on a fresh image fold the first block, more share its projections,
    and once shared every later batch uses them: the same masks either way."""
    _, features = encoded
    with torch.inference_mode():
        fast, literal = FastDecoder(tiny_model, features), ReferenceDecoder(tiny_model, features)
        for batch in batches:
            sparse, _ = _prompts(tiny_model, kind, batch=batch)
            for multimask in (False, True):
                a, b = fast.decode(sparse, None, multimask), literal.decode(sparse, None, multimask)
                got, expected = fast.upscale(a), literal.upscale(b)
                torch.testing.assert_close(a.iou, b.iou, rtol=1e-4, atol=1e-5)
                scale = float(expected.abs().max())
                torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * scale)


def test_weights_loaded_in_place_are_followed(tiny_model, encoded):
    """What the fast decoder derives from the weights is kept per model, and remade when the
    weights change: loading other weights into the same model changes the masks."""
    _, features = encoded
    sparse, _ = _prompts(tiny_model, "points", batch=1)
    original = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    try:
        with torch.inference_mode():
            before = FastDecoder(tiny_model, features).decode(sparse, None, False).iou
            changed = {
                k: v * 1.5 if k.startswith("mask_decoder.transformer.layers.0.cross_attn") else v
                for k, v in original.items()
            }
            tiny_model.load_state_dict(changed)
            after = FastDecoder(tiny_model, features).decode(sparse, None, False).iou
            expected = ReferenceDecoder(tiny_model, features).decode(sparse, None, False).iou
        assert not torch.allclose(before, after)
        torch.testing.assert_close(after, expected, rtol=1e-4, atol=1e-5)
    finally:
        tiny_model.load_state_dict(original)


@pytest.mark.parametrize("kind", DECODERS)
def test_a_subset_of_prompts_and_part_of_the_grid(encoded, tiny_model, kind):
    """What segment-everything asks: some prompts, and only the cells covering the image."""
    _, features = encoded
    sparse, _ = _prompts(tiny_model, "points", batch=6)
    chosen = torch.tensor([0, 2, 3, 5])
    with torch.inference_mode():
        decoder = make_decoder(kind, tiny_model, features)
        decoded = decoder.decode(sparse, None, True)
        full = decoder.upscale(decoded)
        part = decoder.upscale(decoded, chosen, grid=(64, 45))
    assert part.shape == (4, 3, 256, 180)
    torch.testing.assert_close(part, full[chosen][..., :180], rtol=1e-5, atol=1e-6)


def test_decoders_are_chosen_by_name_never_by_shape(tiny_model, monkeypatch):
    image = oracle_image((64, 80), seed=2)
    for kind, cls in (("fast", FastDecoder), ("reference", ReferenceDecoder)):
        predictor = Predictor(tiny_model, precision="fp32", decoder=kind)
        predictor.set_image(image)
        predictor.predict(np.array([[30.0, 40.0]]), np.array([1]))  # one prompt
        assert isinstance(predictor._image_decoder(), cls)
        predictor.predict(box=np.array([[5, 5, 40, 40], [10, 20, 60, 70]]))  # a batch
        assert isinstance(predictor._image_decoder(), cls)
    monkeypatch.setenv("NAPARI_SEGANY_DECODER", "reference")
    assert Predictor(tiny_model).decoder_kind == "reference"
    monkeypatch.setenv("NAPARI_SEGANY_DECODER", "fastest")
    with pytest.raises(ValueError, match="Unknown decoder 'fastest'"):
        Predictor(tiny_model)


def test_a_model_loaded_under_inference_mode_decodes(tiny_checkpoint):
    """Scripts often load and predict under ``torch.inference_mode()``, whose tensors keep no
    version counter: the per-model preparation still works and is reused."""
    from napari_segany import load_model

    image = oracle_image((96, 80), seed=4)
    with torch.inference_mode():
        model = load_model(tiny_checkpoint, device="cpu")
        predictor = Predictor(model, precision="fp32")
        predictor.set_image(image)
        masks, scores, _ = predictor.predict(np.array([[40.0, 30.0]]), np.array([1]))
        again, _, _ = predictor.predict(np.array([[40.0, 30.0]]), np.array([1]))
    assert masks.shape == (3, 96, 80) and np.isfinite(scores).all()
    np.testing.assert_array_equal(masks, again)
