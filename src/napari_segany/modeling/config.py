"""Hyper-parameters of a SAM model, and the function that builds one from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from torch import nn

from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .sam import Sam
from .transformer import TwoWayTransformer


@dataclass(frozen=True)
class TinyViTConfig:
    """MobileSAM's TinyViT encoder (the 5M-parameter variant by default)."""

    embed_dims: tuple[int, ...] = (64, 128, 160, 320)
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (2, 4, 5, 10)
    window_sizes: tuple[int, ...] = (7, 7, 14, 7)
    mlp_ratio: float = 4.0
    mbconv_expand_ratio: float = 4.0
    # Unused by SAM, but MobileSAM checkpoints carry TinyViT's ImageNet head (0: no head).
    num_classes: int = 1000


@dataclass(frozen=True)
class SamConfig:
    """Everything needed to rebuild a SAM model; read off a checkpoint by ``infer_config``."""

    encoder: Literal["vit", "tiny_vit"] = "vit"
    # ViT image encoder
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    mlp_ratio: float = 4.0
    window_size: int = 14
    use_abs_pos: bool = True
    use_rel_pos: bool = True
    tiny_vit: TinyViTConfig = field(default_factory=TinyViTConfig)
    # Shared geometry
    img_size: int = 1024
    patch_size: int = 16
    # Prompt encoder and mask decoder
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256

    @property
    def embedding_size(self) -> int:
        """Side of the image embedding grid (64 for the official checkpoints)."""
        return self.img_size // self.patch_size


VIT_B = SamConfig(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11))
VIT_L = SamConfig(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23))
VIT_H = SamConfig(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31))
VIT_T = SamConfig(encoder="tiny_vit")


def build_image_encoder(config: SamConfig) -> nn.Module:
    """The image encoder named by ``config.encoder``."""
    if config.encoder == "tiny_vit":
        from .tiny_vit import TinyViT

        tv = config.tiny_vit
        return TinyViT(
            img_size=config.img_size,
            embed_dims=tv.embed_dims,
            depths=tv.depths,
            num_heads=tv.num_heads,
            window_sizes=tv.window_sizes,
            mlp_ratio=tv.mlp_ratio,
            mbconv_expand_ratio=tv.mbconv_expand_ratio,
            out_chans=config.prompt_embed_dim,
            num_classes=tv.num_classes,
        )
    return ImageEncoderViT(
        img_size=config.img_size,
        patch_size=config.patch_size,
        embed_dim=config.embed_dim,
        depth=config.depth,
        num_heads=config.num_heads,
        mlp_ratio=config.mlp_ratio,
        out_chans=config.prompt_embed_dim,
        use_abs_pos=config.use_abs_pos,
        use_rel_pos=config.use_rel_pos,
        window_size=config.window_size,
        global_attn_indexes=config.global_attn_indexes,
    )


def build_sam(config: SamConfig) -> Sam:
    """A SAM model with ``config``'s shapes, in eval mode, weights uninitialised for loading."""
    grid = config.embedding_size
    sam = Sam(
        image_encoder=build_image_encoder(config),
        prompt_encoder=PromptEncoder(
            embed_dim=config.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(config.img_size, config.img_size),
            mask_in_chans=config.mask_in_chans,
        ),
        mask_decoder=MaskDecoder(
            transformer_dim=config.prompt_embed_dim,
            transformer=TwoWayTransformer(
                depth=config.decoder_depth,
                embedding_dim=config.prompt_embed_dim,
                num_heads=config.decoder_heads,
                mlp_dim=config.decoder_mlp_dim,
                attention_downsample_rate=config.attention_downsample_rate,
            ),
            num_multimask_outputs=config.num_multimask_outputs,
            iou_head_depth=config.iou_head_depth,
            iou_head_hidden_dim=config.iou_head_hidden_dim,
        ),
    )
    return sam.eval()
