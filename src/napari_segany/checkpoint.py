"""Read SAM-format checkpoint files: unwrap, infer the architecture, load strictly.

Any SAM-format state dict loads without naming its type: the architecture is read off the
tensor shapes (see :func:`infer_config`). Files are read with ``weights_only=True`` so a
checkpoint can never run code.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import first_line

if TYPE_CHECKING:
    import torch

    from .modeling import Sam, SamConfig

_CONTAINER_KEYS = ("model", "state_dict", "model_state", "model_state_dict", "module")
_KEY_PREFIXES = ("module.", "sam.", "model.")
_REQUIRED_PREFIXES = ("image_encoder.", "prompt_encoder.", "mask_decoder.")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load ``path`` safely and return its SAM state dict (container and prefixes removed)."""
    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give the path of a .pth/.pt checkpoint file.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"Checkpoint file {path} is empty (0 bytes); download it again.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=_can_mmap(path))
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"Refused to load {path}: it holds Python objects other than tensors, so loading it "
            "could run code. Use a plain PyTorch state dict (torch.save(model.state_dict(), ...))."
            f" Detail: {first_line(exc)}"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"Could not read {path} as a PyTorch checkpoint: the file is truncated, corrupt or "
            f"not a checkpoint ({type(exc).__name__}: {first_line(exc)}). Download it again."
        ) from None
    return unwrap_state_dict(obj, path)


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


def _count(state: Mapping[str, Any], pattern: str) -> int:
    regex = re.compile(pattern)
    found = {int(m.group(1)) for k in state if (m := regex.match(k))}
    return max(found) + 1 if found else 0


def _shape(state: Mapping[str, Any], key: str, source: str) -> tuple[int, ...]:
    if key not in state:
        raise CheckpointError(f"{source} is not a SAM checkpoint this plugin knows: no {key!r}.")
    return tuple(state[key].shape)


def infer_config(state: Mapping[str, Any], source: str = "checkpoint") -> SamConfig:
    """Read a :class:`SamConfig` off the tensor shapes of a SAM state dict.

    Works on meta tensors, so vit_h-sized dicts can be checked without memory.
    """
    from .modeling import SamConfig

    if "image_encoder.patch_embed.seq.0.c.weight" in state:
        from .tiny_vit_config import infer_tiny_vit

        config = SamConfig(encoder="tiny_vit", tiny_vit=infer_tiny_vit(state, source))
    else:
        config = _infer_vit(state, source)
    return _infer_decoder(state, config, source)


def _infer_vit(state: Mapping[str, Any], source: str) -> SamConfig:
    from .modeling import SamConfig

    pe = "image_encoder."
    embed_dim, _, patch, _ = _shape(state, pe + "patch_embed.proj.weight", source)
    depth = _count(state, r"image_encoder\.blocks\.(\d+)\.")
    if depth == 0:
        raise CheckpointError(f"{source} has an image encoder without transformer blocks.")
    pos_key = pe + "pos_embed"
    use_abs_pos = pos_key in state
    grid = _shape(state, pos_key, source)[1] if use_abs_pos else 1024 // patch
    mlp_dim = _shape(state, pe + "blocks.0.mlp.lin1.weight", source)[0]
    use_rel_pos = pe + "blocks.0.attn.rel_pos_h" in state
    global_blocks: list[int] = []
    window_sizes: set[int] = set()
    head_dim = 64
    for i in range(depth):
        key = f"{pe}blocks.{i}.attn.rel_pos_h"
        if key not in state:
            continue
        span, head_dim = _shape(state, key, source)
        size = (span + 1) // 2
        if size == grid:
            global_blocks.append(i)
        else:
            window_sizes.add(size)
    if len(window_sizes) > 1:
        raise CheckpointError(f"{source} mixes window sizes {sorted(window_sizes)}; unsupported.")
    if embed_dim % head_dim:
        raise CheckpointError(f"{source}: width {embed_dim} is not a multiple of {head_dim}.")
    return SamConfig(
        encoder="vit",
        embed_dim=embed_dim,
        depth=depth,
        num_heads=embed_dim // head_dim,
        global_attn_indexes=tuple(global_blocks),
        mlp_ratio=mlp_dim / embed_dim,
        window_size=window_sizes.pop() if window_sizes else 14,
        use_abs_pos=use_abs_pos,
        use_rel_pos=use_rel_pos,
        img_size=grid * patch,
        patch_size=patch,
    )


def _infer_decoder(state: Mapping[str, Any], config: SamConfig, source: str) -> SamConfig:
    md = "mask_decoder."
    prompt_dim = _shape(state, "prompt_encoder.no_mask_embed.weight", source)[1]
    internal = _shape(
        state, md + "transformer.layers.0.cross_attn_token_to_image.q_proj.weight", source
    )[0]
    return replace(
        config,
        prompt_embed_dim=prompt_dim,
        mask_in_chans=_shape(state, "prompt_encoder.mask_downscaling.3.weight", source)[0],
        decoder_depth=_count(state, r"mask_decoder\.transformer\.layers\.(\d+)\."),
        decoder_mlp_dim=_shape(state, md + "transformer.layers.0.mlp.lin1.weight", source)[0],
        attention_downsample_rate=max(1, prompt_dim // internal),
        num_multimask_outputs=_shape(state, md + "mask_tokens.weight", source)[0] - 1,
        iou_head_depth=_count(state, r"mask_decoder\.iou_prediction_head\.layers\.(\d+)\."),
        iou_head_hidden_dim=_shape(state, md + "iou_prediction_head.layers.0.weight", source)[0],
    )


def build_from_state_dict(state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> Sam:
    """Build the model a state dict describes and load it strictly, in float32 on the CPU."""
    from .modeling import build_sam
    from .modeling.skip_init import skip_weight_init

    config = infer_config(state, source)
    with skip_weight_init():
        model = build_sam(config)
    try:
        result = model.load_state_dict(state, strict=False, assign=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{source} has tensors whose shapes do not fit one SAM architecture: {first_line(exc)}"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{source} does not match the SAM architecture read from its shapes. "
            f"Missing keys: {_preview(result.missing_keys)}; unexpected keys: "
            f"{_preview(result.unexpected_keys)}."
        )
    return model.float().eval()


def _preview(keys: list[str], n: int = 5) -> str:
    if not keys:
        return "none"
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more
