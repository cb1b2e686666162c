"""SAM's mask decoder behind one interface, in two implementations the caller chooses between.

``fast`` (:class:`FastDecoder`) shares and folds the image side's work between prompts and
serves every click and segment-everything; ``reference`` (:class:`ReferenceDecoder`) runs the
model's literal ``MaskDecoder`` as Meta's SAM does. They compute the same masks, and the oracle
tests run both against Meta's package. :class:`LogitUpsampler` turns either's low-res logits
into masks at the image's pixels. ``NAPARI_SEGANY_DECODER=reference`` makes the reference the
default, for debugging.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .base import Decoded, Decoder

if TYPE_CHECKING:
    import torch

    from ..modeling import Sam

DECODERS = ("fast", "reference")
DECODER_ENV = "NAPARI_SEGANY_DECODER"

__all__ = ["DECODERS", "DECODER_ENV", "Decoded", "Decoder", "default_decoder", "make_decoder"]


def default_decoder() -> str:
    """``$NAPARI_SEGANY_DECODER`` when set, else ``fast``."""
    return check_decoder(os.environ.get(DECODER_ENV, "").strip().lower() or "fast")


def check_decoder(name: str) -> str:
    """``name`` if it names a decoder; ValueError listing them otherwise."""
    if name not in DECODERS:
        raise ValueError(f"Unknown decoder {name!r}: use one of {', '.join(DECODERS)}.")
    return name


def make_decoder(kind: str, model: Sam, features: torch.Tensor) -> Decoder:
    """The ``kind`` decoder (``fast`` or ``reference``) bound to ``features`` (1, C, h, w)."""
    if check_decoder(kind) == "fast":
        from .fast import FastDecoder

        return FastDecoder(model, features)
    from .reference import ReferenceDecoder

    return ReferenceDecoder(model, features)
