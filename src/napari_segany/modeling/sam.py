"""The Sam module: one image encoder, the prompt encoder and the mask decoder."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


def cells_reaching(low: int, factor: float, size: int) -> int:
    """How many of ``low`` low-res rows (or columns) reach the first ``size`` pixels of their
    bilinear upsampling by ``factor``: upsampling only those gives these pixels exactly as
    upsampling all of them would."""
    return min(low, math.ceil(size / factor) + 1)


class Sam(nn.Module):
    """Segment Anything. The image encoder is passed in, so ViT and TinyViT share this class."""

    mask_threshold: float = 0.0

    def __init__(
        self,
        image_encoder: nn.Module,
        prompt_encoder: PromptEncoder,
        mask_decoder: MaskDecoder,
        pixel_mean: tuple[float, float, float] = PIXEL_MEAN,
        pixel_std: tuple[float, float, float] = PIXEL_STD,
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @property
    def image_size(self) -> int:
        """Side of the square model input (1024 for the official checkpoints)."""
        return int(self.image_encoder.img_size)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise and zero-pad bottom/right: (B, 3, h, w) 0..255 -> (B, 3, S, S)."""
        x = (x - self.pixel_mean) / self.pixel_std
        h, w = x.shape[-2:]
        return F.pad(x, (0, self.image_size - w, 0, self.image_size - h))

    def postprocess_masks(
        self,
        masks: torch.Tensor,
        input_size: tuple[int, int],
        original_size: tuple[int, int],
    ) -> torch.Tensor:
        """Low-res logits (B, M, 4h, 4w) -> logits at the original image size (B, M, H, W).

        Upsample to the padded model input, crop the padding away, then resize to the image.
        Only the low-res rows and columns that reach the unpadded area are upsampled: with the
        same scale factor, bilinear interpolation gives those pixels exactly as the full
        upsampling would, without computing the padding.
        """
        batch, n_masks, low_h, low_w = masks.shape
        factor = self.image_size / low_h
        rows = cells_reaching(low_h, factor, input_size[0])
        cols = cells_reaching(low_w, factor, input_size[1])
        # One channel per image: torch's multi-channel bilinear path copies to channels-last
        # and back, which costs more than the interpolation itself.
        masks = masks[..., :rows, :cols].reshape(batch * n_masks, 1, rows, cols)
        masks = F.interpolate(
            masks, scale_factor=factor, mode="bilinear", align_corners=False,
            recompute_scale_factor=False,
        )  # fmt: skip
        masks = masks[..., : input_size[0], : input_size[1]]
        if tuple(input_size) != tuple(original_size):
            masks = F.interpolate(masks, original_size, mode="bilinear", align_corners=False)
        return masks.reshape(batch, n_masks, *masks.shape[-2:])
