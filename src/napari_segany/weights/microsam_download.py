"""Downloads verified with xxh128 (micro-sam's hashes), and the SHA-256 recorded after.

``pooch.retrieve`` streams into a temporary file beside the destination, checks the hash
(``known_hash="xxh128:<hex>"``, which needs the ``xxhash`` package) and only then moves the
file into place; a file that fails is deleted. Once verified, its SHA-256 is computed and
recorded with its size and modification time in ``microsam/verified.json`` in the cache, so a
later check trusts an unchanged file without hashing it, and either hash can identify it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DownloadError, first_line
from ..progress import ProgressCallback
from .microsam import MICROSAM_MODELS, MicroSamModel

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
_CHUNK = 1 << 20
RECORD = "microsam/verified.json"


@dataclass(frozen=True)
class VerifiedFile:
    """A file whose xxh128 matched; sha256 is its hex SHA-256."""

    path: Path
    xxh128: str
    sha256: str


def fetch_microsam_model(
    name: str, progress: ProgressCallback | None = None, cache: Path | None = None
) -> tuple[Path, Path]:
    """The verified (checkpoint, decoder) files of micro-sam model ``name``, downloaded into
    the cache first when missing or changed. ValueError for an unknown name;
    :class:`DownloadError` when a download fails or a file does not match its hash."""
    model = _model(name)
    checkpoint, decoder = fetch_verified(
        [
            (model.filename, model.url, model.xxh128),
            (model.decoder_filename, model.decoder_url, model.decoder_xxh128),
        ],
        progress,
        cache,
    )
    return checkpoint, decoder


def fetch_verified(
    files: Sequence[tuple[str, str, str]],
    progress: ProgressCallback | None = None,
    cache: Path | None = None,
) -> list[Path]:
    """The cache's verified copy of each ``(filename, url, xxh128)``, downloading the files
    that are missing or changed (filename is relative to the cache folder)."""
    folder = cache if cache is not None else _cache_dir()
    paths = []
    for filename, url, digest in files:
        path = folder / filename
        if not (path.is_file() and verify_file(path, digest, folder) is None):
            if path.exists():
                path.unlink()  # changed or corrupt: fetch it again
            download_verified(url, path, digest, progress, cache=folder)
        paths.append(path)
    return paths


def download_verified(
    url: str,
    dest: str | os.PathLike,
    xxh128: str,
    progress: ProgressCallback | None = None,
    cache: Path | None = None,
) -> VerifiedFile:
    """Download ``url`` to ``dest``, which appears only once its xxh128 is ``xxh128``.

    progress(done_bytes, total_bytes) is called as the bytes arrive (total 0 when the server
    does not say). The SHA-256 of the verified file is recorded in the cache's record
    (``cache``: default the model cache) and returned.
    """
    import pooch
    import requests

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _require_xxhash()

    def fail(reason: str) -> DownloadError:
        return DownloadError(
            f"Could not download {dest.name} from {url}: {reason}. To install it without this "
            f"download, fetch that URL on a machine with internet and put the file in "
            f"{dest.parent} as {dest.name}.",
            url,
            dest,
        )

    try:
        pooch.retrieve(
            url,
            known_hash=f"xxh128:{xxh128}",
            fname=dest.name,
            path=dest.parent,
            downloader=_Transfer(progress),
        )
    except requests.exceptions.HTTPError as exc:
        response = exc.response
        status = f"{response.status_code} {response.reason}" if response is not None else exc
        raise fail(f"the server answered HTTP {status}") from None
    except requests.exceptions.RequestException as exc:
        raise fail(f"no connection, or it broke ({first_line(exc)[:200]})") from None
    except ValueError as exc:
        if "hash" not in str(exc).lower():
            raise
        raise fail(
            "the downloaded file's xxh128 does not match the published one (a corrupted "
            "transfer, or the file on the server changed), so it was discarded"
        ) from None
    sha256 = sha256_of(dest)
    _remember(dest, xxh128, sha256, cache)
    return VerifiedFile(dest, xxh128.lower(), sha256)


def verify_file(
    path: Path, xxh128: str | None = None, cache: Path | None = None, sha256: str | None = None
) -> str | None:
    """None when ``path`` is the expected file, else what is wrong with it.

    The expected file is named by its xxh128 or its SHA-256 (either will do). An unchanged
    file (same size and modification time as recorded at its verification) is trusted
    without hashing; otherwise it is hashed again (xxh128 when given: several times faster
    than SHA-256) and the record updated.
    """
    if xxh128 is None and sha256 is None:
        raise ValueError("Give the file's xxh128 or its SHA-256.")
    record = _records(cache).get(_key(path, cache))
    stat = path.stat()
    if record and record.get("size") == stat.st_size and record.get("mtime_ns") == stat.st_mtime_ns:
        if (xxh128 is None or record.get("xxh128") == xxh128.lower()) and (
            sha256 is None or record.get("sha256") == sha256.lower()
        ):
            return None
    if xxh128 is not None:
        actual = xxh128_of(path)
        if actual != xxh128.lower():
            return f"has xxh128 {actual} instead of {xxh128}"
        _remember(path, actual, sha256_of(path), cache)
        return None
    actual = sha256_of(path)
    if actual != sha256.lower():
        return f"has SHA-256 {actual} instead of {sha256}"
    return None


def xxh128_of(path: str | os.PathLike) -> str:
    _require_xxhash()
    import xxhash

    digest = xxhash.xxh128()
    with open(path, "rb") as f:
        while chunk := f.read(8 * _CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * _CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _Transfer:
    """The downloader handed to pooch: one streamed GET with progress in bytes."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress

    def __call__(self, url: str, output_file: Any, pooch_: Any, check_only: bool = False) -> None:
        import requests

        with requests.get(url, stream=True, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)) as r:
            r.raise_for_status()
            total = int(r.headers.get("Content-Length") or 0)
            done = 0
            if self.progress is not None:
                self.progress(0, total)
            with open(output_file, "wb") as out:
                for chunk in r.iter_content(_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if self.progress is not None:
                        self.progress(done, total)


def _model(name: str) -> MicroSamModel:
    model = MICROSAM_MODELS.get(name)
    if model is None:
        raise ValueError(
            f"Unknown micro-sam model {name!r}; the models are {', '.join(MICROSAM_MODELS)}."
        )
    return model


def _require_xxhash() -> None:
    try:
        import xxhash  # noqa: F401
    except ImportError:
        raise ImportError(
            "micro-sam's models are verified with xxh128 hashes, which need the xxhash "
            "package: pip install xxhash"
        ) from None


def _cache_dir() -> Path:
    from .registry import cache_dir

    return cache_dir()


def _record_path(cache: Path | None) -> Path:
    return (cache if cache is not None else _cache_dir()) / RECORD


def _records(cache: Path | None) -> dict[str, Any]:
    try:
        data = json.loads(_record_path(cache).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _key(path: Path, cache: Path | None) -> str:
    root = (cache if cache is not None else _cache_dir()).resolve()
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path.resolve())


def _remember(path: Path, xxh128: str, sha256: str, cache: Path | None) -> None:
    from ..atomic import write_text_atomic

    records = _records(cache)
    stat = path.stat()
    records[_key(path, cache)] = {
        "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "xxh128": xxh128.lower(),
        "sha256": sha256,
    }  # fmt: skip
    target = _record_path(cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, json.dumps(records, indent=1, sort_keys=True))
