"""Verified downloads of model files into the cache, and checking the files already there.

Every model file is verified by a hash its publisher gives: SAM's by SHA-256, micro-sam's by
xxh128. Downloads go through ``pooch.retrieve``, which streams into a temporary file inside
the cache folder, checks the hash and only then moves the file into place (deleting it
otherwise). The HTTP transfer itself is a small downloader of ours handed to pooch, because
pooch's own reports progress in whole chunks rather than bytes and has a single timeout; ours
reports exact bytes to ``progress(done_bytes, total_bytes)``, separates the connect timeout
(so no network fails within seconds) from the read timeout, and hashes the bytes as they
arrive.

Once a file is verified, both of its hashes are recorded with its size and modification time
in ``verified.json`` in the cache, so a later check trusts the unchanged file without hashing
it again (a 2.5 GB checkpoint is hashed once, not at every start) and either hash can name it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import xxhash

from ..errors import CheckpointError, DownloadError, first_line
from ..progress import ProgressCallback
from .registry import VERIFIED_JSON, cache_dir, model_info, read_json, write_json

# Seconds to wait for a connection (short: an offline machine should hear so quickly) and
# between two reads of an open transfer (long enough for slow mirrors).
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
CHUNK_BYTES = 1 << 20
# pooch's names of the hashes in a known_hash spec ("sha256:<hex>"), and ours for messages.
_HASH_LABELS = {"sha256": "SHA-256", "xxh128": "xxh128"}

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileHashes:
    """The hex SHA-256 and xxh128 of a file: either identifies a verified model file."""

    sha256: str
    xxh128: str


class Hashing:
    """Both hashes of a stream of bytes, computed in one pass over it."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._xxh128 = xxhash.xxh128()

    def update(self, chunk: bytes) -> None:
        self._sha256.update(chunk)
        self._xxh128.update(chunk)

    def hashes(self) -> FileHashes:
        return FileHashes(self._sha256.hexdigest(), self._xxh128.hexdigest())


def checkpoint_for(name: str, progress: ProgressCallback | None = None) -> Path:
    """The verified checkpoint file of model ``name``, downloaded first if not cached; for
    micro-sam's models their instance decoder file too (see :func:`decoder_for`).

    progress(done_bytes, total_bytes) is called during a download (total is 0 when unknown);
    an exception raised from it cancels the download and leaves nothing behind.
    Raises ValueError for an unknown name and :class:`DownloadError` when a needed download
    fails.
    """
    info = model_info(name)
    path = _cached_or_downloaded(
        name, info.filename, info.url, progress, sha256=info.sha256, xxh128=info.xxh128,
        size=info.size,
    )  # fmt: skip
    # An imported model's decoder has no published hash: loading only checks that it is there.
    if info.decoder_filename is not None and info.decoder_url is not None:
        _cached_or_downloaded(
            name, info.decoder_filename, info.decoder_url, progress, xxh128=info.decoder_xxh128
        )
    return path


def decoder_for(name: str) -> Path | None:
    """The cached instance decoder file of registered model ``name`` (fetched with its
    checkpoint by :func:`checkpoint_for`), or None for a model without one."""
    info = model_info(name)
    return None if info.decoder_filename is None else cache_dir() / info.decoder_filename


def _cached_or_downloaded(
    name: str,
    filename: str,
    url: str | None,
    progress: ProgressCallback | None,
    *,
    sha256: str | None = None,
    xxh128: str | None = None,
    size: int | None = None,
) -> Path:
    """The cache's verified ``filename`` of model ``name``; a missing or changed file is
    downloaded from ``url`` again, or, for an imported model (no url), is an error that says
    to import it again."""
    path = cache_dir() / filename
    note = ""
    if path.exists():
        problem = verify_file(path, sha256=sha256, xxh128=xxh128, size=size)
        if problem is None:
            return path
        if url is None:
            raise CheckpointError(
                f"The file of imported model {name!r}, {path}, {problem} since it was imported. "
                "Import the checkpoint again with napari_segany.import_checkpoint(path)."
            )
        _log.warning("Removing %s: %s. Downloading it again.", path, problem)
        path.unlink()
        note = f" (the file that was there {problem}, so it was removed)"
    elif url is None:
        raise FileNotFoundError(
            f"The file of imported model {name!r} is missing from {path.parent}. Import the "
            "checkpoint again with napari_segany.import_checkpoint(path)."
        )
    # xxh128 first where both are known: it is several times faster to check.
    known_hash = f"xxh128:{xxh128}" if xxh128 else f"sha256:{sha256}" if sha256 else None
    return download_file(url, path, known_hash, progress, size=size, note=note)


