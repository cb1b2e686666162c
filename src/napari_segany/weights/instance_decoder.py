"""The instance decoder beside a SAM model: built from a state dict, strictly, and attached.

A model that has an instance decoder carries it as ``model.instance_decoder`` (a submodule,
so ``model.to(device)`` and ``model.eval()`` take it along). :func:`instance_decoder_of`
finds it; code that only wants SAM never sees it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import CheckpointError

if TYPE_CHECKING:
    import torch

    from ..modeling import Sam
    from ..modeling.instance_decoder import InstanceDecoder

ATTRIBUTE = "instance_decoder"


def build_instance_decoder(
    state: Mapping[str, torch.Tensor], source: str = "decoder state"
) -> InstanceDecoder:
    """The decoder a state dict describes, loaded strictly, in float32 eval mode on the CPU.

    Raises :class:`CheckpointError` naming ``source`` and the tensors that are missing,
    unexpected or of the wrong shape.
    """
    import torch

    from ..modeling.instance_decoder import InstanceDecoder, InstanceDecoderConfig

    non_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if non_tensors:
        raise CheckpointError(
            f"{source} is not a decoder state dict: entries such as {non_tensors[:3]} are not "
            "tensors."
        )
    try:
        config = InstanceDecoderConfig.from_state_dict(state, source)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    if config.out_channels != 3:
        raise CheckpointError(
            f"{source} is a decoder with {config.out_channels} outputs; instance segmentation "
            "needs micro-sam's three (foreground, centre distance, boundary distance)."
        )
    decoder = InstanceDecoder(config)
    expected = decoder.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{source} does not fit the instance decoder its shapes describe ({_describe(config)}"
            f"). Missing: {_preview(missing)}; unexpected: {_preview(unexpected)}; wrong "
            f"shape: {_preview(wrong)}."
        )
    decoder.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    )
    return decoder.eval()


def attach_instance_decoder(model: Sam, decoder: InstanceDecoder) -> Sam:
    """Give ``model`` its instance decoder (moved to the model's device); returns the model.

    :class:`CheckpointError` (a ValueError) when the decoder cannot read this model's image
    embedding.
    """
    channels = int(model.prompt_encoder.embed_dim)
    if decoder.config.embed_dim != channels:
        raise CheckpointError(
            f"This instance decoder reads {decoder.config.embed_dim}-channel image embeddings, "
            f"but the model makes {channels}-channel ones: it belongs to another model."
        )
    setattr(model, ATTRIBUTE, decoder.to(model.device).train(model.training))
    return model


def instance_decoder_of(model: Sam) -> InstanceDecoder | None:
    """The model's instance decoder, or None when it has none."""
    return getattr(model, ATTRIBUTE, None)


def require_instance_decoder(model: Sam, name: str | None = None) -> InstanceDecoder:
    """The model's instance decoder; ValueError saying what to use instead when it has none.

    name: the model's name or path as the user gave it, for the message.
    """
    decoder = instance_decoder_of(model)
    if decoder is None:
        which = "This model" if name is None else f"The model {name!r}"
        raise ValueError(
            f"{which} has no instance decoder, so it cannot segment instances automatically "
            "(AIS or APG). Load one of micro-sam's models (such as vit_b_lm or vit_t_lm), or a "
            "checkpoint with its <name>_decoder.pt beside it; segment-everything works with "
            "any model."
        )
    return decoder


def _describe(config) -> str:
    kind = "transposed-conv" if config.transposed else "bilinear"
    return f"{config.embed_dim}-channel input, features {config.features}, {kind} upsampling"


def _preview(items: list[str], n: int = 5) -> str:
    if not items:
        return "none"
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more
