"""Reference MobileSAM models (the ``mobile_sam`` package) with random weights.

Every floating tensor is random, as in :mod:`reference_models`; TinyViT's attention-bias
tables get large noise so that a wrongly indexed offset cannot go unnoticed, and batch-norm
running variances stay positive.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from reference_models import randomize_


@dataclass(frozen=True)
class MobileSpec:
    """Shape of a MobileSAM model; the defaults are the real ``mobile_sam.pt`` encoder."""

    embed_dims: tuple[int, ...] = (64, 128, 160, 320)
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (2, 4, 5, 10)
    window_sizes: tuple[int, ...] = (7, 7, 14, 7)
    img_size: int = 1024
    prompt_embed_dim: int = 256
    decoder_mlp_dim: int = 2048


def build_reference_mobile_sam(spec: MobileSpec = MobileSpec(), seed: int = 0) -> torch.nn.Module:
    """A reference ``mobile_sam`` Sam with ``spec``'s shapes and random weights, in eval mode."""
    with warnings.catch_warnings():
        # timm warns about its deprecated import paths and registry overrides on import.
        warnings.simplefilter("ignore")
        from mobile_sam.modeling import (
            MaskDecoder,
            PromptEncoder,
            Sam,
            TinyViT,
            TwoWayTransformer,
        )

    torch.manual_seed(seed)
    grid = spec.img_size // 16
    sam = Sam(
        image_encoder=TinyViT(
            img_size=spec.img_size,
            in_chans=3,
            num_classes=1000,
            embed_dims=list(spec.embed_dims),
            depths=list(spec.depths),
            num_heads=list(spec.num_heads),
            window_sizes=list(spec.window_sizes),
            mlp_ratio=4.0,
            drop_rate=0.0,
            drop_path_rate=0.0,
            mbconv_expand_ratio=4.0,
            local_conv_size=3,
            layer_lr_decay=0.8,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=spec.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(spec.img_size, spec.img_size),
            mask_in_chans=16,
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
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    randomize_(sam, seed)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed + 2)
        for name, tensor in sam.state_dict().items():
            if name.endswith("attention_biases"):
                tensor.copy_(torch.randn(tensor.shape, generator=gen))
            elif name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=gen))
    # mobile_sam caches each attention's bias table when switched to eval mode, so switch
    # after the weights are final, as its own loading code does.
    sam.train()
    return sam.eval()
