"""Numeric precision of the image encoder: ``auto``, ``fp32``, ``bf16`` or ``fp16``.

``auto`` picks bf16 where the hardware runs it fast (CPUs with AVX-512 BF16 or AMX, CUDA GPUs
of compute capability 8.0 or newer), fp16 on older CUDA GPUs, and fp32 elsewhere, including
Apple MPS where bf16 misbehaves. Reduced precision applies to the image encoder only; the
prompt encoder and mask decoder always run in fp32, and masks and scores returned to users are
always bool/float32.
"""

from __future__ import annotations

import functools
import os
import platform
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# Each precision's name here and the name of its torch dtype. Keys, files and messages use the
# short names; either is accepted.
_TORCH_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
_NAMES = {**{k: k for k in _TORCH_NAMES}, **{v: k for k, v in _TORCH_NAMES.items()}}


CPU_BF16_ENV = "NAPARI_SEGANY_CPU_BF16"


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (AVX-512 BF16 or AMX).

    ``$NAPARI_SEGANY_CPU_BF16`` set to 1 or 0 overrides what the CPU reports (to check both
    kinds of machine on one, or when a CPU reports the instructions but runs them slowly).
    """
    forced = os.environ.get(CPU_BF16_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return _cpu_reports_bf16()


@functools.lru_cache(maxsize=1)
def _cpu_reports_bf16() -> bool:
    if platform.system() != "Linux":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The torch dtype the encoder runs in for ``precision`` on ``device``."""
    import torch

    name = str(precision).strip().lower()
    if name in _TORCH_NAMES:
        if name == "fp16" and device.type == "cpu":
            raise ValueError("fp16 is not supported on the CPU: use 'bf16' or 'fp32'.")
        return getattr(torch, _TORCH_NAMES[name])
    if name != "auto":
        raise ValueError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}.")
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        return torch.bfloat16 if major >= 8 else torch.float16
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return torch.float32


def precision_name(precision: str | torch.dtype) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for a torch dtype or any of their names (not ``auto``,
    which means different things on different machines: resolve it first)."""
    name = _NAMES.get(str(precision).strip().lower().removeprefix("torch."))
    if name is None:
        raise ValueError(
            f"Expected what the encoder runs in, fp32, bf16 or fp16 (or its torch dtype); got "
            f"{precision!r}. Resolve 'auto' with resolve_precision() first."
        )
    return name


def resolved_precision_name(precision: str, device: torch.device) -> str:
    """The name of what ``precision`` (``auto`` included) runs in on ``device``."""
    return precision_name(resolve_precision(precision, device))
