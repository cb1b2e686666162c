"""``load_model``: a checkpoint path (or a registered model name) -> a ready SAM model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..progress import ProgressCallback

if TYPE_CHECKING:
    import torch

    from ..modeling import Sam


def load_model(
    name_or_path: str | os.PathLike,
    device: str | torch.device = "auto",
    progress: ProgressCallback | None = None,
    allow_missing_pos_embed: bool = False,
) -> Sam:
    """Load a SAM model in eval mode on ``device`` (``auto``: cuda, then mps, then cpu).

    ``name_or_path`` is a checkpoint file (its architecture is read off its tensors) or a
    registered model name such as ``vit_b`` (found in the cache or downloaded, with
    ``progress(done_bytes, total_bytes)`` called along the way). A ViT checkpoint without
    ``image_encoder.pos_embed`` is refused unless ``allow_missing_pos_embed``.
    """
    from ..devices import resolve_device
    from .checkpoint import build_from_state_dict, read_checkpoint

    path = _checkpoint_path(name_or_path, progress)
    target = resolve_device(device)
    model = build_from_state_dict(
        read_checkpoint(path), source=str(path), allow_missing_pos_embed=allow_missing_pos_embed
    )
    return model.to(target)


def _checkpoint_path(name_or_path: str | os.PathLike, progress: ProgressCallback | None) -> Path:
    from .download import checkpoint_for
    from .registry import is_registered

    text = str(name_or_path)
    # A registered name wins over a same-named file in the working folder.
    if isinstance(name_or_path, str) and is_registered(text):
        return checkpoint_for(text, progress=progress)
    path = Path(name_or_path).expanduser()
    if path.exists() or "/" in text or os.sep in text or path.suffix in (".pth", ".pt", ".bin"):
        return path
    return checkpoint_for(text, progress=progress)  # ValueError naming the registered models
