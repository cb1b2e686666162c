"""Importing a checkpoint file the user already has, so it loads by name, offline."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..atomic import atomic_file
from ..errors import CheckpointError
from .download import FileHashes, file_hashes, remember_verified
from .registry import (
    CUSTOM_FOLDER,
    CUSTOM_JSON,
    REGISTRY,
    ModelInfo,
    cache_dir,
    read_json,
    write_json,
)

_log = logging.getLogger(__name__)


def import_checkpoint(path: str | os.PathLike) -> str:
    """Copy a checkpoint file into the cache so that ``load_model`` finds it by name, offline.

    A file with an official model's published hash (SHA-256 for SAM's, xxh128 for
    micro-sam's) becomes that model (for instance ``vit_b`` or ``vit_b_lm``); a micro-sam
    model's decoder comes with it from micro-sam's ``<stem>_decoder<suffix>`` beside it, once
    its xxh128 is the published one. A file named like an official model whose contents are
    not that model's is refused. Any other file must load as a SAM checkpoint; it becomes a
    custom model named after the file (``my_sam.pth`` -> ``my_sam``), replacing an earlier
    import of that name, and is listed by :func:`~napari_segany.list_models` from then on.
    Returns the model name.

    A custom model's instance decoder comes along too: inside the file (a micro-sam training
    checkpoint's ``decoder_state``), or as ``<stem>_decoder<suffix>`` beside it, which is
    checked against the checkpoint and copied with it.
    """
    from .checkpoint import build_from_state_dict, read_checkpoint

    source = Path(path).expanduser()
    if not source.is_file():
        raise FileNotFoundError(f"Checkpoint file not found: {source}")
    folder = cache_dir()
    name = source.stem
    filename = f"{CUSTOM_FOLDER}/{name}{source.suffix or '.pth'}"
    with atomic_file(folder / filename, part_folder=folder) as out:
        hashes = file_hashes(source, copy_to=out.handle)
        official = _official_model(hashes)
        if official is not None:
            out.target = folder / official.filename
            # Inside this block: a refused decoder discards the checkpoint's copy too.
            _import_official_decoder(source, official)
        elif name in REGISTRY:
            raise ValueError(
                f"{source} is named like the official {name} model but its contents differ "
                f"(SHA-256 {hashes.sha256}, xxh128 {hashes.xxh128}: neither is a registered "
                "model's). If it should be the published file, it is damaged: download it again. "
                "Rename the file to import it as a custom model."
            )
        else:
            # Validate before registering: strict loading catches any mismatch with SAM's layout.
            try:
                model = build_from_state_dict(read_checkpoint(source), source=str(source))
                decoder = _checked_decoder_beside(source, model)
            except CheckpointError as exc:
                raise CheckpointError(f"Not imported: {exc}") from None
    remember_verified(out.target, hashes)
    if official is not None:
        return official.name

    customs = read_json(CUSTOM_JSON)
    previous = customs.get(name)
    previous = previous.get("filename") if isinstance(previous, dict) else None
    if isinstance(previous, str) and previous != filename:
        (folder / previous).unlink(missing_ok=True)  # an earlier import with another suffix
    customs[name] = {
        "filename": filename,
        "size": out.target.stat().st_size,
        "sha256": hashes.sha256,
        "xxh128": hashes.xxh128,
        "description": f"Imported from {source}",
    }
    if decoder is not None:
        decoder_name = f"{CUSTOM_FOLDER}/{name}_decoder{decoder.suffix}"
        _copy_verified(decoder, folder / decoder_name)
        customs[name]["decoder_filename"] = decoder_name
    write_json(CUSTOM_JSON, customs)
    return name


def _official_model(hashes: FileHashes) -> ModelInfo | None:
    """The registered model whose published hash the file has: SAM's publish a SHA-256,
    micro-sam's only an xxh128."""
    return next(
        (m for m in REGISTRY.values() if hashes.sha256 == m.sha256 or hashes.xxh128 == m.xxh128),
        None,
    )


def _import_official_decoder(source: Path, official: ModelInfo) -> None:
    """Copy the decoder file beside ``source`` into the cache as ``official``'s, when the
    model has one; ValueError (nothing copied) when that file is not its published decoder.

    Without a decoder file beside it, only the checkpoint is imported and the decoder is
    downloaded when the model is first loaded.
    """
    from .decoder_files import DECODER_SUFFIX, decoder_file_beside

    if official.decoder_filename is None:
        return
    target = cache_dir() / official.decoder_filename
    decoder = decoder_file_beside(source)
    if decoder is None:
        if not target.is_file():
            _log.warning(
                "%s is the official %s checkpoint, but its decoder file (%s) is not beside it: "
                "the decoder will be downloaded when the model is first loaded.",
                source, official.name, f"{source.stem}{DECODER_SUFFIX}{source.suffix}",
            )  # fmt: skip
        return
    with atomic_file(target, part_folder=cache_dir()) as copy:
        hashes = file_hashes(decoder, copy_to=copy.handle)
        if hashes.xxh128 != official.decoder_xxh128:
            raise ValueError(
                f"{source} is the official {official.name} checkpoint, but {decoder.name} "
                f"beside it is not its published decoder (xxh128 {hashes.xxh128} instead of "
                f"{official.decoder_xxh128}): nothing was imported. Download the decoder again, "
                "or move it away to import the checkpoint alone."
            )
    remember_verified(target, hashes)


def _checked_decoder_beside(source: Path, model) -> Path | None:
    """micro-sam's decoder file beside ``source``, once it loads strictly for ``model``."""
    from .decoder_files import decoder_file_beside, read_decoder_file
    from .instance_decoder import attach_instance_decoder, build_instance_decoder

    decoder = decoder_file_beside(source)
    if decoder is not None:
        state = read_decoder_file(decoder)
        attach_instance_decoder(model, build_instance_decoder(state, str(decoder)))
    return decoder


def _copy_verified(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` whole or not at all, and record its hashes."""
    with atomic_file(target, part_folder=cache_dir()) as copy:
        hashes = file_hashes(source, copy_to=copy.handle)
    remember_verified(target, hashes)
