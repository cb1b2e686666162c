"""Importing a checkpoint file the user already has, so it loads by name, offline."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import IO

from ..atomic import atomic_file
from ..errors import CheckpointError
from .download import CHUNK_BYTES, remember_verified
from .registry import CUSTOM_FOLDER, CUSTOM_JSON, REGISTRY, cache_dir, read_json, write_json


def import_checkpoint(path: str | os.PathLike) -> str:
    """Copy a checkpoint file into the cache so that ``load_model`` finds it by name, offline.

    A file whose SHA-256 is an official checkpoint's becomes that model (for instance
    ``vit_b``). Any other file must load as a SAM checkpoint; it becomes a custom model named
    after the file (``my_sam.pth`` -> ``my_sam``), replacing an earlier import of that name,
    and is listed by :func:`~napari_segany.list_models` from then on. Returns the model name.

    An instance decoder comes along: inside the file (a micro-sam training checkpoint's
    ``decoder_state``), or as micro-sam's ``<stem>_decoder<suffix>`` beside it, which is
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
        sha256 = _copy_hashing(source, out.handle)
        official = next((m for m in REGISTRY.values() if m.sha256 == sha256), None)
        if official is not None:
            out.target = folder / official.filename
        elif name in REGISTRY:
            raise ValueError(
                f"{source} is named like the official {name} model but its contents differ "
                f"(SHA-256 {sha256}). Rename the file to import it as a custom model."
            )
        else:
            # Validate before registering: strict loading catches any mismatch with SAM's layout.
            try:
                model = build_from_state_dict(read_checkpoint(source), source=str(source))
                decoder = _checked_decoder_beside(source, model)
            except CheckpointError as exc:
                raise CheckpointError(f"Not imported: {exc}") from None
    remember_verified(out.target, sha256)
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
        "sha256": sha256,
        "description": f"Imported from {source}",
    }
    if decoder is not None:
        decoder_name = f"{CUSTOM_FOLDER}/{name}_decoder{decoder.suffix}"
        with atomic_file(folder / decoder_name, part_folder=folder) as copy:
            _copy_hashing(decoder, copy.handle)
        customs[name]["decoder_filename"] = decoder_name
    write_json(CUSTOM_JSON, customs)
    return name


def _checked_decoder_beside(source: Path, model) -> Path | None:
    """micro-sam's decoder file beside ``source``, once it loads strictly for ``model``."""
    from .decoder_files import decoder_file_beside, read_decoder_file
    from .instance_decoder import attach_instance_decoder, build_instance_decoder

    decoder = decoder_file_beside(source)
    if decoder is not None:
        state = read_decoder_file(decoder)
        attach_instance_decoder(model, build_instance_decoder(state, str(decoder)))
    return decoder


def _copy_hashing(source: Path, out: IO[bytes]) -> str:
    """Copy ``source`` into ``out``, hashing it in the same pass; returns the hex SHA-256."""
    digest = hashlib.sha256()
    with open(source, "rb") as src:
        while chunk := src.read(8 * CHUNK_BYTES):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()
