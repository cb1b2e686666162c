"""MobileSAM (vit_t): our TinyViT SAM against the ``mobile_sam`` package, same random weights."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from mobile_reference import build_reference_mobile_sam
from napari_segany import CheckpointError, Predictor, load_model
from napari_segany.decoding import DECODERS
from napari_segany.modeling import VIT_T, SamConfig, TinyViTConfig, build_sam
from napari_segany.modeling.tiny_vit import TinyViT
from napari_segany.weights.architecture import infer_config
from reference_models import save_checkpoint

IMAGE_SHAPE = (517, 203)  # tall and odd: resizing, padding and the final crop all matter


def _image(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A smooth RGB image with noise, so that masks are neither empty nor full."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = 127 + 100 * np.sin(rows / 19.0) * np.cos(cols / 13.0)
    rgb = np.stack([base, base[::-1], base[:, ::-1]], axis=-1) + rng.normal(0, 20, (*shape, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def mobile(tmp_path_factory):
    """(reference Sam, path of its checkpoint) at the real MobileSAM shape."""
    reference = build_reference_mobile_sam(seed=0)
    folder = tmp_path_factory.mktemp("mobile")
    return reference, save_checkpoint(reference, folder / "mobile_sam_random.pt")


@pytest.fixture(scope="module", params=DECODERS)
def pair(request, mobile):
    """(our predictor, reference predictor, image), both with the image set; ours with each of
    its decoders in turn."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from mobile_sam import SamPredictor

    reference, checkpoint = mobile
    image = _image(IMAGE_SHAPE)
    ours = Predictor(load_model(checkpoint, device="cpu"), precision="fp32", decoder=request.param)
    ours.set_image(image)
    ref = SamPredictor(reference)
    ref.set_image(image)
    return ours, ref, image


def _ref_predict(ref, points=None, labels=None, box=None, multimask=True):
    """The reference's answer to prompts given in our (row, col) convention."""
    xy = None if points is None else np.asarray(points, float)[:, ::-1].copy()
    xyxy = None if box is None else np.asarray(box, float)[[1, 0, 3, 2]]
    return ref.predict(xy, labels, xyxy, multimask_output=multimask)


def _assert_same_prediction(ours, theirs) -> None:
    masks, scores, logits = ours
    ref_masks, ref_scores, ref_logits = theirs
    assert masks.shape == ref_masks.shape
    agreement = (masks == ref_masks).mean()
    assert agreement >= 0.999, f"only {agreement:.5f} of mask pixels agree with MobileSAM"
    np.testing.assert_allclose(scores, ref_scores, atol=1e-3)
    np.testing.assert_allclose(logits, ref_logits, atol=1e-3 * max(1.0, np.abs(ref_logits).max()))
    assert 0.0 < ref_masks.mean() < 1.0  # an empty answer would agree too easily


def test_mobile_sam_checkpoint_loads_as_vit_t(mobile):
    reference, checkpoint = mobile
    state = torch.load(checkpoint, weights_only=True)
    assert infer_config(state) == VIT_T
    model = load_model(checkpoint, device="cpu")
    assert isinstance(model.image_encoder, TinyViT)
    # Same tensors under the same names: our model saves a checkpoint MobileSAM can load.
    assert model.state_dict().keys() == reference.state_dict().keys()
    n_encoder = sum(p.numel() for p in model.image_encoder.parameters())
    assert n_encoder == sum(p.numel() for p in reference.image_encoder.parameters())
    assert 5e6 < n_encoder < 7e6  # MobileSAM's "about 5.7M parameters" (with its unused head)


def test_embedding_matches_mobile_sam(pair):
    ours, ref, _ = pair
    mine = ours.get_image_embedding()
    theirs = ref.get_image_embedding().numpy()
    assert mine.shape == theirs.shape == (1, 256, 64, 64)
    assert np.abs(mine - theirs).max() <= 1e-3 * np.abs(theirs).max()


@pytest.mark.parametrize("multimask", [True, False])
def test_point_prompt_matches_mobile_sam(pair, multimask):
    ours, ref, image = pair
    h, w = image.shape[:2]
    points = np.array([[0.4 * h, 0.6 * w], [0.8 * h, 0.2 * w]])
    labels = np.array([1, 0])
    _assert_same_prediction(
        ours.predict(points, labels, multimask=multimask),
        _ref_predict(ref, points, labels, multimask=multimask),
    )


def test_box_prompt_matches_mobile_sam(pair):
    ours, ref, image = pair
    h, w = image.shape[:2]
    box = np.array([0.2 * h, 0.1 * w, 0.7 * h, 0.9 * w])
    _assert_same_prediction(ours.predict(box=box), _ref_predict(ref, box=box))


def test_other_tiny_vit_widths_round_trip():
    """A fine-tuned TinyViT of another width and depth is read off its tensors correctly."""
    config = replace(
        VIT_T,
        img_size=256,
        tiny_vit=TinyViTConfig(
            embed_dims=(16, 32, 48, 96),
            depths=(1, 2, 3, 1),
            num_heads=(1, 2, 3, 6),
            window_sizes=(5, 5, 4, 3),
            mlp_ratio=2.0,
            mbconv_expand_ratio=3.0,
            num_classes=0,
        ),
    )
    model = build_sam(config)
    inferred = infer_config(model.state_dict())
    assert inferred.tiny_vit == config.tiny_vit
    with torch.inference_mode():
        embedding = model.image_encoder(torch.randn(2, 3, 256, 256))
    assert embedding.shape == (2, 256, 16, 16)  # stride 16, like SAM's ViT
    assert torch.isfinite(embedding).all()


def _mobile_state() -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return dict(build_sam(SamConfig(encoder="tiny_vit")).state_dict())


def test_missing_stage_is_a_clear_error():
    state = {k: v for k, v in _mobile_state().items() if ".layers.3." not in k}
    with pytest.raises(CheckpointError, match="3 stages"):
        infer_config(state, "cut.pt")


def test_non_square_attention_table_is_a_clear_error():
    state = _mobile_state()
    key = "image_encoder.layers.2.blocks.0.attn.attention_biases"
    state[key] = torch.empty(5, 150, device="meta")
    with pytest.raises(CheckpointError, match="attention bias table"):
        infer_config(state, "odd.pt")


def test_encoding_reports_every_block_of_every_stage(pair):
    ours, _, image = pair
    steps = []
    ours.set_image(image, progress=lambda done, total: steps.append((done, total)))
    # MobileSAM's TinyViT: 2 MBConv blocks, then 2, 6 and 2 attention blocks.
    assert steps == [(i, 12) for i in range(13)]
