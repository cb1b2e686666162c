"""Model names -> checkpoint files: the registry of official models, imported ones, the cache.

The official models are Meta's SAM and MobileSAM (general purpose) and micro-sam's finetuned
SAMs (light and electron microscopy, histopathology, medical imaging; :mod:`.microsam`), which
come with an instance decoder file beside the checkpoint.

The cache folder holds the official checkpoints under their official file names, imported
custom checkpoints under ``custom/``, ``verified.json`` (size, mtime, SHA-256 and xxh128 of
every file already verified on this machine, so a 2.5 GB checkpoint is hashed once, not at
every start) and ``custom_models.json`` (the imported models).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from .microsam import (
    DEFAULT_MICROSCOPY_MODEL_CPU,
    DEFAULT_MICROSCOPY_MODEL_GPU,
    DOMAINS,
    MICROSAM_MODELS,
    MicroSamModel,
)

CACHE_ENV = "NAPARI_SEGANY_CACHE_DIR"
MODEL_ENV = "NAPARI_SEGANY_MODEL"
# The default model for the machine. Its users label microscopy, so the default is micro-sam's
# light-microscopy generalist: finetuned on cells and nuclei, and with an instance decoder that
# segments every cell of a slice in a fraction of a second once it is encoded. Its encoders
# cost what SAM's do: vit_b needs a GPU to feel interactive; on a CPU the MobileSAM-sized
# vit_t_lm encodes about 6x faster with the same prompt encoder and decoder.
DEFAULT_MODEL_GPU = DEFAULT_MICROSCOPY_MODEL_GPU  # vit_b_lm
DEFAULT_MODEL_CPU = DEFAULT_MICROSCOPY_MODEL_CPU  # vit_t_lm

GENERAL = "General (Segment Anything)"
IMPORTED = "Imported"
MODEL_DOMAINS = (GENERAL, *DOMAINS, IMPORTED)
"""What the models are for, in the order the model picker groups them."""

VERIFIED_JSON = "verified.json"
CUSTOM_JSON = "custom_models.json"
CUSTOM_FOLDER = "custom"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """A model that ``load_model`` knows by name.

    filename is relative to :func:`cache_dir`; url is None for imported (custom) models;
    cached tells whether its files are in the cache now (as seen by :func:`list_models`).
    domain: one of :data:`MODEL_DOMAINS`. A file is verified by its sha256 or, for
    micro-sam's models (which publish no SHA-256), its xxh128. A model with an instance
    decoder (automatic instance segmentation) names the decoder's file beside its own.
    """

    name: str
    description: str
    url: str | None
    filename: str
    size: int | None
    sha256: str | None
    custom: bool = False
    cached: bool = False
    domain: str = GENERAL
    xxh128: str | None = None
    decoder_url: str | None = None
    decoder_filename: str | None = None
    decoder_xxh128: str | None = None

    @property
    def has_decoder(self) -> bool:
        """Whether the model segments instances automatically (micro-sam's AIS and APG)."""
        return self.decoder_filename is not None


# Official checkpoints (facts from REFERENCE.md). Tests point entries at a local server.
REGISTRY: dict[str, ModelInfo] = {
    "vit_t": ModelInfo(
        name="vit_t",
        description="MobileSAM (40 MB): small TinyViT encoder, several times faster than vit_b",
        url="https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
        filename="mobile_sam.pt",
        size=40728226,
        sha256="6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
    ),
    "vit_b": ModelInfo(
        name="vit_b",
        description="SAM ViT-B (375 MB): general purpose, good masks at moderate speed",
        url="https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
        filename="sam_vit_b_01ec64.pth",
        size=375042383,
        sha256="ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
    ),
    "vit_l": ModelInfo(
        name="vit_l",
        description="SAM ViT-L (1.2 GB): more accurate, about 3x slower than vit_b",
        url="https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
        filename="sam_vit_l_0b3195.pth",
        size=1249524607,
        sha256="3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
    ),
    "vit_h": ModelInfo(
        name="vit_h",
        description="SAM ViT-H (2.6 GB): most accurate, about 5x slower than vit_b",
        url="https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
        filename="sam_vit_h_4b8939.pth",
        size=2564550879,
        sha256="a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
    ),
}


def _microsam_info(model: MicroSamModel) -> ModelInfo:
    return ModelInfo(
        name=model.name, description=model.description, url=model.url,
        filename=model.filename, size=None, sha256=None, domain=model.domain,
        xxh128=model.xxh128, decoder_url=model.decoder_url,
        decoder_filename=model.decoder_filename, decoder_xxh128=model.decoder_xxh128,
    )  # fmt: skip


REGISTRY.update({name: _microsam_info(m) for name, m in MICROSAM_MODELS.items()})


def cache_dir() -> Path:
    """The folder for checkpoints: ``$NAPARI_SEGANY_CACHE_DIR``, else the user cache dir."""
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("napari-segany", appauthor=False))


