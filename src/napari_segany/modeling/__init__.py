"""Pure-PyTorch Segment Anything: image encoders, prompt encoder, two-way transformer, decoder."""

from .config import VIT_B, VIT_H, VIT_L, VIT_T, SamConfig, TinyViTConfig, build_sam
from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .sam import Sam
from .transformer import TwoWayTransformer

__all__ = [
    "VIT_B",
    "VIT_H",
    "VIT_L",
    "VIT_T",
    "ImageEncoderViT",
    "MaskDecoder",
    "PromptEncoder",
    "Sam",
    "SamConfig",
    "TinyViTConfig",
    "TwoWayTransformer",
    "build_sam",
]
