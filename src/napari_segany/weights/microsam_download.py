"""micro-sam's models by name: both files of one, and a download checked by the xxh128 it
publishes. The downloads and their verification are :mod:`.download`'s, as for every model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..progress import ProgressCallback
from .download import checkpoint_for, download_file, file_hashes, recorded_hashes
from .download import verify_file as verify_file
from .microsam import MICROSAM_MODELS
from .registry import cache_dir


@dataclass(frozen=True)
class VerifiedFile:
    """A downloaded file whose xxh128 matched; sha256 is its hex SHA-256 (recorded too)."""

    path: Path
    xxh128: str
    sha256: str


def fetch_microsam_model(name: str, progress: ProgressCallback | None = None) -> tuple[Path, Path]:
    """The verified (checkpoint, decoder) files of micro-sam model ``name``, downloaded into
    the cache first when missing or changed. ValueError for an unknown name;
    :class:`DownloadError` when a download fails or a file does not match its hash."""
    if name not in MICROSAM_MODELS:
        raise ValueError(
            f"Unknown micro-sam model {name!r}; the models are {', '.join(MICROSAM_MODELS)}."
        )
    checkpoint = checkpoint_for(name, progress)  # fetches and verifies the decoder too
    return checkpoint, cache_dir() / MICROSAM_MODELS[name].decoder_filename


def download_verified(
    url: str, dest: str | os.PathLike, xxh128: str, progress: ProgressCallback | None = None
) -> VerifiedFile:
    """Download ``url`` to ``dest``, which appears only once its xxh128 is ``xxh128``; both
    of its hashes are recorded for later checks and returned."""
    path = download_file(url, dest, f"xxh128:{xxh128}", progress)
    hashes = recorded_hashes(path) or file_hashes(path)
    return VerifiedFile(path, hashes.xxh128, hashes.sha256)
