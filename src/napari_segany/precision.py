"""Numeric precision of the image encoder: ``auto``, ``fp32``, ``bf16`` or ``fp16``.

``auto`` picks bf16 where the hardware runs it fast (CPUs with AVX-512 BF16 or AMX, CUDA GPUs
of compute capability 8.0 or newer), fp16 on older CUDA GPUs, and fp32 elsewhere, including
Apple MPS where bf16 misbehaves. Reduced precision applies to the image encoder only; the
prompt encoder and mask decoder always run in fp32, and masks and scores returned to users are
always bool/float32.
"""

from __future__ import annotations

import functools
import platform
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (AVX-512 BF16 or AMX)."""
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
    explicit = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if name in explicit:
        if name == "fp16" and device.type == "cpu":
            raise ValueError("fp16 is not supported on the CPU: use 'bf16' or 'fp32'.")
        return explicit[name]
    if name != "auto":
        raise ValueError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}.")
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        return torch.bfloat16 if major >= 8 else torch.float16
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return torch.float32


def precision_name(dtype: torch.dtype) -> str:
    import torch

    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
