"""What every mask decoder offers its callers: decode a batch of prompts, then upscale the
prompts the caller keeps.

Two implementations compute the same function: :class:`~.fast.FastDecoder`, which shares and
folds the image side's work between prompts, and :class:`~.reference.ReferenceDecoder`, which
runs the model's literal ``MaskDecoder`` (as Meta's SAM does) and is there to test the fast one
against and to read. The caller picks one (:func:`~napari_segany.decoding.make_decoder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch


@dataclass
class Decoded:
    """A decoded batch of B prompts: ``iou`` (B, M) predicted IoU of the M chosen outputs; what
    else the decoder needs to upscale any of them later is its own business (``state``)."""

    iou: torch.Tensor
    state: Any


class Decoder(Protocol):
    """The mask decoder bound to one image embedding (1, C, h, w)."""

    embedding_hw: tuple[int, int]
    """The (h, w) of the embedding grid; logits are (4h, 4w)."""

    def decode(self, sparse: torch.Tensor, dense: torch.Tensor | None, multimask: bool) -> Decoded:
        """sparse: (B, T, C) prompt-encoder tokens of B prompts; dense: (B, C, h, w) embeddings
        of mask prompts, or None for prompts without one. multimask: SAM's three
        ambiguity-resolving outputs, or its single-mask output."""
        ...

    def upscale(
        self,
        decoded: Decoded,
        prompts: torch.Tensor | None = None,
        grid: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Low-res logits (P, M, 4 * rows, 4 * cols) of the chosen prompts.

        prompts: (P,) indices into the batch (default all); grid: the first (rows, cols) of
        the embedding grid to upscale (default all of it). Each 4 x 4 block of logits depends
        on its own image token only, so a part of the grid gives exactly that part's logits.
        """
        ...
