"""micro-sam's instance decoder: one SAM image embedding -> foreground and distance maps.

It is the decoder of torch-em's UNETR as micro-sam builds it (``use_skip_connection=False``):
without skip connections it needs nothing but the image embedding, so it runs on the
embedding that clicks already use (``micro_sam.instance_segmentation.DecoderAdapter``). Its
three sigmoid outputs are the foreground probability, the distance to the object's centre and
the distance to its boundary (both normalised, small inside an object's core).

The architecture is read off the decoder's state dict (:meth:`InstanceDecoderConfig.
from_state_dict`); parameter names are torch-em's, so micro-sam's decoder files load as they
are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .unetr_blocks import ConvBlock, UpBlock, Upsampler
from .workspace import Workspace, reuses_buffers

# torch-em's UNETR decoder has three levels between the embedding and the finest features.
DEPTH = 3
OUTPUTS = ("foreground", "center_distances", "boundary_distances")


@dataclass(frozen=True)
class InstanceDecoderConfig:
    """Shape of an instance decoder.

    embed_dim: channels of the image embedding (256 for SAM). features: channels of the four
    decoder levels, coarsest first (torch-em: 512, 256, 128, 64). out_channels: 3 for
    foreground, centre and boundary distances. transposed: upsample with 2x2 transposed
    convolutions instead of bilinear upsampling and a 1x1 conv.
    """

    embed_dim: int = 256
    features: tuple[int, ...] = (512, 256, 128, 64)
    out_channels: int = 3
    transposed: bool = False

    @classmethod
    def from_state_dict(
        cls, state: Mapping[str, torch.Tensor], source: str = "decoder state"
    ) -> InstanceDecoderConfig:
        """The architecture a decoder state dict describes (ValueError naming what is missing).

        The upsampling kind is micro-sam's rule (``get_unetr``): transposed convolutions when
        a ``decoder.samplers`` key contains ``.block.``.
        """
        needed = ["base.block.1.weight", "out_conv.weight"]
        needed += [f"decoder.blocks.{i}.block.1.weight" for i in range(DEPTH)]
        missing = [key for key in needed if key not in state]
        if missing:
            raise ValueError(
                f"{source} is not an instance decoder (torch-em's UNETR decoder): it has no "
                f"{', '.join(missing)} (first keys: {list(state)[:3]})."
            )
        for key in needed:
            if state[key].ndim != 4:
                raise ValueError(
                    f"{source}: {key} should be a 4-d conv weight, not of shape "
                    f"{tuple(state[key].shape)}."
                )
        base = state["base.block.1.weight"]  # (features[0], embed_dim, 3, 3)
        levels = [int(state[f"decoder.blocks.{i}.block.1.weight"].shape[0]) for i in range(DEPTH)]
        transposed = any(".block." in key for key in state if key.startswith("decoder.samplers"))
        return cls(
            embed_dim=int(base.shape[1]),
            features=(int(base.shape[0]), *levels),
            out_channels=int(state["out_conv.weight"].shape[0]),
            transposed=transposed,
        )


class InstanceDecoder(nn.Module):
    """torch-em's UNETR decoder without its encoder, on a precomputed image embedding.

    Without skip connections, the "skip" features come from the embedding itself: a chain of
    four upsampling blocks (``deconv1`` ... ``deconv4``) that doubles the resolution each
    time. The main path (``base``, then three ``decoder`` levels) joins them level by level,
    ``deconv_out`` reaches the finest level and ``decoder_head`` joins the last of them.
    """

    def __init__(self, config: InstanceDecoderConfig = InstanceDecoderConfig()) -> None:
        super().__init__()
        if len(config.features) != DEPTH + 1:
            raise ValueError(f"features must have {DEPTH + 1} levels, got {config.features}.")
        self.config = config
        f, t = config.features, config.transposed
        self.deconv1 = UpBlock(config.embed_dim, f[0], t)
        self.deconv2 = UpBlock(f[0], f[1], t)
        self.deconv3 = UpBlock(f[1], f[2], t)
        self.deconv4 = UpBlock(f[2], f[3], t)
        self.base = ConvBlock(config.embed_dim, f[0])
        self.decoder = nn.Module()  # a namespace, for torch-em's key names: decoder.blocks.*
        self.decoder.samplers = nn.ModuleList(Upsampler(f[i], f[i + 1], t) for i in range(DEPTH))
        self.decoder.blocks = nn.ModuleList(ConvBlock(f[i], f[i + 1]) for i in range(DEPTH))
        self.deconv_out = Upsampler(f[-1], f[-1], t)
        self.decoder_head = ConvBlock(2 * f[-1], f[-1])
        self.out_conv = nn.Conv2d(f[-1], config.out_channels, kernel_size=1)

    @property
    def device(self) -> torch.device:
        return self.out_conv.weight.device

    def forward(self, embedding: torch.Tensor, workspace: Workspace | None = None) -> torch.Tensor:
        """embedding: (B, embed_dim, h, w) -> (B, out_channels, 16h, 16w) sigmoid maps.

        workspace: buffers for a CPU pass to reuse (:mod:`.workspace`), kept by a caller that
        decodes many embeddings of one size; by default each such pass has its own.
        """
        if embedding.ndim != 4 or embedding.shape[1] != self.config.embed_dim:
            raise ValueError(
                f"The instance decoder takes (B, {self.config.embed_dim}, h, w) embeddings, "
                f"got {tuple(embedding.shape)}."
            )
        if embedding.device.type in ("cpu", "cuda"):
            # oneDNN and cuDNN convolve channels-last images faster, by about a third here.
            embedding = embedding.contiguous(memory_format=torch.channels_last)
        if (
            reuses_buffers(embedding)
            and not self.training
            and self.out_conv.weight.dtype == embedding.dtype
        ):
            return self._run(embedding, workspace if workspace is not None else Workspace())
        z9 = self.deconv1(embedding)  # (B, f0, 2h, 2w)
        z6 = self.deconv2(z9)  # (B, f1, 4h, 4w)
        z3 = self.deconv3(z6)  # (B, f2, 8h, 8w)
        z0 = self.deconv4(z3)  # (B, f3, 16h, 16w)
        x = self.base(embedding)  # (B, f0, h, w)
        for sampler, block, skip in zip(self.decoder.samplers, self.decoder.blocks, (z9, z6, z3)):
            x = sampler(x)
            x = block(torch.cat([x, _middle_channels(skip, x.shape[1])], dim=1))
        del z9, z6, z3
        x = self.deconv_out(x)  # (B, f3, 16h, 16w)
        x = self.decoder_head(torch.cat([x, z0], dim=1))
        return torch.sigmoid(self.out_conv(x))

    def _run(self, embedding: torch.Tensor, ws: Workspace) -> torch.Tensor:
        """:meth:`forward` with its feature maps in reused buffers (``modeling.workspace``).

        The same arithmetic up to float rounding: concatenations become one convolution per
        part, norms apply in place. At 1024 x 1024 this makes three full-resolution maps a
        pass instead of about a dozen.
        """
        z9 = self.deconv1.run(embedding, ws)
        z6 = self.deconv2.run(z9, ws)
        z3 = self.deconv3.run(z6, ws)
        z0 = self.deconv4.run(z3, ws)
        x = self.base.run([embedding], ws)
        for sampler, block, skip in zip(self.decoder.samplers, self.decoder.blocks, (z9, z6, z3)):
            up = sampler.run(x, ws)
            ws.give(x)
            x = block.run([up, _middle_channels(skip, up.shape[1])], ws)  # gives ``up`` back
            ws.give(skip)
        up = self.deconv_out.run(x, ws)
        ws.give(x)
        x = self.decoder_head.run([up, z0], ws)  # gives both back
        maps = torch.sigmoid_(self.out_conv(x))
        ws.give(x)  # every buffer is free again: a kept workspace serves the next pass
        return maps


def _middle_channels(x: torch.Tensor, n: int) -> torch.Tensor:
    """The ``n`` middle channels of ``x`` (B, C, H, W).

    torch-em's decoder centre-crops each skip input to the shape of the upsampled features,
    channels included, so a level joins only the middle half of a wider skip.
    """
    start = (x.shape[1] - n) // 2
    return x[:, start : start + n]


def maps_to_image(
    maps: torch.Tensor,
    model_size: int,
    input_size: tuple[int, int],
    original_size: tuple[int, int],
) -> torch.Tensor:
    """Decoder maps (B, C, s, s) -> (B, C, H, W) at the image's size, as torch-em does.

    Resized (bilinear) to the model's square input (``model_size``), cropped to the part that
    shows the image (``input_size``, before SAM's padding), then resized to ``original_size``.
    A resize to the same size is skipped: it would return its input.
    """
    if maps.shape[-2:] != (model_size, model_size):
        maps = F.interpolate(maps, (model_size, model_size), mode="bilinear", align_corners=False)
    maps = maps[..., : input_size[0], : input_size[1]]
    if tuple(maps.shape[-2:]) != tuple(original_size):
        maps = F.interpolate(maps, tuple(original_size), mode="bilinear", align_corners=False)
    return maps
