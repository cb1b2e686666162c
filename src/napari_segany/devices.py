"""Which torch device to run on: ``auto`` means cuda, then mps, then cpu."""

from __future__ import annotations

import torch


def available_devices() -> list[str]:
    """Device names that work on this machine, best first, always ending with ``cpu``."""
    names = []
    if torch.cuda.is_available():
        names += [f"cuda:{i}" if i else "cuda" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names + ["cpu"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``auto``/``cpu``/``cuda``/``cuda:N``/``mps`` into a torch device that exists here."""
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device(available_devices()[0])
    try:
        resolved = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(
            f"Unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Device {device!r} asked for, but no CUDA GPU is usable here: use 'cpu'.")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"Device {device!r} asked for, but only {torch.cuda.device_count()} GPU(s) exist."
        )
    if resolved.type == "mps" and name not in available_devices():
        raise ValueError(f"Device {device!r} asked for, but MPS is not available here: use 'cpu'.")
    return resolved
