"""Reference SAM models (Meta's ``segment_anything``) with random weights, and their checkpoints.

Every tensor is random, including the position embeddings and relative-position tables that
the reference initialises to zero, so a wrongly indexed table cannot go unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch


@dataclass(frozen=True)
class TinySpec:
    """Shape of a small ViT SAM for fast tests (real SAM geometry unless told otherwise)."""

    embed_dim: int = 48
    depth: int = 3
    num_heads: int = 3
    global_attn_indexes: tuple[int, ...] = (1,)
    img_size: int = 1024
    patch_size: int = 16
    window_size: int = 14
    prompt_embed_dim: int = 256
    decoder_mlp_dim: int = 512
    mask_in_chans: int = 16


VIT_B_SPEC = TinySpec(
    embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11), decoder_mlp_dim=2048
)


def build_reference_vit(spec: TinySpec, seed: int = 0) -> torch.nn.Module:
    """A reference ``segment_anything`` Sam with ``spec``'s shapes and random weights."""
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    torch.manual_seed(seed)
    grid = spec.img_size // spec.patch_size
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=spec.depth,
            embed_dim=spec.embed_dim,
            img_size=spec.img_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=spec.num_heads,
            patch_size=spec.patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=spec.global_attn_indexes,
            window_size=spec.window_size,
            out_chans=spec.prompt_embed_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=spec.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(spec.img_size, spec.img_size),
            mask_in_chans=spec.mask_in_chans,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2,
                embedding_dim=spec.prompt_embed_dim,
                mlp_dim=spec.decoder_mlp_dim,
                num_heads=8,
            ),
            transformer_dim=spec.prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
    )
    randomize_(sam, seed)
    return sam.eval()


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int) -> None:
    """Make every floating tensor of the state dict random (constant ones get noise)."""
    gen = torch.Generator().manual_seed(seed + 1)
    for name, tensor in model.state_dict().items():
        if not tensor.is_floating_point():
            continue
        noise = torch.randn(tensor.shape, generator=gen)
        if "rel_pos" in name or "pos_embed" in name:
            tensor.copy_(0.5 * noise)
        elif tensor.numel() > 1 and bool((tensor == tensor.flatten()[0]).all()):
            tensor.add_(0.1 * noise)  # biases and norm scales, initialised constant
        elif tensor.numel() == 1:
            tensor.add_(0.1 * noise)


def save_checkpoint(model: torch.nn.Module, path: Path) -> Path:
    """Write the model's state dict the way the official checkpoints are written."""
    torch.save(model.state_dict(), path)
    return path
