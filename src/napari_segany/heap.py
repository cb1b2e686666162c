"""Freed memory kept for reuse through a long loop of same-sized work (glibc's malloc).

Each plane of a propagation allocates and frees the same few tensors: a batch of ten objects
holds (10, 4096, 256) image tokens, 40 MB each, several times a plane. glibc hands every block
above its mmap threshold (which it raises to at most 32 MiB) straight back to the system, so
each plane faults in hundreds of MB of fresh zeroed pages: measured, 40% of a ten-object
plane's decoding on a CPU. Inside :func:`reusing_freed_memory` (one plane's work), large
blocks come from the heap and stay there when freed, so the next plane's reuse them. On
leaving, the thresholds are set to the values glibc's own adjustment tends to (32 MiB, and
twice that for trimming); what the heap holds then is reused by later allocations, or handed
back by :func:`release_freed_memory` at the end of the loop. A scope never spans a ``yield``:
a generator left suspended or never closed cannot leave the process keeping its memory.

Elsewhere than glibc (macOS, Windows, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
# Inside: blocks up to 2 GiB come from the heap, and freed memory is never trimmed (mallopt
# takes a C int).
_KEEP = 2**31 - 1
# On leaving: glibc's largest dynamic mmap threshold on 64-bit systems, and its trim threshold.
_MMAP_AFTER = 32 << 20
_TRIM_AFTER = 2 * _MMAP_AFTER

_lock = threading.Lock()
_depth = 0


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
    except OSError:
        return None
    # Only glibc has gnu_get_libc_version; other libcs' mallopt options differ.
    wanted = ("gnu_get_libc_version", "mallopt", "malloc_trim")
    return libc if all(hasattr(libc, f) for f in wanted) else None


def supported() -> bool:
    """Whether this process's allocator is glibc's, which :func:`reusing_freed_memory` tunes."""
    return _glibc() is not None


def in_use() -> bool:
    """Whether some work is inside :func:`reusing_freed_memory` now."""
    return _depth > 0


@contextmanager
def reusing_freed_memory() -> Iterator[None]:
    """Within, blocks of any size come from the heap and stay there when freed; nested and
    concurrent uses (from several threads) share one setting, undone when the last leaves."""
    global _depth
    libc = _glibc()
    if libc is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(_KEEP))
            libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(_KEEP))
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(_MMAP_AFTER))
                libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(_TRIM_AFTER))


def release_freed_memory() -> None:
    """Hand the heap's free memory back to the system (after the last of a loop's scopes)."""
    libc = _glibc()
    if libc is not None:
        with _lock:
            if _depth == 0:
                libc.malloc_trim(ctypes.c_size_t(0))
