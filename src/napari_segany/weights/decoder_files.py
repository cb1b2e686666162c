"""micro-sam's model files: a SAM checkpoint and its instance decoder, in either format.

- **Separate files** (BioImage.IO and ownCloud): ``<arch>.pt`` is a plain SAM state dict and
  ``<arch>_decoder.pt`` beside it the decoder's state dict (torch-em's UNETR without its
  encoder: ``base.*``, ``decoder.*``, ``deconv1-4.*``, ``deconv_out.*``, ``decoder_head.*``,
  ``out_conv.*``).
- **One training checkpoint** (torch-em, as micro-sam's training and export write it):
  ``{"model_state": {"sam.image_encoder...": ...}, "decoder_state": {...}}``.

Every file is read with ``torch.load(weights_only=True)``, so none can run code, and loaded
strictly: a missing, unexpected or misshapen tensor is an error that names the file and the
tensors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CheckpointError
from .instance_decoder import attach_instance_decoder, build_instance_decoder

if TYPE_CHECKING:
    import torch

    from ..modeling import Sam

DECODER_SUFFIX = "_decoder"
_TRAINING_KEYS = ("model_state", "decoder_state")


def decoder_file_beside(checkpoint: str | os.PathLike) -> Path | None:
    """``<stem>_decoder<suffix>`` next to ``checkpoint`` (``vit_b.pt`` -> ``vit_b_decoder.pt``),
    micro-sam's name for a model's decoder file, when that file exists."""
    path = Path(checkpoint)
    candidate = path.with_name(f"{path.stem}{DECODER_SUFFIX}{path.suffix}")
    return candidate if candidate.is_file() else None


def read_sam_and_decoder(
    path: str | os.PathLike,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
    """The SAM state dict of a checkpoint in either micro-sam format, and the decoder state
    it holds (None for a plain SAM state dict, whose decoder, if any, is a file of its own)."""
    from .checkpoint import unwrap_state_dict

    path = Path(path)
    obj = _load(path, "checkpoint")
    if isinstance(obj, Mapping) and "model_state" in obj:
        decoder = obj.get("decoder_state")
        if decoder is not None and not isinstance(decoder, Mapping):
            raise CheckpointError(
                f"{path}: its decoder_state is a {type(decoder).__name__}, not a state dict."
            )
        sam = unwrap_state_dict(obj["model_state"], f"{path} (model_state)")
        return sam, None if decoder is None else _tensors(decoder, f"{path} (decoder_state)")
    return unwrap_state_dict(obj, path), None


def read_decoder_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The decoder state dict in a decoder file (or in a training checkpoint's
    ``decoder_state``)."""
    path = Path(path)
    obj = _load(path, "decoder")
    if isinstance(obj, Mapping) and "decoder_state" in obj:
        obj = obj["decoder_state"]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(
            f"{path} does not contain a decoder state dict (found {type(obj).__name__})."
        )
    if any(str(k).startswith(("image_encoder.", "sam.image_encoder.")) for k in obj):
        raise CheckpointError(
            f"{path} is a SAM checkpoint, not an instance decoder file: pass it as the "
            "checkpoint and its <arch>_decoder.pt as the decoder."
        )
    return _tensors(obj, str(path))


def load_sam_with_decoder(
    checkpoint: str | os.PathLike,
    decoder: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    allow_missing_pos_embed: bool = False,
) -> Sam:
    """A SAM model from a checkpoint in either micro-sam format, with its instance decoder
    attached when there is one (see :func:`~napari_segany.instances.instance_decoder_of`).

    decoder: a decoder file; by default the checkpoint's own ``decoder_state``, else
    ``<stem>_decoder<suffix>`` beside the checkpoint, else none (a plain SAM model).
    """
    from ..devices import resolve_device
    from .checkpoint import build_from_state_dict

    checkpoint = Path(checkpoint)
    sam_state, decoder_state = read_sam_and_decoder(checkpoint)
    source = f"{checkpoint} (decoder_state)"
    if decoder is not None:
        decoder_state, source = read_decoder_file(decoder), str(decoder)
    elif decoder_state is None and (beside := decoder_file_beside(checkpoint)) is not None:
        decoder_state, source = read_decoder_file(beside), str(beside)
    model = build_from_state_dict(sam_state, str(checkpoint), allow_missing_pos_embed)
    if decoder_state is not None:
        attach_instance_decoder(model, build_instance_decoder(decoder_state, source))
    return model.to(resolve_device(device))


def _tensors(state: Mapping[Any, Any], source: str) -> dict[str, torch.Tensor]:
    import torch

    out = {str(k): v for k, v in state.items()}
    non_tensors = [k for k, v in out.items() if not isinstance(v, torch.Tensor)]
    if non_tensors:
        raise CheckpointError(
            f"{source} is not a state dict: entries such as {non_tensors[:3]} are not tensors."
        )
    return out


def _load(path: Path, what: str) -> Any:
    from .checkpoint import load_torch_file

    return load_torch_file(path, what)


def model_has_decoder(name_or_path: str | os.PathLike) -> bool:
    """Whether ``load_model(name_or_path)`` comes with an instance decoder, without loading it.

    A registered name is answered by its registry entry (:attr:`ModelInfo.has_decoder`) and
    no file is read, so a model not downloaded yet is not fetched to ask. A checkpoint path
    has one when micro-sam's ``<stem>_decoder<suffix>`` lies beside it, or when it is a
    training checkpoint holding a ``decoder_state``: to learn that, only the file's pickled
    structure is read; its tensors are memory-mapped (torch's zip format), not read: tens of
    milliseconds even for vit_h, so loading the model afterwards is not a second full read.
    """
    from .registry import is_registered, model_info

    text = os.fspath(name_or_path)
    # A registered name wins over a same-named file, as in load_model.
    if isinstance(name_or_path, str) and is_registered(text):
        return model_info(text).has_decoder
    path = Path(text).expanduser()
    if not path.is_file():
        return False
    return decoder_file_beside(path) is not None or _holds_decoder_state(path)


def _holds_decoder_state(checkpoint: Path) -> bool:
    """Whether a checkpoint file is micro-sam's training checkpoint with a decoder inside."""
    obj = _load(checkpoint, "checkpoint")
    return isinstance(obj, Mapping) and isinstance(obj.get("decoder_state"), Mapping)
