"""The same code on a GPU: CUDA (and Apple MPS), reduced precision and a compiled encoder.

Skipped on machines without a GPU. On one, the reference runs on the same device, so these
are the oracle tests again where the fused attention kernels and autocast are in play.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

from napari_segany import Predictor, generate_masks, load_model
from napari_segany.devices import available_devices
from napari_segany.precision import resolve_precision
from oracle import (
    IMAGE_SHAPES,
    assert_same_prediction,
    oracle_image,
    oracle_prompts,
    reduced_precision_agreement,
    ref_predict,
)

ACCELERATORS = sorted({name.split(":")[0] for name in available_devices()} - {"cpu"})

pytestmark = pytest.mark.skipif(not ACCELERATORS, reason="needs a CUDA or MPS GPU")


@pytest.fixture(params=ACCELERATORS or ["none"])
def device(request) -> str:
    return request.param


def test_fp32_on_the_gpu_matches_the_reference_on_the_gpu(device, tiny_reference):
    reference, checkpoint = tiny_reference
    ours = Predictor(load_model(checkpoint, device=device), precision="fp32")
    ref = SamPredictor(reference.to(device))
    try:
        for shape in IMAGE_SHAPES:
            image = oracle_image(shape, seed=shape[0])
            ours.set_image(image)
            ref.set_image(image)
            for prompt in oracle_prompts(*shape).values():
                assert_same_prediction(ours.predict(**prompt), ref_predict(ref, **prompt))
    finally:
        reference.to("cpu")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_masks_agree_with_fp32(device, tiny_checkpoint, precision):
    if device == "mps" and precision == "bf16":
        pytest.skip("bf16 misbehaves on MPS; auto never picks it there")
    assert reduced_precision_agreement(tiny_checkpoint, device, precision) >= 0.95


def test_auto_precision_follows_the_gpu(device):
    picked = resolve_precision("auto", torch.device(device))
    if device == "mps":
        assert picked == torch.float32
    else:
        major, _ = torch.cuda.get_device_capability()
        assert picked == (torch.bfloat16 if major >= 8 else torch.float16)


def test_gpu_embedding_matches_the_cpu_one(device, tiny_checkpoint):
    image = oracle_image(IMAGE_SHAPES[0], seed=1)
    embeddings = []
    for where in ("cpu", device):
        predictor = Predictor(load_model(tiny_checkpoint, device=where), precision="fp32")
        predictor.set_image(image)
        embeddings.append(predictor.get_image_embedding())
    cpu, gpu = embeddings
    assert np.abs(gpu - cpu).max() <= 1e-3 * np.abs(cpu).max()


def test_segment_everything_on_the_gpu_finds_what_the_cpu_finds(device, tiny_checkpoint):
    image = oracle_image((160, 200), seed=5)
    # No filters: random weights predict low IoU and stability, and their masks overlap.
    params = dict(points_per_side=8, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    found = []
    for where in ("cpu", device):
        predictor = Predictor(load_model(tiny_checkpoint, device=where), precision="fp32")
        records = generate_masks(predictor, image, box_nms_thresh=1.0, **params)
        found.append(np.stack([r.mask.ravel() for r in records]).astype(np.float32))
    cpu, gpu = found
    assert len(cpu) == len(gpu) == 3 * 8 * 8
    overlap = cpu @ gpu.T
    iou = overlap / (cpu.sum(1)[:, None] + gpu.sum(1)[None, :] - overlap)
    assert np.mean(iou.max(axis=1) >= 0.95) >= 0.95


@pytest.mark.slow
def test_compiled_encoder_gives_the_eager_embedding(tiny_checkpoint):
    if "cuda" not in ACCELERATORS:
        pytest.skip("torch.compile of the encoder is offered for CUDA")
    image = oracle_image(IMAGE_SHAPES[1], seed=2)
    model = load_model(tiny_checkpoint, device="cuda")
    eager = Predictor(model, precision="fp32")
    eager.set_image(image)
    compiled = Predictor(model, precision="fp32", compile_encoder=True)
    compiled.set_image(image)
    expected = eager.get_image_embedding()
    assert np.abs(compiled.get_image_embedding() - expected).max() <= 1e-3 * np.abs(expected).max()
    point = np.array([[100.0, 80.0]])
    agreement = compiled.predict(point, np.array([1]))[0] == eager.predict(point, np.array([1]))[0]
    assert agreement.mean() >= 0.999
