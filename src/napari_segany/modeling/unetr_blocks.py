"""The building blocks of micro-sam's instance decoder (torch-em's UNETR decoder).

Parameter names follow torch-em's modules (``block.1.weight``, ``conv.weight`` ...), so a
decoder file loads into them as it is. The arithmetic is torch-em's, rearranged where that is
cheaper and exact in real numbers: a 1x1 convolution runs before the bilinear upsampling that
precedes it there (both are linear and the upsampling's weights sum to 1, so they commute),
and the batch norms normalise each image by its own statistics. Each block's ``run`` is its
``forward`` for CPU inference, in buffers of a :class:`~.workspace.Workspace`: norms apply in
place and a concatenation's convolution is a sum of one convolution per part. Results differ
from torch-em's by float rounding only.

micro-sam (1.8.14, ``get_decoder``) leaves the decoder in training mode, so its batch norms
use the statistics of the image being segmented, never their running statistics; its models'
results are that arithmetic, and so are ours (the running statistics load, strictly, and go
unused).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .common import activate
from .workspace import Workspace, convolve_into, upsample_into

INSTANCE_NORM_EPS = 1e-5  # nn.InstanceNorm2d's default, which torch-em uses
_RELU = nn.ReLU()


class ConvBlock(nn.Module):
    """Instance norm, 3x3 conv, ReLU, twice (torch-em's ``ConvBlock2d``).

    ``block`` keeps torch-em's layout (norm, conv, ReLU, norm, conv, ReLU), so its two
    convolutions are ``block.1`` and ``block.4``. The norms have no parameters.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.InstanceNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.InstanceNorm2d(out_channels),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_channels, H, W) -> (B, out_channels, H, W)."""
        first, second = self.block[1], self.block[4]
        x = relu(first(instance_norm(x)))
        return relu(second(instance_norm(x)))

    def run(self, parts: Sequence[torch.Tensor], ws: Workspace) -> torch.Tensor:
        """:meth:`forward` of the channel-wise concatenation of ``parts`` (B, c_i, H, W), in
        buffers of ``ws``, without concatenating them: the norm is per channel, so each part
        is normalised alone, and the first convolution sums one convolution per part.

        A part that is a buffer of ``ws`` is normalised in place and given back; any other
        (the caller's tensor, a view into one) is left as it was. -> (B, out_channels, H, W).
        """
        first, second = self.block[1], self.block[4]
        b, _, h, w = parts[0].shape
        x = ws.zeros((b, first.out_channels, h, w))
        start = 0
        for i, part in enumerate(parts):
            c = part.shape[1]
            normed = normalise_into(part if ws.owns(part) else ws.take(part.shape), part)
            weight = first.weight[:, start : start + c].contiguous()
            last = i == len(parts) - 1
            convolve_into(x, normed, weight, first.bias if i == 0 else None, relu=last)
            ws.give(normed)
            start += c
        y = ws.zeros((b, second.out_channels, h, w))
        convolve_into(y, normalise_into(x, x), second.weight, second.bias, relu=True)
        ws.give(x)
        return y


class Upsampler(nn.Module):
    """Double the resolution and map ``in_channels`` to ``out_channels``.

    Either a bilinear upsampling with a 1x1 conv (``conv``; torch-em's ``Upsampler2d``) or a
    2x2 transposed convolution of stride 2 (``block``; torch-em's ``SingleDeconv2DBlock``).
    """

    def __init__(self, in_channels: int, out_channels: int, transposed: bool = False) -> None:
        super().__init__()
        self.transposed = transposed
        if transposed:
            self.block = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_channels, H, W) -> (B, out_channels, 2H, 2W)."""
        if self.transposed:
            return self.block(x)
        # torch-em upsamples first; the 1x1 conv commutes with the upsampling and costs a
        # quarter as much at the lower resolution.
        return F.interpolate(self.conv(x), scale_factor=2, mode="bilinear", align_corners=False)

    def run(self, x: torch.Tensor, ws: Workspace) -> torch.Tensor:
        """:meth:`forward` in a buffer of ``ws`` (a fresh tensor for a transposed conv)."""
        if self.transposed:
            return self.block(x)
        b, _, h, w = x.shape
        low = ws.zeros((b, self.conv.out_channels, h, w))
        convolve_into(low, x, self.conv.weight, self.conv.bias)
        out = upsample_into(ws.take((b, low.shape[1], 2 * h, 2 * w)), low)
        ws.give(low)
        return out


class UpBlock(nn.Module):
    """Upsample, 3x3 conv, batch norm, ReLU (torch-em's ``Deconv2DBlock``).

    ``block`` keeps torch-em's layout: ``block.0`` the upsampler, ``block.1.block`` the conv,
    ``block.2`` the batch norm, ``block.3`` the ReLU. The norm uses each image's own
    statistics, as micro-sam runs it (see the module's docstring).
    """

    def __init__(self, in_channels: int, out_channels: int, transposed: bool = False) -> None:
        super().__init__()
        conv = nn.Module()  # torch-em wraps the conv in a module of its own: ``block.1.block``
        conv.block = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.block = nn.Sequential(
            Upsampler(in_channels, out_channels, transposed),
            conv,
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_channels, H, W) -> (B, out_channels, 2H, 2W)."""
        upsample, conv, norm = self.block[0], self.block[1].block, self.block[2]
        x = conv(upsample(x))
        if self.training:
            return torch.relu(norm(x))
        w, b = norm.weight, norm.bias
        if torch.is_grad_enabled() or x.device.type != "cpu":
            parts = [F.batch_norm(i, None, None, w, b, True, 0.0, norm.eps) for i in x.split(1)]
            return relu(parts[0] if len(parts) == 1 else torch.cat(parts))
        # On a CPU, in the image's channels-last layout: converting each map to torch's
        # contiguous batch-norm kernel and back was a sixth of the decoder's time.
        return relu(_normalised(x, w, b, norm.eps))

    def run(self, x: torch.Tensor, ws: Workspace) -> torch.Tensor:
        """:meth:`forward` (in eval mode) in a buffer of ``ws``; ``x`` is left as it was."""
        upsample, conv, norm = self.block[0], self.block[1].block, self.block[2]
        u = upsample.run(x, ws)
        b, c, h, w = u.shape
        y = convolve_into(ws.zeros((b, conv.out_channels, h, w)), u, conv.weight, conv.bias)
        ws.give(u)
        return normalise_into(y, y, norm.weight, norm.bias, norm.eps).relu_()


def instance_norm(x: torch.Tensor, eps: float = INSTANCE_NORM_EPS) -> torch.Tensor:
    """Normalise each channel of each image to mean 0 and variance 1 (biased), as
    ``nn.InstanceNorm2d`` without affine parameters does. x: (B, C, H, W)."""
    if torch.is_grad_enabled() or x.device.type != "cpu":
        return F.instance_norm(x, eps=eps)
    # On a CPU, instance_norm and var_mean of a channels-last image take a slow per-element
    # path (3-5 s for 128 x 1024 x 1024 on 2 cores); sums over the rows of its (pixels,
    # channels) view and one batch-norm pass with those statistics take a sixth of that.
    return _normalised(x, None, None, eps)


def _normalised(
    x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float
) -> torch.Tensor:
    """Each image of ``x`` (B, C, H, W) normalised per channel by its own statistics, then
    scaled and shifted by ``weight`` and ``bias`` (C,) where given; in ``x``'s memory format.

    Not :func:`normalise_into` on a fresh tensor: this serves the bf16 autocast pass, and
    batch_norm's kernel takes a bf16 image with float32 statistics at full speed, where
    addcmul's mixed dtypes made the AIS decoder more than twice as slow (2.9 s -> 6.6 s).
    """
    out = []
    for image in x.split(1):
        var, mean = _channel_var_mean(image)
        out.append(F.batch_norm(image, mean, var, weight, bias, False, 0.0, eps))
    return out[0] if len(out) == 1 else torch.cat(out)


def normalise_into(
    out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = INSTANCE_NORM_EPS,
) -> torch.Tensor:
    """:func:`_normalised` of ``x`` (B, C, H, W) written into ``out`` (same shape; ``x``
    itself to normalise in place). Returns ``out``."""
    c = x.shape[1]
    for i in range(x.shape[0]):
        image = x[i : i + 1]
        var, mean = _channel_var_mean(image)
        scale = torch.rsqrt(var + eps)
        if weight is not None:
            scale = scale * weight
        shift = -mean * scale if bias is None else bias - mean * scale
        torch.addcmul(shift.view(1, c, 1, 1), image, scale.view(1, c, 1, 1), out=out[i : i + 1])
    return out


def _channel_var_mean(
    image: torch.Tensor, chunk: int = 1 << 22
) -> tuple[torch.Tensor, torch.Tensor]:
    """Biased variance and mean (C,) of each channel of one image (1, C, H, W), in float32.

    One pass over the pixels, a few million values at a time, of their deviations from a
    rough mean (that of every 97th pixel): sums of those deviations and of their squares
    keep the variance accurate however large the mean is next to the spread (E[x^2] -
    E[x]^2 of the values themselves would not).
    """
    c = image.shape[1]
    pixels = image[0].permute(1, 2, 0).reshape(-1, c)  # (H*W, C); a view when channels-last
    n = pixels.shape[0]
    rows = max(1, chunk // c)
    shift = pixels[::97].float().mean(dim=0)
    total = torch.zeros(c, dtype=torch.float32, device=image.device)
    squares = torch.zeros(c, dtype=torch.float32, device=image.device)
    buffer = torch.empty((min(rows, n), c), dtype=torch.float32, device=image.device)
    for start in range(0, n, rows):
        part = pixels[start : start + rows]
        deviation = torch.sub(part, shift, out=buffer[: part.shape[0]])
        total += deviation.sum(dim=0)
        squares += deviation.square_().sum(dim=0)
    offset = total / n
    return (squares / n - offset.square()).clamp_min_(0.0), shift + offset


def relu(x: torch.Tensor) -> torch.Tensor:
    """ReLU of a fresh intermediate, in place unless autograd records it."""
    return activate(_RELU, x)
