"""Read a MobileSAM (TinyViT) encoder's hyper-parameters off the tensor shapes of a checkpoint."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .checkpoint import CheckpointError, _count, _shape

if TYPE_CHECKING:
    from .modeling import TinyViTConfig

_PREFIX = "image_encoder."
# MobileSAM's encoder: a stride-4 stem, then merges of stride 2, 2 and 1, so 4 stages give the
# stride-16 embedding the prompt encoder and mask decoder expect.
_STAGES = 4


def infer_tiny_vit(state: Mapping[str, Any], source: str) -> TinyViTConfig:
    """The :class:`TinyViTConfig` whose shapes match ``state``'s ``image_encoder.*`` tensors.

    The first stage is convolutional, so its head count and window size are not stored; they
    are set as in MobileSAM: the head width and the window of the next stage.
    """
    from .modeling import TinyViTConfig

    n_stages = _count(state, r"image_encoder\.layers\.(\d+)\.")
    if n_stages != _STAGES:
        raise CheckpointError(
            f"{source} has a TinyViT image encoder with {n_stages} stages; MobileSAM's has "
            f"{_STAGES}, so this checkpoint is not one this plugin can run."
        )
    dims = [_shape(state, _PREFIX + "patch_embed.seq.2.c.weight", source)[0]]
    for i in range(1, n_stages):
        dims.append(_shape(state, f"{_PREFIX}layers.{i - 1}.downsample.conv1.c.weight", source)[0])
    depths = [
        _count(state, rf"image_encoder\.layers\.{i}\.blocks\.(\d+)\.") for i in range(n_stages)
    ]

    heads, windows, mlp_ratios = [], [], set()
    for i in range(1, n_stages):
        if depths[i] == 0:
            raise CheckpointError(f"{source}: TinyViT stage {i} has no attention blocks.")
        block = f"{_PREFIX}layers.{i}.blocks.0."
        n_heads, n_offsets = _shape(state, block + "attn.attention_biases", source)
        window = math.isqrt(n_offsets)
        if window * window != n_offsets or n_heads < 1 or dims[i] % n_heads:
            raise CheckpointError(
                f"{source}: TinyViT stage {i} has an attention bias table of shape "
                f"({n_heads}, {n_offsets}), which fits no square window of a {dims[i]}-wide stage."
            )
        heads.append(n_heads)
        windows.append(window)
        mlp_ratios.add(_shape(state, block + "mlp.fc1.weight", source)[0] / dims[i])
    if len(mlp_ratios) > 1:
        raise CheckpointError(f"{source} mixes MLP ratios {sorted(mlp_ratios)}; unsupported.")

    head_dim = dims[1] // heads[0]
    stage0_heads = dims[0] // head_dim if dims[0] % head_dim == 0 else 1
    expand = TinyViTConfig.mbconv_expand_ratio
    if depths[0] > 0:
        expand = _shape(state, _PREFIX + "layers.0.blocks.0.conv1.c.weight", source)[0] / dims[0]
    head_key = _PREFIX + "head.weight"
    return TinyViTConfig(
        embed_dims=tuple(dims),
        depths=tuple(depths),
        num_heads=(stage0_heads, *heads),
        window_sizes=(windows[0], *windows),
        mlp_ratio=mlp_ratios.pop(),
        mbconv_expand_ratio=expand,
        num_classes=_shape(state, head_key, source)[0] if head_key in state else 0,
    )
