"""Verified downloads of checkpoints into the cache, and checking the files already there.

Downloads go through ``pooch.retrieve``, which streams into a temporary file inside the cache
folder, checks the SHA-256 and only then moves the file into place (deleting it otherwise).
The HTTP transfer itself is a small downloader of ours handed to pooch, because pooch's own
reports progress in whole chunks rather than bytes and has a single timeout; ours reports
exact bytes to ``progress(done_bytes, total_bytes)`` and separates the connect timeout (so no
network fails within seconds) from the read timeout.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, DownloadError, first_line
from ..progress import ProgressCallback
from .registry import VERIFIED_JSON, ModelInfo, cache_dir, model_info, read_json, write_json

# Seconds to wait for a connection (short: an offline machine should hear so quickly) and
# between two reads of an open transfer (long enough for slow mirrors).
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
CHUNK_BYTES = 1 << 20

_log = logging.getLogger(__name__)


def checkpoint_for(name: str, progress: ProgressCallback | None = None) -> Path:
    """The verified checkpoint file of model ``name``, downloaded first if not cached.

    progress(done_bytes, total_bytes) is called during a download (total is 0 when unknown);
    an exception raised from it cancels the download and leaves nothing behind.
    Raises ValueError for an unknown name and :class:`DownloadError` when a needed download
    fails.
    """
    info = model_info(name)
    if info.xxh128 is not None:
        return _fetch_with_decoder(info, progress)
    path = cache_dir() / info.filename
    note = ""
    if path.exists():
        problem = _verification_problem(path, info.size, info.sha256)
        if problem is None:
            return path
        if info.url is None:
            raise CheckpointError(
                f"The file of imported model {name!r}, {path}, {problem} since it was imported. "
                "Import the checkpoint again with napari_segany.import_checkpoint(path)."
            )
        _log.warning("Removing %s: %s. Downloading it again.", path, problem)
        path.unlink()
        note = f" (the file that was there {problem}, so it was removed)"
    elif info.url is None:
        raise FileNotFoundError(
            f"The file of imported model {name!r} is missing from {path.parent}. Import the "
            "checkpoint again with napari_segany.import_checkpoint(path)."
        )
    return download_file(info.url, path, info.sha256, progress, size=info.size, note=note)


def decoder_for(name: str) -> Path | None:
    """The cached instance decoder file of registered model ``name`` (fetched with its
    checkpoint by :func:`checkpoint_for`), or None for a model without one."""
    info = model_info(name)
    return None if info.decoder_filename is None else cache_dir() / info.decoder_filename


def _fetch_with_decoder(info: ModelInfo, progress: ProgressCallback | None) -> Path:
    """micro-sam's two files, verified with the xxh128 it publishes; the checkpoint's path."""
    from .microsam_download import fetch_verified

    files = [(info.filename, info.url, info.xxh128)]
    if info.decoder_filename is not None:
        files.append((info.decoder_filename, info.decoder_url, info.decoder_xxh128))
    return fetch_verified(files, progress)[0]


def download_file(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None,
    progress: ProgressCallback | None = None,
    *,
    size: int | None = None,
    note: str = "",
) -> Path:
    """Download ``url`` to ``dest``, which appears only once its SHA-256 matches ``sha256``.

    size: the expected byte count, used for the disk-space check and as the progress total
    when the server does not announce one. Raises :class:`DownloadError` on any failure.
    """
    import pooch
    import requests

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)

    def fail(reason: str) -> DownloadError:
        return DownloadError(
            f"Could not download {dest.name} from {url}: {reason}{note}. To install it without "
            f"this download, fetch that URL on any machine with internet and put the file in "
            f"{dest.parent} as {dest.name}, or load it with napari_segany.import_checkpoint(path).",
            url,
            dest,
        )

    if size:
        free = shutil.disk_usage(dest.parent).free
        if free < size:
            raise fail(f"only {_mb(free)} free on disk in {dest.parent}, {_mb(size)} needed")
    transfer = _Transfer(progress, size)
    try:
        pooch.retrieve(
            url,
            known_hash=f"sha256:{sha256}" if sha256 else None,
            fname=dest.name,
            path=dest.parent,
            downloader=transfer,
        )
    except requests.exceptions.HTTPError as exc:
        response = exc.response
        status = f"{response.status_code} {response.reason}" if response is not None else exc
        raise fail(f"the server answered HTTP {status}") from None
    except requests.exceptions.Timeout:
        raise fail(
            f"the server did not answer within {READ_TIMEOUT_S:g} s (connect timeout "
            f"{CONNECT_TIMEOUT_S:g} s)"
        ) from None
    except requests.exceptions.RequestException as exc:
        if transfer.connected:
            raise fail(
                f"the connection broke after {transfer.done} of {transfer.total or '?'} bytes"
            ) from None
        detail = _network_detail(exc)
        raise fail(
            f"no connection to the server; are you offline or behind a proxy? ({detail})"
        ) from None
    except ValueError as exc:
        if "hash" not in str(exc).lower():
            raise
        raise fail(
            "the downloaded file's SHA-256 does not match the registered one (a corrupted "
            "transfer, or the file on the server changed), so it was discarded"
        ) from None
    except OSError as exc:
        raise fail(f"{type(exc).__name__}: {first_line(exc)}") from None
    if sha256:
        remember_verified(dest, sha256)
    return dest


class _Transfer:
    """The downloader handed to pooch: one streamed GET with exact-byte progress."""

    def __init__(self, progress: ProgressCallback | None, size: int | None) -> None:
        self.progress = progress
        self.connected = False
        self.done = 0
        self.total = size or 0

    def __call__(self, url: str, output_file: str, pooch_: Any, check_only: bool = False) -> None:
        import requests

        timeout = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
        with requests.get(url, stream=True, timeout=timeout) as response:
            response.raise_for_status()
            self.connected = True
            self.total = int(response.headers.get("Content-Length") or 0) or self.total
            if self.progress is not None:
                self.progress(0, self.total)
            with open(output_file, "wb") as out:
                for chunk in response.iter_content(CHUNK_BYTES):
                    out.write(chunk)
                    self.done += len(chunk)
                    if self.progress is not None:
                        self.progress(self.done, self.total)


# ---- verification --------------------------------------------------------------------------


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _verification_problem(path: Path, size: int | None, sha256: str | None) -> str | None:
    """None when ``path`` is the expected file, else what is wrong with it (for messages)."""
    stat = path.stat()
    if size is not None and stat.st_size != size:
        return f"has {stat.st_size} bytes instead of {size}"
    if sha256 is None:
        return None
    record = read_json(VERIFIED_JSON).get(_record_key(path))
    if record == _stat_record(path, sha256):
        return None
    actual = sha256_of(path)
    if actual != sha256.lower():
        return f"has SHA-256 {actual} instead of {sha256}"
    remember_verified(path, actual)
    return None


def _stat_record(path: Path, sha256: str) -> dict[str, Any]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256.lower()}


def remember_verified(path: Path, sha256: str) -> None:
    records = read_json(VERIFIED_JSON)
    records[_record_key(path)] = _stat_record(path, sha256)
    write_json(VERIFIED_JSON, records)


def _record_key(path: Path) -> str:
    try:
        return path.resolve().relative_to(cache_dir().resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def _network_detail(exc: BaseException) -> str:
    """The useful end of requests' nested connection errors ("[Errno 111] Connection refused")."""
    text = str(exc)
    found = re.search(r"Failed to resolve '[^']*'|\[Errno -?\d+\][^'\")]*", text)
    return found.group(0).strip() if found else first_line(exc)[:200]


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.0f} MB"
