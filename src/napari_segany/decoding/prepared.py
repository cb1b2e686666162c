"""What the fast decoder derives from a model's weights alone, made once per model.

Folded attention weights, stacked hypernetworks, the upscaling convolutions as matrices and
the positional encoding of the embedding grid depend on the weights, not on the image. A
click pays for them once; a propagation through a stack pays for them on every plane unless
they are kept. They are kept beside the model's mask decoder for as long as the decoder lives,
and made again when its weights change (loaded in place, moved, or cast): the key is every
parameter's storage, version counter (where it has one), device and dtype.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch

from ..modeling import Sam
from .folded_attention import FoldedAttention
from .upscaling import StackedMLPs, UpscalingMatrices


@dataclass
class PreparedDecoder:
    """A model's decoder weights rearranged for :class:`~.fast.FastDecoder`.

    image_pe: (1, N, C) positional encoding of the embedding grid, token-major;
    no_mask: (1, C, 1, 1) the dense embedding of "no mask prompt".
    """

    to_image: list[FoldedAttention]
    to_tokens: list[FoldedAttention]
    final: FoldedAttention
    image_pe: torch.Tensor
    no_mask: torch.Tensor
    upscaling: UpscalingMatrices
    _stacked: dict[tuple[int, int], StackedMLPs] = field(default_factory=dict)
    _mlps: torch.nn.ModuleList | None = None

    def hypernetworks(self, outputs: slice) -> StackedMLPs:
        """The hypernetworks of the chosen mask outputs, as one batched MLP."""
        key = (outputs.start, outputs.stop)
        if key not in self._stacked:
            self._stacked[key] = StackedMLPs(self._mlps[outputs])
        return self._stacked[key]


_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def prepared_decoder(model: Sam) -> PreparedDecoder:
    """The model's :class:`PreparedDecoder`, made now if its weights changed since the last."""
    decoder = model.mask_decoder
    key = _weights_key(model)
    entry = _PREPARED.get(decoder)
    if entry is not None and entry[0] == key:
        return entry[1]
    prepared = _prepare(model)
    _PREPARED[decoder] = (key, prepared)
    return prepared


def _weights_key(model: Sam) -> tuple:
    tensors = [*model.mask_decoder.parameters(), *model.prompt_encoder.parameters()]
    tensors += list(model.prompt_encoder.buffers())
    # Tensors made under inference mode keep no version counter: their storage has to do.
    return tuple(
        (t.data_ptr(), 0 if t.is_inference() else t._version, t.dtype, t.device) for t in tensors
    )


@torch.no_grad()
def _prepare(model: Sam) -> PreparedDecoder:
    decoder = model.mask_decoder
    layers = decoder.transformer.layers
    dtype = decoder.iou_token.weight.dtype
    pe = model.prompt_encoder.get_dense_pe().to(dtype)  # (1, C, h, w)
    return PreparedDecoder(
        to_image=[FoldedAttention(layer.cross_attn_token_to_image) for layer in layers],
        to_tokens=[FoldedAttention(layer.cross_attn_image_to_token) for layer in layers],
        final=FoldedAttention(decoder.transformer.final_attn_token_to_image),
        image_pe=pe.flatten(2).transpose(1, 2).contiguous(),
        no_mask=model.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1),
        upscaling=UpscalingMatrices.of(decoder),
        _mlps=decoder.output_hypernetworks_mlps,
    )
