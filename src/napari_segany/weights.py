"""Model names -> checkpoint files: the registry, the cache folder, verified downloads, imports.

Downloads go through ``pooch.retrieve``, which streams into a temporary file inside the cache
folder, checks the SHA-256 and only then moves the file into place (deleting it otherwise).
The HTTP transfer itself is a small downloader of ours handed to pooch, because pooch's own
reports progress in whole chunks rather than bytes and has a single timeout; ours reports
exact bytes to ``progress(done_bytes, total_bytes)`` and separates the connect timeout (so no
network fails within seconds) from the read timeout.

The cache folder holds the official checkpoints under their official file names, imported
custom checkpoints under ``custom/``, ``verified.json`` (size, mtime and SHA-256 of every file
already hashed on this machine, so a 2.5 GB checkpoint is hashed once, not at every start) and
``custom_models.json`` (the imported models).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import first_line

ProgressCallback = Callable[[int, int], None]

CACHE_ENV = "NAPARI_SEGANY_CACHE_DIR"
MODEL_ENV = "NAPARI_SEGANY_MODEL"
DEFAULT_MODEL = "vit_b"

# Seconds to wait for a connection (short: an offline machine should hear so quickly) and
# between two reads of an open transfer (long enough for slow mirrors).
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
CHUNK_BYTES = 1 << 20

_VERIFIED_JSON = "verified.json"
_CUSTOM_JSON = "custom_models.json"
_CUSTOM_FOLDER = "custom"

_log = logging.getLogger(__name__)


class DownloadError(OSError):
    """A checkpoint could not be downloaded; the message says where to put it by hand."""

    def __init__(self, message: str, url: str = "", path: Path | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.path = path


@dataclass(frozen=True)
class ModelInfo:
    """A model that ``load_model`` knows by name.

    filename is relative to :func:`cache_dir`; url is None for imported (custom) models;
    cached tells whether the file is in the cache now (as seen by :func:`list_models`).
    """

    name: str
    description: str
    url: str | None
    filename: str
    size: int | None
    sha256: str | None
    custom: bool = False
    cached: bool = False


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
        description="SAM ViT-B (375 MB): the default, good masks at moderate speed",
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


# ---- names ---------------------------------------------------------------------------------


def cache_dir() -> Path:
    """The folder for checkpoints: ``$NAPARI_SEGANY_CACHE_DIR``, else the user cache dir."""
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("napari-segany", appauthor=False))


def list_models() -> list[ModelInfo]:
    """Every model ``load_model`` accepts by name: the official ones, then imported ones."""
    folder = cache_dir()
    models = list(REGISTRY.values()) + sorted(_custom_models().values(), key=lambda m: m.name)
    return [replace(m, cached=(folder / m.filename).is_file()) for m in models]


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
    """``$NAPARI_SEGANY_MODEL`` (a registered name or a checkpoint path), else ``vit_b``.

    Raises ValueError when the variable names neither, rather than silently downloading
    another model than the one asked for.
    """
    value = os.environ.get(MODEL_ENV, "").strip()
    if not value:
        return DEFAULT_MODEL
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


# ---- checkpoints ---------------------------------------------------------------------------


def checkpoint_for(name: str, progress: ProgressCallback | None = None) -> Path:
    """The verified checkpoint file of model ``name``, downloaded first if not cached.

    progress(done_bytes, total_bytes) is called during a download (total is 0 when unknown);
    an exception raised from it cancels the download and leaves nothing behind.
    Raises ValueError for an unknown name and :class:`DownloadError` when a needed download
    fails.
    """
    info = model_info(name)
    path = cache_dir() / info.filename
    note = ""
    if path.exists():
        problem = _verification_problem(path, info.size, info.sha256)
        if problem is None:
            return path
        if info.url is None:
            from .checkpoint import CheckpointError

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
        _remember_verified(dest, sha256)
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
    record = _read_json(_VERIFIED_JSON).get(_record_key(path))
    if record == _stat_record(path, sha256):
        return None
    actual = sha256_of(path)
    if actual != sha256.lower():
        return f"has SHA-256 {actual} instead of {sha256}"
    _remember_verified(path, actual)
    return None


def _stat_record(path: Path, sha256: str) -> dict[str, Any]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256.lower()}


def _remember_verified(path: Path, sha256: str) -> None:
    records = _read_json(_VERIFIED_JSON)
    records[_record_key(path)] = _stat_record(path, sha256)
    _write_json(_VERIFIED_JSON, records)


def _record_key(path: Path) -> str:
    try:
        return path.resolve().relative_to(cache_dir().resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


# ---- imports -------------------------------------------------------------------------------


def import_checkpoint(path: str | os.PathLike) -> str:
    """Copy a checkpoint file into the cache so that ``load_model`` finds it by name, offline.

    A file whose SHA-256 is an official checkpoint's becomes that model (for instance
    ``vit_b``). Any other file must load as a SAM checkpoint; it becomes a custom model named
    after the file (``my_sam.pth`` -> ``my_sam``), replacing an earlier import of that name,
    and is listed by :func:`list_models` from then on. Returns the model name.
    """
    from .checkpoint import CheckpointError, build_from_state_dict, read_checkpoint

    source = Path(path).expanduser()
    if not source.is_file():
        raise FileNotFoundError(f"Checkpoint file not found: {source}")
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tmp, sha256 = _copy_hashing(source, folder)
    try:
        official = next((m for m in REGISTRY.values() if m.sha256 == sha256), None)
        if official is not None:
            dest = folder / official.filename
            os.replace(tmp, dest)
            _remember_verified(dest, sha256)
            return official.name

        name = source.stem
        if name in REGISTRY:
            raise ValueError(
                f"{source} is named like the official {name} model but its contents differ "
                f"(SHA-256 {sha256}). Rename the file to import it as a custom model."
            )
        # Validate before registering: strict loading catches any mismatch with SAM's layout.
        try:
            build_from_state_dict(read_checkpoint(source), source=str(source))
        except CheckpointError as exc:
            raise CheckpointError(f"Not imported: {exc}") from None
        filename = f"{_CUSTOM_FOLDER}/{name}{source.suffix or '.pth'}"
        dest = folder / filename
        dest.parent.mkdir(exist_ok=True)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    _remember_verified(dest, sha256)
    customs = _read_json(_CUSTOM_JSON)
    previous = customs.get(name)
    previous = previous.get("filename") if isinstance(previous, dict) else None
    if isinstance(previous, str) and previous != filename:
        (folder / previous).unlink(missing_ok=True)  # an earlier import with another suffix
    customs[name] = {
        "filename": filename,
        "size": dest.stat().st_size,
        "sha256": sha256,
        "description": f"Imported from {source}",
    }
    _write_json(_CUSTOM_JSON, customs)
    return name


def _copy_hashing(source: Path, folder: Path) -> tuple[Path, str]:
    """Copy ``source`` to a temporary file in ``folder``, hashing it in the same pass."""
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{source.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            while chunk := src.read(8 * CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, digest.hexdigest()


def _custom_models() -> dict[str, ModelInfo]:
    models = {}
    for name, entry in _read_json(_CUSTOM_JSON).items():
        try:
            models[name] = ModelInfo(
                name=name,
                description=str(entry["description"]),
                url=None,
                filename=str(entry["filename"]),
                size=int(entry["size"]),
                sha256=str(entry["sha256"]),
                custom=True,
            )
        except (KeyError, TypeError, ValueError):
            _log.warning("Ignoring malformed entry %r in %s", name, cache_dir() / _CUSTOM_JSON)
    return models


# ---- small helpers -------------------------------------------------------------------------


def _read_json(filename: str) -> dict[str, Any]:
    path = cache_dir() / filename
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        _log.warning("Ignoring unreadable %s (%s)", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(filename: str, data: dict[str, Any]) -> None:
    # Written to a temporary name and renamed, so a crash never leaves half a JSON file.
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, folder / filename)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _network_detail(exc: BaseException) -> str:
    """The useful end of requests' nested connection errors ("[Errno 111] Connection refused")."""
    text = str(exc)
    found = re.search(r"Failed to resolve '[^']*'|\[Errno -?\d+\][^'\")]*", text)
    return found.group(0).strip() if found else first_line(exc)[:200]


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.0f} MB"