def list_models() -> list[ModelInfo]:
    """Every model ``load_model`` accepts by name: the official ones, grouped by domain as in
    :data:`MODEL_DOMAINS`, then imported ones."""
    folder = cache_dir()
    models = list(REGISTRY.values()) + sorted(_custom_models().values(), key=lambda m: m.name)
    models.sort(key=lambda m: MODEL_DOMAINS.index(m.domain) if m.domain in MODEL_DOMAINS else 99)
    return [replace(m, cached=_files_cached(m, folder)) for m in models]


def _files_cached(info: ModelInfo, folder: Path) -> bool:
    names = [info.filename] + ([info.decoder_filename] if info.decoder_filename else [])
    return all((folder / name).is_file() for name in names)


def _has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def is_registered(name: str) -> bool:
    """Whether ``name`` is an official or imported model name."""
    return name in REGISTRY or name in _custom_models()


def model_info(name: str) -> ModelInfo:
    """The registry entry for ``name``; ValueError naming the known models if there is none."""
    info = REGISTRY.get(name) or _custom_models().get(name)
    if info is None:
        known = ", ".join(m.name for m in list_models())
        raise ValueError(
            f"Unknown model {name!r}: it is neither a registered model name ({known}) nor an "
            "existing checkpoint file. Give one of those names, the path of a .pth/.pt file, "
            "or import a file with napari_segany.import_checkpoint(path)."
        )
    return info


def default_model() -> str:
    """``$NAPARI_SEGANY_MODEL`` (a registered name or a checkpoint path), else micro-sam's
    light-microscopy model: ``vit_b_lm`` on a machine with a CUDA GPU and ``vit_t_lm``
    without one.

    Raises ValueError when the variable names neither, rather than silently downloading
    another model than the one asked for.
    """
    value = os.environ.get(MODEL_ENV, "").strip()
    if not value:
        return DEFAULT_MODEL_GPU if _has_cuda() else DEFAULT_MODEL_CPU
    if is_registered(value):
        return value
    path = Path(value).expanduser()
    if path.is_file():
        return str(path)
    known = ", ".join(m.name for m in list_models())
    raise ValueError(
        f"{MODEL_ENV} is set to {value!r}, which is neither a registered model ({known}) nor an "
        f"existing checkpoint file. Fix or unset {MODEL_ENV}."
    )


def _custom_models() -> dict[str, ModelInfo]:
    models = {}
    for name, entry in read_json(CUSTOM_JSON).items():
        try:
            decoder = entry.get("decoder_filename")
            xxh128 = entry.get("xxh128")  # absent from imports made before it was recorded
            models[name] = ModelInfo(
                name=name,
                description=str(entry["description"]),
                url=None,
                filename=str(entry["filename"]),
                size=int(entry["size"]),
                sha256=str(entry["sha256"]),
                xxh128=None if xxh128 is None else str(xxh128),
                custom=True,
                domain=IMPORTED,
                decoder_filename=None if decoder is None else str(decoder),
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            _log.warning("Ignoring malformed entry %r in %s", name, cache_dir() / CUSTOM_JSON)
    return models


def read_json(filename: str) -> dict[str, Any]:
    path = cache_dir() / filename
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        _log.warning("Ignoring unreadable %s (%s)", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def write_json(filename: str, data: dict[str, Any]) -> None:
    """Write one of the cache folder's JSON records, whole or not at all."""
    write_text_atomic(cache_dir() / filename, json.dumps(data, indent=1, sort_keys=True))
