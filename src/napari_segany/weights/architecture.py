"""Read a SAM model's hyper-parameters off the tensor shapes of its state dict.

ViT encoders (SAM's vit_b/l/h and fine-tunes of them) and MobileSAM's TinyViT are told apart by
their keys; the prompt encoder and mask decoder are read the same way for both. Works on meta
tensors, so vit_h-sized dicts can be checked without memory.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import CheckpointError

if TYPE_CHECKING:
    from ..modeling import SamConfig, TinyViTConfig


def _count(state: Mapping[str, Any], pattern: str) -> int:
    regex = re.compile(pattern)
    found = {int(m.group(1)) for k in state if (m := regex.match(k))}
    return max(found) + 1 if found else 0


def _shape(state: Mapping[str, Any], key: str, source: str, rank: int = 0) -> tuple[int, ...]:
    """The shape of tensor ``key``, which must have ``rank`` axes when rank is given."""
    if key not in state:
        raise CheckpointError(f"{source} is not a SAM checkpoint this plugin knows: no {key!r}.")
    shape = tuple(state[key].shape)
    if rank and len(shape) != rank:
        raise CheckpointError(
            f"{source} is not a SAM checkpoint this plugin can read: its tensor {key!r} has "
            f"shape {shape}, where SAM has a {rank}-D tensor."
        )
    return shape


def infer_config(
    state: Mapping[str, Any], source: str = "checkpoint", allow_missing_pos_embed: bool = False
) -> SamConfig:
    """Read a :class:`SamConfig` off the tensor shapes of a SAM state dict.

    Works on meta tensors, so vit_h-sized dicts can be checked without memory. A ViT without
    ``image_encoder.pos_embed`` is refused unless ``allow_missing_pos_embed``.
    """
    from ..modeling import SamConfig

    if "image_encoder.patch_embed.seq.0.c.weight" in state:
        config = SamConfig(encoder="tiny_vit", tiny_vit=infer_tiny_vit(state, source))
    else:
        config = _infer_vit(state, source, allow_missing_pos_embed)
    return _infer_decoder(state, config, source)


def _infer_vit(state: Mapping[str, Any], source: str, allow_missing_pos_embed: bool) -> SamConfig:
    from ..modeling import SamConfig

    pe = "image_encoder."
    embed_dim, _, patch, _ = _shape(state, pe + "patch_embed.proj.weight", source, rank=4)
    depth = _count(state, r"image_encoder\.blocks\.(\d+)\.")
    if depth == 0:
        raise CheckpointError(f"{source} has an image encoder without transformer blocks.")
    pos_key = pe + "pos_embed"
    use_abs_pos = pos_key in state
    if not use_abs_pos and not allow_missing_pos_embed:
        raise CheckpointError(
            f"{source} has no {pos_key!r}: every SAM checkpoint (Meta's, MobileSAM's, "
            "micro-sam's and their fine-tunes) has one, so this file is probably incomplete. "
            "If its encoder really has no absolute position embedding, load it with "
            "load_model(path, allow_missing_pos_embed=True)."
        )
    grid = _shape(state, pos_key, source, rank=4)[1] if use_abs_pos else 1024 // patch
    mlp_dim = _shape(state, pe + "blocks.0.mlp.lin1.weight", source)[0]
    use_rel_pos = pe + "blocks.0.attn.rel_pos_h" in state
    global_blocks: list[int] = []
    window_sizes: set[int] = set()
    head_dim = 64
    for i in range(depth):
        key = f"{pe}blocks.{i}.attn.rel_pos_h"
        if key not in state:
            continue
        span, head_dim = _shape(state, key, source, rank=2)
        size = (span + 1) // 2
        if size == grid:
            global_blocks.append(i)
        else:
            window_sizes.add(size)
    if len(window_sizes) > 1:
        raise CheckpointError(f"{source} mixes window sizes {sorted(window_sizes)}; unsupported.")
    if embed_dim % head_dim:
        raise CheckpointError(f"{source}: width {embed_dim} is not a multiple of {head_dim}.")
    return SamConfig(
        encoder="vit",
        embed_dim=embed_dim,
        depth=depth,
        num_heads=embed_dim // head_dim,
        global_attn_indexes=tuple(global_blocks),
        mlp_ratio=mlp_dim / embed_dim,
        window_size=window_sizes.pop() if window_sizes else 14,
        use_abs_pos=use_abs_pos,
        use_rel_pos=use_rel_pos,
        img_size=grid * patch,
        patch_size=patch,
    )


def _infer_decoder(state: Mapping[str, Any], config: SamConfig, source: str) -> SamConfig:
    md = "mask_decoder."
    prompt_dim = _shape(state, "prompt_encoder.no_mask_embed.weight", source)[1]
    internal = _shape(
        state, md + "transformer.layers.0.cross_attn_token_to_image.q_proj.weight", source
    )[0]
    return replace(
        config,
        prompt_embed_dim=prompt_dim,
        mask_in_chans=_shape(state, "prompt_encoder.mask_downscaling.3.weight", source)[0],
        decoder_depth=_count(state, r"mask_decoder\.transformer\.layers\.(\d+)\."),
        decoder_mlp_dim=_shape(state, md + "transformer.layers.0.mlp.lin1.weight", source)[0],
        attention_downsample_rate=max(1, prompt_dim // internal),
        num_multimask_outputs=_shape(state, md + "mask_tokens.weight", source)[0] - 1,
        iou_head_depth=_count(state, r"mask_decoder\.iou_prediction_head\.layers\.(\d+)\."),
        iou_head_hidden_dim=_shape(state, md + "iou_prediction_head.layers.0.weight", source)[0],
    )


# ---- MobileSAM's TinyViT ---------------------------------------------------------------------

_PREFIX = "image_encoder."
# MobileSAM's encoder: a stride-4 stem, then merges of stride 2, 2 and 1, so 4 stages give the
# stride-16 embedding the prompt encoder and mask decoder expect.
_STAGES = 4


def infer_tiny_vit(state: Mapping[str, Any], source: str) -> TinyViTConfig:
    """The :class:`TinyViTConfig` whose shapes match ``state``'s ``image_encoder.*`` tensors.

    The first stage is convolutional, so its head count and window size are not stored; they
    are set as in MobileSAM: the head width and the window of the next stage.
    """
    from ..modeling import TinyViTConfig

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
