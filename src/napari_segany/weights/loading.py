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
    registered model name such as ``vit_b`` or ``vit_b_lm`` (found in the cache or
    downloaded, with ``progress(done_bytes, total_bytes)`` called along the way). A ViT
    checkpoint without ``image_encoder.pos_embed`` is refused unless
    ``allow_missing_pos_embed``.

    micro-sam's models come with an instance decoder, loaded beside SAM (strictly, with
    ``weights_only=True``) as ``model.instance_decoder``: a registered micro-sam model's
    decoder file; for a checkpoint file, its ``decoder_state`` (micro-sam's training
    checkpoints) or else ``<stem>_decoder<suffix>`` beside it (``vit_b.pt`` and
    ``vit_b_decoder.pt``, as micro-sam publishes them).
    """
    from ..devices import resolve_device
    from .decoder_files import load_sam_with_decoder

    path, decoder = _checkpoint_files(name_or_path, progress)
    target = resolve_device(device)
    return load_sam_with_decoder(path, decoder, target, allow_missing_pos_embed)


def _checkpoint_files(
    name_or_path: str | os.PathLike, progress: ProgressCallback | None
) -> tuple[Path, Path | None]:
    """The checkpoint to load and, for a registered model with one, its decoder file."""
    from .download import checkpoint_for, decoder_for
    from .registry import is_registered

    text = str(name_or_path)
    # A registered name wins over a same-named file in the working folder.
    if isinstance(name_or_path, str) and is_registered(text):
        return checkpoint_for(text, progress=progress), _existing_decoder(text)
    path = Path(name_or_path).expanduser()
    if path.exists() or "/" in text or os.sep in text or path.suffix in (".pth", ".pt", ".bin"):
        return path, None
    checkpoint = checkpoint_for(text, progress=progress)  # ValueError naming the models
    return checkpoint, decoder_for(text)


def _existing_decoder(name: str) -> Path | None:
    from ..errors import CheckpointError
    from .download import decoder_for

    decoder = decoder_for(name)
    if decoder is not None and not decoder.is_file():
        raise CheckpointError(
            f"The instance decoder of model {name!r}, {decoder}, is missing. Download the model "
            f"again (napari-segany models download {name}) or import it with its decoder file."
        )
    return decoder
