"""Tiny micro-sam-style models for tests: a SAM checkpoint with an instance decoder beside it
(``<stem>_decoder.pt``, micro-sam's published layout) or inside it (a torch-em training
checkpoint), with random weights whose maps hold objects on a given image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from napari_segany.modeling.instance_decoder import InstanceDecoder, InstanceDecoderConfig

NARROW = InstanceDecoderConfig(features=(32, 16, 8, 4))


def decoder_state(config: InstanceDecoderConfig = NARROW, seed: int = 0) -> dict:
    """A random decoder's state dict (plain torch init)."""
    torch.manual_seed(seed)
    return InstanceDecoder(config).state_dict()


@torch.no_grad()
def structured_decoder_state(
    checkpoint: Path, image: np.ndarray, config: InstanceDecoderConfig = NARROW, seed: int = 0
) -> dict:
    """A random decoder whose maps on ``image``'s fp32 embedding (by ``checkpoint``'s SAM) are
    half foreground and half seeds, so that AIS finds objects there: random batch-norm
    statistics and biases, then output biases centred on that embedding's logits."""
    from napari_segany import Predictor, load_model

    predictor = Predictor(load_model(checkpoint, device="cpu"), precision="fp32")
    predictor.set_image(image)
    embedding = torch.as_tensor(predictor.get_image_embedding())
    torch.manual_seed(seed)
    decoder = InstanceDecoder(config).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    for key, tensor in decoder.state_dict().items():
        if not tensor.is_floating_point():
            continue
        if key.endswith("running_var"):
            tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
        elif key.endswith(("running_mean", "bias")):
            tensor.copy_(0.1 * torch.randn(tensor.shape, generator=gen))
    logits = torch.logit(decoder(embedding)[0].clamp(1e-6, 1 - 1e-6)).flatten(1)
    decoder.out_conv.bias -= logits.median(dim=1).values
    return decoder.state_dict()


def write_with_decoder(folder: Path, checkpoint: Path, decoder: dict, name: str = "vit_b") -> Path:
    """``folder/<name>.pt`` (a copy of ``checkpoint``) and ``<name>_decoder.pt`` beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    sam = folder / f"{name}.pt"
    sam.write_bytes(Path(checkpoint).read_bytes())
    torch.save(decoder, folder / f"{name}_decoder.pt")
    return sam


def write_training_checkpoint(path: Path, checkpoint: Path, decoder: dict) -> Path:
    """One torch-em training checkpoint: ``model_state`` with ``sam.`` keys, ``decoder_state``."""
    sam = torch.load(checkpoint, map_location="cpu", weights_only=True)
    torch.save(
        {"model_state": {f"sam.{k}": v for k, v in sam.items()}, "decoder_state": decoder}, path
    )
    return path
