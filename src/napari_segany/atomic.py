"""Files that appear whole or not at all: written under a temporary name, then renamed.

A reader never sees half a file, and a crash or a kill leaves at most a stray ``.part`` file
next to where the file belongs, never a broken file under its real name.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


class AtomicFile:
    """The temporary file behind :func:`atomic_file`: ``handle`` to write to, ``part`` its
    path (readable once flushed, e.g. to validate it), ``target`` where it goes on success
    (reassignable until then)."""

    def __init__(self, handle: IO[Any], part: Path, target: Path) -> None:
        self.handle = handle
        self.part = part
        self.target = target


@contextmanager
def atomic_file(
    path: str | os.PathLike, mode: str = "wb", part_folder: str | os.PathLike | None = None
) -> Iterator[AtomicFile]:
    """Open a fresh ``.<name>.<random>.part`` next to ``path`` (or in ``part_folder``, on the
    same file system); on a normal exit it is flushed to disk and renamed onto ``out.target``
    (``path`` unless reassigned), on an error deleted.
    """
    target = Path(path)
    folder = Path(part_folder) if part_folder is not None else target.parent
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f".{target.name}.{uuid.uuid4().hex[:12]}.part"
    # "x": a new file with the user's umask (mkstemp's would be private to them, which
    # breaks stores shared between users).
    handle = open(part, mode.replace("w", "x"))
    out = AtomicFile(handle, part, target)
    try:
        yield out
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        out.target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, out.target)
    except BaseException:
        handle.close()
        part.unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write a file through ``write(handle)`` so that it appears whole or not at all."""
    with atomic_file(path) as out:
        write(out.handle)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text so that it appears whole or not at all."""
    data = text.encode("utf-8")
    return write_atomic(path, lambda f: f.write(data))
