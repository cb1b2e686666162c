"""Small building blocks shared by the image encoder, prompt encoder and mask decoder."""

from __future__ import annotations

import torch
from torch import nn


class MLPBlock(nn.Module):
    """Two linear layers with an activation between them (the transformer's feed-forward)."""

    def __init__(self, embedding_dim: int, mlp_dim: int, act: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., embedding_dim) -> (..., embedding_dim)."""
        return self.lin2(activate(self.act, self.lin1(x)))


def activate(act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``act(x)``, in place when nothing records ``x`` for a backward pass.

    For a fresh intermediate of many megabytes (an MLP's hidden layer, the decoder's upscaled
    features) a new buffer costs more in page faults than the activation itself.
    """
    if torch.is_grad_enabled():
        return act(x)
    if isinstance(act, nn.GELU) and act.approximate == "none":
        return torch.ops.aten.gelu_(x)
    if isinstance(act, nn.ReLU):
        return torch.relu_(x)
    return act(x)


def residual_add(x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """``x + residual``, in place in ``x`` (a fresh intermediate) when no backward pass needs it
    and the sum keeps ``x``'s dtype (under autocast a bf16 ``x`` plus an fp32 residual is fp32).
    """
    if torch.is_grad_enabled() or torch.promote_types(x.dtype, residual.dtype) != x.dtype:
        return x + residual
    return x.add_(residual)


class LayerNorm2d(nn.Module):
    """Layer norm over the channel axis of a B x C x H x W tensor."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class MLP(nn.Module):
    """A stack of linear layers with ReLU between them (mask decoder heads)."""

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out))
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., input_dim) -> (..., output_dim)."""
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = torch.relu(x)
        return torch.sigmoid(x) if self.sigmoid_output else x
