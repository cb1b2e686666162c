"""MobileSAM's TinyViT image encoder: convolutional first stage, windowed attention after it.

Parameter names follow the MobileSAM checkpoint (``mobile_sam.pt``) exactly, so its
``image_encoder.*`` tensors load strictly. Attention runs through
``F.scaled_dot_product_attention`` with TinyViT's learned per-offset bias as an additive mask.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .common import LayerNorm2d
from .image_encoder import window_partition, window_unpartition


class ConvBN(nn.Sequential):
    """Convolution without bias followed by batch norm (keys ``c.*`` and ``bn.*``)."""

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
    ) -> None:
        conv = nn.Conv2d(
            in_chans,
            out_chans,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        )
        super().__init__(OrderedDict(c=conv, bn=nn.BatchNorm2d(out_chans)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_chans, H, W) -> (B, out_chans, H / stride, W / stride)."""
        conv, bn = self.c, self.bn
        if bn.training:
            return bn(conv(x))
        # In eval mode the batch norm is affine, so fold it into the convolution: one pass over
        # the activations instead of two.
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)  # (out_chans,)
        weight = (conv.weight * scale[:, None, None, None]).contiguous(
            memory_format=torch.channels_last
        )
        bias = bn.bias - bn.running_mean * scale
        return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


class PatchEmbed(nn.Module):
    """Two stride-2 convolutions: (B, 3, S, S) -> (B, embed_dim, S/4, S/4)."""

    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(
            ConvBN(in_chans, embed_dim // 2, 3, stride=2),
            nn.GELU(),
            ConvBN(embed_dim // 2, embed_dim, 3, stride=2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual block: expand 1x1, depthwise 3x3, project 1x1, add, GELU."""

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = ConvBN(dim, hidden)
        self.conv2 = ConvBN(hidden, hidden, 3, groups=hidden)
        self.conv3 = ConvBN(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        y = F.gelu(self.conv1(x))
        y = F.gelu(self.conv2(y))
        return F.gelu(x + self.conv3(y))


class PatchMerging(nn.Module):
    """Change width (and halve resolution when ``stride`` is 2): 1x1, depthwise 3x3, 1x1."""

    def __init__(self, dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBN(dim, out_dim)
        self.conv2 = ConvBN(out_dim, out_dim, 3, stride=stride, groups=out_dim)
        self.conv3 = ConvBN(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, out_dim, H / stride, W / stride)."""
        x = F.gelu(self.conv1(x))
        x = F.gelu(self.conv2(x))
        return self.conv3(x)


class Mlp(nn.Module):
    """Pre-norm feed-forward: LayerNorm, linear, GELU, linear."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., dim) -> (..., dim)."""
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


def offset_index(window_size: int, device: torch.device | None = None) -> torch.Tensor:
    """Index of each (query, key) pair's offset in TinyViT's bias table: (N, N), N = ws * ws.

    TinyViT numbers the offsets (|d_row|, |d_col|) in order of first appearance when scanning
    the pairs row-major, which works out to ``|d_row| * window_size + |d_col|``.
    """
    pos = torch.arange(window_size, device=device)
    rows = pos.repeat_interleave(window_size)  # (N,)
    cols = pos.repeat(window_size)  # (N,)
    d_row = (rows[:, None] - rows[None, :]).abs()
    d_col = (cols[:, None] - cols[None, :]).abs()
    return d_row * window_size + d_col


class Attention(nn.Module):
    """Pre-norm multi-head attention inside one window, with a learned bias per offset."""

    def __init__(self, dim: int, num_heads: int, window_size: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.window_size = window_size
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window_size * window_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, N, dim) tokens of B windows, N = window_size ** 2 -> (B, N, dim)."""
        b, n, dim = x.shape
        qkv = self.qkv(self.norm(x))
        # TinyViT lays the projection out per head as [q | k | v], not [all q | all k | all v].
        qkv = qkv.view(b, n, self.num_heads, 3, dim // self.num_heads)
        q, k, v = qkv.permute(3, 0, 2, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
        index = offset_index(self.window_size, x.device)
        # A 4-D mask lets PyTorch's fused CPU kernel run (a 3-D one falls back to the slow path).
        bias = self.attention_biases[:, index][None].to(q.dtype)  # (1, heads, N, N)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, heads, N, head_dim)
        return self.proj(out.transpose(1, 2).reshape(b, n, dim))


class TinyViTBlock(nn.Module):
    """Windowed attention, a depthwise 3x3 convolution, then the feed-forward."""

    def __init__(self, dim: int, num_heads: int, window_size: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window_size = window_size
        self.attn = Attention(dim, num_heads, window_size)
        self.local_conv = ConvBN(dim, dim, 3, groups=dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) -> (B, H, W, C)."""
        b, h, w, c = x.shape
        ws = self.window_size
        # Padding tokens are zeros that the attention's own norm then sees, as in TinyViT:
        # they take part as keys, so they are not masked out here either.
        windows, padded_hw = window_partition(x, ws)  # (B * n_windows, ws, ws, C)
        attended = self.attn(windows.reshape(-1, ws * ws, c))  # (B * n_windows, ws * ws, C)
        x = x + window_unpartition(attended.view(-1, ws, ws, c), ws, padded_hw, (h, w))
        # The local convolution replaces x (no residual), as in TinyViT.
        x = self.local_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (B, H, W, C)
        return x + self.mlp(x)


class ConvStage(nn.Module):
    """TinyViT's first stage: MBConv blocks on (B, C, H, W), then a patch merge."""

    def __init__(self, dim: int, depth: int, expand_ratio: float, downsample: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim, expand_ratio) for _ in range(depth))
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, H', W', C') channels last, for the attention stages."""
        for block in self.blocks:
            x = block(x)
        return self.downsample(x).permute(0, 2, 3, 1)


class AttentionStage(nn.Module):
    """A stage of TinyViT blocks on (B, H, W, C) tokens, optionally followed by a patch merge."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        downsample: nn.Module | None,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TinyViTBlock(dim, num_heads, window_size, mlp_ratio) for _ in range(depth)
        )
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) -> (B, H', W', C')."""
        for block in self.blocks:
            x = block(x)
        if self.downsample is None:
            return x
        x = self.downsample(x.permute(0, 3, 1, 2))  # (B, C', H', W')
        return x.permute(0, 2, 3, 1)


class TinyViT(nn.Module):
    """TinyViT backbone plus SAM's neck: (B, 3, S, S) image -> (B, out_chans, S/16, S/16).

    The stem divides the resolution by 4 and every patch merge but the last by 2; the last
    merge keeps the resolution (MobileSAM's change to TinyViT), so four stages give S/16.
    """

    def __init__(
        self,
        img_size: int = 1024,
        in_chans: int = 3,
        embed_dims: tuple[int, ...] = (64, 128, 160, 320),
        depths: tuple[int, ...] = (2, 2, 6, 2),
        num_heads: tuple[int, ...] = (2, 4, 5, 10),
        window_sizes: tuple[int, ...] = (7, 7, 14, 7),
        mlp_ratio: float = 4.0,
        mbconv_expand_ratio: float = 4.0,
        out_chans: int = 256,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        n = len(embed_dims)
        if n < 2 or not (len(depths) == len(num_heads) == len(window_sizes) == n):
            raise ValueError(
                "embed_dims, depths, num_heads and window_sizes need one entry per stage "
                f"(at least 2); got {embed_dims}, {depths}, {num_heads}, {window_sizes}"
            )
        self.img_size = img_size
        self.patch_embed = PatchEmbed(in_chans, embed_dims[0])
        layers: list[nn.Module] = []
        for i in range(n):
            downsample = None
            if i < n - 1:
                stride = 1 if i == n - 2 else 2
                downsample = PatchMerging(embed_dims[i], embed_dims[i + 1], stride)
            if i == 0:
                layers.append(ConvStage(embed_dims[0], depths[0], mbconv_expand_ratio, downsample))
            else:
                layers.append(
                    AttentionStage(
                        embed_dims[i],
                        depths[i],
                        num_heads[i],
                        window_sizes[i],
                        mlp_ratio,
                        downsample,
                    )
                )
        self.layers = nn.ModuleList(layers)
        # The classification head is unused by SAM, but MobileSAM checkpoints carry its
        # weights, and strict loading needs somewhere to put them.
        self.norm_head = nn.LayerNorm(embed_dims[-1])
        self.head = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dims[-1], out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, img_size, img_size) normalised -> (B, out_chans, img_size/16, img_size/16)."""
        # Channels-last activations suit these convolutions (depthwise ones above all), and the
        # attention stages hand over channels-last views anyway.
        x = self.patch_embed(x.contiguous(memory_format=torch.channels_last))  # (B, C0, S/4, S/4)
        for layer in self.layers:
            x = layer(x)  # channels last after the first stage: (B, H, W, C)
        return self.neck(x.permute(0, 3, 1, 2))
