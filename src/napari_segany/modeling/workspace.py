"""Feature-map buffers reused within one pass of a convolutional decoder on a CPU.

A fresh full-resolution feature map is expensive before any arithmetic: at 1024 x 1024 with 64
channels it is 256 MB, and the operating system faults in and zeroes every page of it on first
touch. The instance decoder made about a dozen such maps a pass, most of them only to be
copied (a concatenation) or normalised into another, and those page faults took as long as its
convolutions' arithmetic. Here a pass takes a buffer, gives it back when its content is dead,
and the next map of that size or smaller reuses it; convolutions add into a zeroed buffer
(oneDNN's fused "add" post-op) instead of allocating their output.

Only for inference in float32 on a CPU (:func:`reuses_buffers`): autograd must keep every
intermediate, and other devices have caching allocators of their own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reuses_buffers(x: torch.Tensor) -> bool:
    """Whether a pass over ``x`` may write its maps into reused buffers: float32 on a CPU, with
    neither autograd nor autocast (which would run the convolutions in another dtype)."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_grad_enabled()
        and not _autocast_on_cpu()
    )


def _autocast_on_cpu() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4 takes no device type
        return torch.is_autocast_cpu_enabled()


class Workspace:
    """Channels-last float32 CPU buffers (the only maps :func:`reuses_buffers` admits) for one
    pass, or for a run of passes on maps of the same sizes (the tiles of one image) when the
    caller keeps it; freed when dropped.

    ``take`` hands out an uninitialised (B, C, H, W) view of a free buffer at least that large
    (the smallest such) or of a new one; ``give`` returns it once its content is dead. A view
    must not be used after it is given back.
    """

    def __init__(self) -> None:
        self._free: list[torch.Tensor] = []  # flat buffers
        self._lent: dict[int, tuple[torch.Tensor, torch.Size]] = {}  # view's data_ptr -> buffer

    @property
    def lent(self) -> int:
        """How many buffers are lent now (0 between passes)."""
        return len(self._lent)

    def take(self, shape: tuple[int, int, int, int]) -> torch.Tensor:
        """An uninitialised channels-last tensor of ``shape`` (B, C, H, W)."""
        b, c, h, w = shape
        n = b * c * h * w
        fits = [i for i, buf in enumerate(self._free) if buf.numel() >= n]
        if fits:
            flat = self._free.pop(min(fits, key=lambda i: self._free[i].numel()))
        else:
            flat = torch.empty(n, dtype=torch.float32)
        view = flat[:n].view(b, h, w, c).permute(0, 3, 1, 2)
        self._lent[view.data_ptr()] = (flat, view.shape)
        return view

    def zeros(self, shape: tuple[int, int, int, int]) -> torch.Tensor:
        """A zeroed channels-last tensor of ``shape`` (B, C, H, W)."""
        return self.take(shape).zero_()

    def owns(self, x: torch.Tensor) -> bool:
        """Whether ``x`` is a view lent by :meth:`take` (not a part of one)."""
        lent = self._lent.get(x.data_ptr())
        return (
            lent is not None
            and x.shape == lent[1]
            and x.is_contiguous(memory_format=torch.channels_last)
        )

    def give(self, *views: torch.Tensor) -> None:
        """Return buffers from :meth:`take`; other tensors are ignored (freed as usual)."""
        for view in views:
            if self.owns(view):
                self._free.append(self._lent.pop(view.data_ptr())[0])


def convolve_into(
    out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    relu: bool = False,
) -> torch.Tensor:
    """``out += conv2d(x, weight, bias)`` with "same" padding, then ReLU if asked; in place.

    out: (B, O, H, W) channels-last; x: (B, I, H, W); weight: (O, I, k, k), k odd. With ``out``
    zeroed this is the convolution itself, bit for bit; with a partial sum in it, a
    convolution over concatenated inputs split into parts.
    """
    padding = [weight.shape[-1] // 2] * 2
    if _FUSED[0]:
        try:
            result = torch.ops.mkldnn._convolution_pointwise_.binary(
                out, x, weight, bias, padding, [1, 1], [1, 1], 1,
                "add", None, "relu" if relu else None, [], None,
            )  # fmt: skip
            if result.data_ptr() != out.data_ptr():  # not in place after all: keep its sum
                out.copy_(result)
            return out
        except (AttributeError, RuntimeError, NotImplementedError):
            _FUSED[0] = False  # a torch without oneDNN's fused convolutions: add a fresh one
    out.add_(F.conv2d(x, weight, bias, padding=padding))
    return out.relu_() if relu else out


# Whether oneDNN's in-place convolution is there; cleared at its first failure.
_FUSED = [torch.backends.mkldnn.is_available()]


def upsample_into(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``x`` (B, C, h, w) to ``out``'s size (align_corners=False), written
    into ``out`` (B, C, H, W): ``F.interpolate``'s values without its fresh output."""
    size = list(out.shape[-2:])
    return torch._C._nn.upsample_bilinear2d(x, size, False, None, None, out=out)
