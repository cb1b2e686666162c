"""SAM's ViT image encoder (ViTDet-style: windowed and global attention, relative positions).

Attention runs through ``F.scaled_dot_product_attention`` with the decomposed relative-position
bias passed as an additive mask, processed a few heads at a time so the (N x N) bias of a global
block never has to exist for all heads at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import LayerNorm2d, MLPBlock, residual_add

# Upper bound on the float32 elements of one materialised attention bias chunk (128 MB): two
# heads of a 64 x 64 global block at a time, which costs no time and keeps peak memory low.
_BIAS_CHUNK_ELEMENTS = 32 * 1024 * 1024


def _compiling() -> bool:
    """Whether ``torch.compile`` is tracing this code (never true before torch 2.3)."""
    is_compiling = getattr(torch.compiler, "is_compiling", None)
    return bool(is_compiling and is_compiling())


class PatchEmbed(nn.Module):
    """Image to patch tokens: a strided convolution, channels moved last."""

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.proj = nn.Conv2d(
            in_chans,
            embed_dim,
            kernel_size=(patch_size, patch_size),
            stride=(patch_size, patch_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) -> (B, H/patch, W/patch, embed_dim)."""
        # Contiguous channels-last, or the residual stream inherits the permuted strides and
        # every layer norm of every block copies its input first.
        return self.proj(x).permute(0, 2, 3, 1).contiguous()


def relative_position_table(q_size: int, k_size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Look up relative-position embeddings for every (query, key) pair along one axis.

    rel_pos: (L, C) learned table, resized linearly when L != 2 * max(q_size, k_size) - 1.
    Returns (q_size, k_size, C).
    """
    span = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != span:
        rel_pos = F.interpolate(
            rel_pos.reshape(1, rel_pos.shape[0], -1).permute(0, 2, 1), size=span, mode="linear"
        )
        rel_pos = rel_pos.reshape(-1, span).permute(1, 0)
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * max(q_size / k_size, 1.0)
    offsets = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return rel_pos[offsets.long()]


def window_partition(x: torch.Tensor, window_size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Split (B, H, W, C) tokens into zero-padded square windows.

    Returns (B * n_windows, window_size, window_size, C) and the padded (Hp, Wp).
    """
    b, h, w, c = x.shape
    pad_h = (window_size - h % window_size) % window_size
    pad_w = (window_size - w % window_size) % window_size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window_size, window_size, wp // window_size, window_size, c)
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, c)
    return windows, (hp, wp)


def window_unpartition(
    windows: torch.Tensor, window_size: int, padded_hw: tuple[int, int], hw: tuple[int, int]
) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * n_windows, ws, ws, C) -> (B, H, W, C)."""
    hp, wp = padded_hw
    h, w = hw
    b = windows.shape[0] // ((hp // window_size) * (wp // window_size))
    x = windows.view(b, hp // window_size, wp // window_size, window_size, window_size, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    if hp > h or wp > w:
        x = x[:, :h, :w, :].contiguous()
    return x


class Attention(nn.Module):
    """Multi-head self-attention over a 2-D token grid with decomposed relative positions."""

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        use_rel_pos: bool = False,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            if input_size is None:
                raise ValueError("relative positions need the token grid's input_size")
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, dim) -> (B, H, W, dim)."""
        b, h, w, dim = x.shape
        n = h * w
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
        if not self.use_rel_pos:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            out = self._attend_with_rel_pos(q, k, v, (h, w))
        out = out.transpose(1, 2).reshape(b, h, w, dim)  # (B, H, W, heads * head_dim)
        return self.proj(out)

    def _attend_with_rel_pos(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, hw: tuple[int, int]
    ) -> torch.Tensor:
        """q, k, v: (B, heads, N, head_dim) -> (B, heads, N, head_dim)."""
        h, w = hw
        b, heads, n, head_dim = q.shape
        table_h = relative_position_table(h, h, self.rel_pos_h).to(q.dtype)  # (h, h, head_dim)
        table_w = relative_position_table(w, w, self.rel_pos_w).to(q.dtype)  # (w, w, head_dim)
        # A chunk of heads at a time bounds the materialised (N x N) bias for global blocks.
        step = max(1, min(heads, _BIAS_CHUNK_ELEMENTS // max(1, b * n * n)))
        # One bias buffer serves every chunk: a fresh allocation of this size per chunk costs
        # more in page faults than the additions themselves. Compiled code fuses the sum into
        # its own buffers, and cannot trace writes into ours.
        buffer = None if _compiling() else q.new_empty(b, step, h, w, h, w)
        out = q.new_empty(q.shape) if step < heads else None
        for start in range(0, heads, step):
            stop = min(heads, start + step)
            grid_q = q[:, start:stop].reshape(b, -1, h, w, head_dim)  # (B, hc, h, w, head_dim)
            rel_h = torch.einsum("bnhwc,hkc->bnhwk", grid_q, table_h)  # (B, hc, h, w, kh)
            rel_w = torch.einsum("bnhwc,wkc->bnhwk", grid_q, table_w)  # (B, hc, h, w, kw)
            if buffer is None:
                bias = rel_h[..., :, None] + rel_w[..., None, :]  # (B, hc, h, w, kh, kw)
            else:
                bias = torch.add(
                    rel_h[..., :, None], rel_w[..., None, :], out=buffer[:, : stop - start]
                )
            chunk = F.scaled_dot_product_attention(
                q[:, start:stop],
                k[:, start:stop],
                v[:, start:stop],
                attn_mask=bias.reshape(b, -1, n, n),
            )
            if step == heads:
                return chunk
            out[:, start:stop] = chunk
        return out


class Block(nn.Module):
    """Pre-norm transformer block; attention is windowed unless ``window_size`` is 0."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        use_rel_pos: bool = False,
        window_size: int = 0,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(
            dim,
            num_heads=num_heads,
            qkv_bias=qkv_bias,
            use_rel_pos=use_rel_pos,
            input_size=input_size if window_size == 0 else (window_size, window_size),
        )
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(embedding_dim=dim, mlp_dim=int(dim * mlp_ratio))
        self.window_size = window_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, dim) -> (B, H, W, dim)."""
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            h, w = x.shape[1], x.shape[2]
            x, padded_hw = window_partition(x, self.window_size)
            x = self.attn(x)
            x = window_unpartition(x, self.window_size, padded_hw, (h, w))
        else:
            x = self.attn(x)
        x = residual_add(x, shortcut)
        return residual_add(self.mlp(self.norm2(x)), x)


class ImageEncoderViT(nn.Module):
    """ViT backbone plus a convolutional neck: (B, 3, S, S) image -> (B, 256, S/16, S/16)."""

    def __init__(
        self,
        img_size: int = 1024,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        out_chans: int = 256,
        qkv_bias: bool = True,
        use_abs_pos: bool = True,
        use_rel_pos: bool = True,
        window_size: int = 14,
        global_attn_indexes: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        self.img_size = img_size
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim)
        self.pos_embed: nn.Parameter | None = None
        if use_abs_pos:
            self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, embed_dim))
        self.blocks = nn.ModuleList(
            Block(
                dim=embed_dim,
                num_heads=num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                use_rel_pos=use_rel_pos,
                window_size=0 if i in global_attn_indexes else window_size,
                input_size=(grid, grid),
            )
            for i in range(depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dim, out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, img_size, img_size) normalised -> (B, out_chans, grid, grid)."""
        x = self.patch_embed(x)  # (B, grid, grid, embed_dim)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))  # (B, out_chans, grid, grid)
