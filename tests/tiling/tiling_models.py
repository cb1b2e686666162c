"""A tiny SAM whose weights are set by hand so that it segments bright regions.

Random weights give masks with no relation to the image, so they cannot show that an object
crossing a tile border comes back whole, or that one cell on a border gives one mask. This
model's mask, for any prompt, is where the image (its red channel, averaged over SAM's 16-pixel
patches) is brighter than mid-grey: every part of the real code path runs (encoder, prompt
encoder, two-way transformer, upscaling, hypernetworks, IoU head), only with weights that make
the answer known. Its predicted IoU is 0.96, 0.95, 0.94 for the three multimask outputs.

How: the patch embedding measures (brightness - grey) as ``a`` in one channel (and ``-a``, 1 and
-1 in three more); transformer blocks add zero (their output projections are zero), so the
embedding carries ``a`` (after layer norms, as a / sqrt(a^2 + 1)); the decoder's image-side
updates are zero too, its upscaling passes the difference of the ``a`` and ``-a`` channels
(``gelu(x) - gelu(-x) = x``), and every hypernetwork outputs the same fixed weights, so the
mask logits are a positive multiple of it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from reference_models import TinySpec, build_reference_vit, save_checkpoint

PIXEL_MEAN_R, PIXEL_STD_R = 123.675, 58.395
GREY = 128.0
LOGIT_SCALE = 8.0
IOU_BIAS = (0.97, 0.96, 0.95, 0.94)


@torch.no_grad()
def bright_region_sam(spec: TinySpec, seed: int = 0) -> torch.nn.Module:
    """A reference ``segment_anything`` Sam (tiny) that segments pixels brighter than grey."""
    sam = build_reference_vit(spec, seed)
    enc = sam.image_encoder
    enc.pos_embed.zero_()
    proj = enc.patch_embed.proj
    proj.weight.zero_()
    proj.bias.zero_()
    patch = spec.patch_size**2
    threshold = (GREY - PIXEL_MEAN_R) / PIXEL_STD_R
    proj.weight[0, 0] = 1.0 / patch  # mean normalised red of the patch ...
    proj.bias[0] = -threshold  # ... minus grey: a
    proj.weight[1, 0] = -1.0 / patch
    proj.bias[1] = threshold  # -a
    proj.bias[2], proj.bias[3] = 1.0, -1.0  # constants that keep a's size through layer norms
    for block in enc.blocks:
        block.attn.proj.weight.zero_()
        block.attn.proj.bias.zero_()
        block.mlp.lin2.weight.zero_()
        block.mlp.lin2.bias.zero_()
    conv1, norm1, conv3, norm3 = enc.neck
    conv1.weight.zero_()
    conv3.weight.zero_()
    for c in range(4):
        conv1.weight[c, c, 0, 0] = 1.0
        conv3.weight[c, c, 1, 1] = 1.0
    for norm in (norm1, norm3):
        norm.weight.fill_(1.0)
        norm.bias.zero_()

    prompts = sam.prompt_encoder
    prompts.no_mask_embed.weight.zero_()
    prompts.mask_downscaling[6].weight.zero_()
    prompts.mask_downscaling[6].bias.zero_()

    decoder = sam.mask_decoder
    for layer in decoder.transformer.layers:
        layer.cross_attn_image_to_token.out_proj.weight.zero_()
        layer.cross_attn_image_to_token.out_proj.bias.zero_()
        layer.norm4.weight.fill_(1.0)
        layer.norm4.bias.zero_()
    up1, norm_up, _, up2, _ = decoder.output_upscaling
    up1.weight.zero_()
    up1.bias.zero_()
    for out, (plus, minus) in enumerate([(0, 1), (1, 0), (2, 3), (3, 2)]):
        up1.weight[plus, out] = 1.0
        up1.weight[minus, out] = -1.0
    norm_up.weight.fill_(1.0)
    norm_up.bias.zero_()
    up2.weight.zero_()
    up2.bias.zero_()
    up2.weight[0, 0], up2.weight[1, 0] = 1.0, -1.0  # x
    up2.weight[1, 1], up2.weight[0, 1] = 1.0, -1.0  # -x
    for mlp in decoder.output_hypernetworks_mlps:
        last = mlp.layers[-1]
        last.weight.zero_()
        last.bias.zero_()
        last.bias[0], last.bias[1] = LOGIT_SCALE, -LOGIT_SCALE  # gelu(x) - gelu(-x) = x
    head = decoder.iou_prediction_head.layers[-1]
    head.weight.zero_()
    head.bias.copy_(torch.tensor(IOU_BIAS))
    return sam.eval()


def bright_region_checkpoint(folder: Path, spec: TinySpec) -> Path:
    """The checkpoint of :func:`bright_region_sam`, loadable by ``load_model``."""
    return save_checkpoint(
        bright_region_sam(spec), Path(folder) / f"sam_bright_{spec.img_size}.pth"
    )


@torch.no_grad()
def structured_sam(spec: TinySpec, seed: int = 0) -> torch.nn.Module:
    """Random weights whose masks follow the image content (compact blobs with varied boxes),
    so NMS, edge filters and merging have real decisions to make: the same three changes as
    ``tests/automatic/test_automatic.py``'s structured model (one upscaling kernel for all
    2 x 2 positions, the image tokens' update from the prompts and the encoder's position
    embeddings scaled by 0.1). Its logits are small: prompt it with ``ALIVE`` settings."""
    sam = build_reference_vit(spec, seed)
    for conv in (sam.mask_decoder.output_upscaling[0], sam.mask_decoder.output_upscaling[3]):
        conv.weight.copy_(conv.weight[:, :, :1, :1].expand_as(conv.weight))
    for layer in sam.mask_decoder.transformer.layers:
        layer.cross_attn_image_to_token.out_proj.weight.mul_(0.1)
        layer.cross_attn_image_to_token.out_proj.bias.mul_(0.1)
    for name, param in sam.image_encoder.named_parameters():
        if "pos" in name:
            param.mul_(0.1)
    return sam.eval()


# Segment-everything settings under which the structured model's masks pass the filters.
ALIVE = dict(pred_iou_thresh=0.0, stability_score_offset=0.01)
