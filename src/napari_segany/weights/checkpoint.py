"""Read SAM-format checkpoint files: unwrap, build the architecture they describe, load strictly.

Any SAM-format state dict loads without naming its type: the architecture is read off the
tensor shapes (:mod:`.architecture`). Files are read with ``weights_only=True`` so a checkpoint
can never run code.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CheckpointError, first_line
from .architecture import infer_config

if TYPE_CHECKING:
    import torch

    from ..modeling import Sam

_CONTAINER_KEYS = ("model", "state_dict", "model_state", "model_state_dict", "module")
_KEY_PREFIXES = ("module.", "sam.", "model.")
_REQUIRED_PREFIXES = ("image_encoder.", "prompt_encoder.", "mask_decoder.")


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load ``path`` safely and return its SAM state dict (container and prefixes removed)."""
    path = Path(path)
    return unwrap_state_dict(load_torch_file(path), path)


def load_torch_file(path: Path, what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)``, with messages that name ``what`` the file
    should be (a checkpoint, a decoder file) and what to do."""
    import torch

    if not path.exists():
        raise FileNotFoundError(f"{what.capitalize()} file not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give the path of a .pth/.pt {what} file.")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"{what.capitalize()} file {path} is empty (0 bytes); download it again."
        )
    if not _looks_like_torch_file(path):
        raise CheckpointError(
            f"{path.name} is not a PyTorch {what}: it is neither a zip archive nor a pickle "
            "(for example a text or HTML page saved by a failed download). Download the "
            f"{what} again or pick another file. ({path})"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=_can_mmap(path))
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"Refused to load {path}: it holds Python objects other than tensors, so loading it "
            "could run code. Use a plain PyTorch state dict (torch.save(model.state_dict(), ...));"
            " a micro-sam training checkpoint reduces to its weights with micro-sam's "
            "export_custom_sam_model(..., with_segmentation_decoder=True)."
            f" Detail: {first_line(exc)}"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"Could not read {path} as a PyTorch {what}: the file is truncated, corrupt or "
            f"not a {what} ({type(exc).__name__}: {first_line(exc)}). Download it again."
        ) from None


def _looks_like_torch_file(path: Path) -> bool:
    """torch.save writes a zip archive; older PyTorch wrote a pickle (protocol 2+: 0x80)."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith(b"PK") or head[:1] == b"\x80"


def _can_mmap(path: Path) -> bool:
    # mmap avoids a second in-memory copy of multi-GB checkpoints; only the zip format allows it.
    return zipfile.is_zipfile(path)


def unwrap_state_dict(obj: Any, source: str | os.PathLike = "checkpoint") -> dict[str, Any]:
    """Find the SAM state dict inside common containers and strip wrapper key prefixes."""
    import torch

    for _ in range(3):
        if isinstance(obj, Mapping) and not _looks_like_state_dict(obj):
            inner = next((obj[k] for k in _CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(
            f"{source} does not contain a state dict (found {type(obj).__name__}); "
            "expected a mapping of parameter names to tensors."
        )
    state = {str(k): v for k, v in obj.items()}
    for _ in range(3):
        for prefix in _KEY_PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
    non_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if non_tensors:
        raise CheckpointError(
            f"{source} is not a SAM state dict: entries such as {non_tensors[:3]} are not tensors."
        )
    missing = [p for p in _REQUIRED_PREFIXES if not any(k.startswith(p) for k in state)]
    if missing:
        raise CheckpointError(
            f"{source} is not a SAM checkpoint: it has no {', '.join(m[:-1] for m in missing)} "
            f"weights (first keys: {list(state)[:3]})."
        )
    return state


def _looks_like_state_dict(obj: Mapping) -> bool:
    return any(isinstance(k, str) and k.startswith(_REQUIRED_PREFIXES) for k in obj)


def build_from_state_dict(
    state: Mapping[str, torch.Tensor],
    source: str = "checkpoint",
    allow_missing_pos_embed: bool = False,
) -> Sam:
    """Build the model a state dict describes and load it strictly, in float32 on the CPU."""
    from ..modeling import build_sam
    from ..modeling.skip_init import skip_weight_init

    config = infer_config(state, source, allow_missing_pos_embed)
    with skip_weight_init():
        model = build_sam(config)
    try:
        result = model.load_state_dict(state, strict=False, assign=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{source} has tensors whose shapes do not fit one SAM architecture: {_mismatches(exc)}"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{source} does not match the SAM architecture read from its shapes. "
            f"Missing keys: {_preview(result.missing_keys)}; unexpected keys: "
            f"{_preview(result.unexpected_keys)}."
        )
    return model.float().eval()


def _mismatches(exc: RuntimeError, n: int = 5) -> str:
    """The tensors whose shapes differ, from torch's multi-line load_state_dict error."""
    lines = [line.strip() for line in str(exc).splitlines()]
    found = [line.removeprefix("size mismatch for ") for line in lines if "size mismatch" in line]
    if not found:
        return first_line(exc)
    more = f"; and {len(found) - n} more" if len(found) > n else ""
    return "; ".join(found[:n]) + more + "."


def _preview(keys: list[str], n: int = 5) -> str:
    if not keys:
        return "none"
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more
