"""Reduced precision: bf16 masks agree with fp32 ones, and users always get fp32 and bool."""

from __future__ import annotations

import pytest
import torch

from napari_segany import Predictor
from napari_segany.precision import resolve_precision
from oracle import oracle_image, reduced_precision_agreement


def test_bf16_masks_agree_with_fp32_on_the_cpu(tiny_checkpoint):
    assert reduced_precision_agreement(tiny_checkpoint, "cpu", "bf16") >= 0.95


def test_bf16_encoder_really_runs_in_bf16(tiny_model, monkeypatch):
    """bf16 is not a label only: the encoder's matrix products see bf16 inputs."""
    seen = []
    block = tiny_model.image_encoder.blocks[0].mlp.lin1
    handle = block.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    try:
        Predictor(tiny_model, precision="bf16").set_image(oracle_image((64, 64), seed=0))
    finally:
        handle.remove()
    assert seen == [torch.bfloat16]


def test_fp16_is_refused_on_the_cpu_with_advice(tiny_model):
    with pytest.raises(ValueError, match="fp16 is not supported on the CPU"):
        Predictor(tiny_model, precision="fp16")


def test_auto_is_fp32_on_a_cpu_without_fast_bf16(monkeypatch):
    import napari_segany.precision as precision

    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: False)
    assert resolve_precision("auto", torch.device("cpu")) == torch.float32
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    assert resolve_precision("auto", torch.device("cpu")) == torch.bfloat16


def test_the_environment_can_stand_for_either_kind_of_cpu(monkeypatch):
    import napari_segany.precision as precision

    for value, dtype in (("1", torch.bfloat16), ("0", torch.float32)):
        monkeypatch.setenv(precision.CPU_BF16_ENV, value)
        assert resolve_precision("auto", torch.device("cpu")) == dtype