def download_file(
    url: str,
    dest: str | os.PathLike,
    known_hash: str | None,
    progress: ProgressCallback | None = None,
    *,
    size: int | None = None,
    note: str = "",
) -> Path:
    """Download ``url`` to ``dest``, which appears only once its hash matches ``known_hash``.

    known_hash: pooch's spec, ``"sha256:<hex>"`` or ``"xxh128:<hex>"`` (None: not checked,
    and then not recorded as verified). size: the expected byte count, used for the
    disk-space check and as the progress total when the server does not announce one.
    note: added to a failure's reason. Raises :class:`DownloadError` on any failure.
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
            url, known_hash=known_hash, fname=dest.name, path=dest.parent, downloader=transfer
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
        label = _HASH_LABELS.get(str(known_hash).partition(":")[0], "hash")
        raise fail(
            f"the downloaded file's {label} does not match the registered one (a corrupted "
            "transfer, or the file on the server changed), so it was discarded"
        ) from None
    except OSError as exc:
        raise fail(f"{type(exc).__name__}: {first_line(exc)}") from None
    if known_hash:
        # pooch keeps a file already there that matches without calling the downloader.
        remember_verified(dest, transfer.hashes() or file_hashes(dest))
    return dest


class _Transfer:
    """The downloader handed to pooch: one streamed GET with exact-byte progress, hashing the
    bytes as they arrive so that recording the verified file needs no second read of it."""

    def __init__(self, progress: ProgressCallback | None, size: int | None) -> None:
        self.progress = progress
        self.connected = False
        self.done = 0
        self.total = size or 0
        self._hashing: Hashing | None = None

    def __call__(self, url: str, output_file: str, pooch_: Any, check_only: bool = False) -> None:
        import requests

        timeout = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
        with requests.get(url, stream=True, timeout=timeout) as response:
            response.raise_for_status()
            self.connected = True
            self.total = int(response.headers.get("Content-Length") or 0) or self.total
            self._hashing = Hashing()
            if self.progress is not None:
                self.progress(0, self.total)
            with open(output_file, "wb") as out:
                for chunk in response.iter_content(CHUNK_BYTES):
                    out.write(chunk)
                    self._hashing.update(chunk)
                    self.done += len(chunk)
                    if self.progress is not None:
                        self.progress(self.done, self.total)

    def hashes(self) -> FileHashes | None:
        """The hashes of the bytes received, or None when nothing was transferred."""
        return None if self._hashing is None else self._hashing.hashes()


# ---- verification --------------------------------------------------------------------------


def file_hashes(path: str | os.PathLike, copy_to: IO[bytes] | None = None) -> FileHashes:
    """Both hashes of a file, read once in chunks; ``copy_to`` receives a copy on the way."""
    hashing = Hashing()
    with open(path, "rb") as f:
        while chunk := f.read(8 * CHUNK_BYTES):
            hashing.update(chunk)
            if copy_to is not None:
                copy_to.write(chunk)
    return hashing.hashes()


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file."""
    return file_hashes(path).sha256


def xxh128_of(path: str | os.PathLike) -> str:
    """Hex xxh128 of a file."""
    return file_hashes(path).xxh128


def verify_file(
    path: str | os.PathLike,
    *,
    sha256: str | None = None,
    xxh128: str | None = None,
    size: int | None = None,
) -> str | None:
    """None when ``path`` is the expected file, else what is wrong with it (for messages).

    The expected file is named by its SHA-256, its xxh128 or both, and optionally its size.
    An unchanged file (same size and modification time as recorded at its verification) is
    trusted without hashing; otherwise it is hashed again and, if it matches, recorded.
    """
    if sha256 is None and xxh128 is None:
        raise ValueError("Give the file's SHA-256 or its xxh128.")
    path = Path(path)
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return f"has {actual_size} bytes instead of {size}"
    expected = {"sha256": sha256, "xxh128": xxh128}
    recorded = recorded_hashes(path)
    if recorded is not None and _matches(asdict(recorded), expected):
        return None
    actual = file_hashes(path)
    for kind, digest in expected.items():
        if digest is not None and getattr(actual, kind) != digest.lower():
            return f"has {_HASH_LABELS[kind]} {getattr(actual, kind)} instead of {digest}"
    remember_verified(path, actual)
    return None


def _matches(hashes: dict[str, str], expected: dict[str, str | None]) -> bool:
    return all(d is None or hashes.get(k) == d.lower() for k, d in expected.items())


def recorded_hashes(path: str | os.PathLike) -> FileHashes | None:
    """The hashes recorded at the verification of ``path``, or None when it was never
    verified or has changed since (another size or modification time)."""
    path = Path(path)
    record = read_json(VERIFIED_JSON).get(_record_key(path))
    if not isinstance(record, dict):
        return None
    stat = path.stat()
    if (record.get("size"), record.get("mtime_ns")) != (stat.st_size, stat.st_mtime_ns):
        return None
    try:
        return FileHashes(sha256=str(record["sha256"]), xxh128=str(record["xxh128"]))
    except KeyError:
        return None  # a record from before both hashes were kept: hash it once more


def remember_verified(path: str | os.PathLike, hashes: FileHashes) -> None:
    """Record that ``path``, as it is now, is the verified file with these ``hashes``."""
    path = Path(path)
    stat = path.stat()
    records = read_json(VERIFIED_JSON)
    record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, **asdict(hashes)}
    records[_record_key(path)] = record
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
