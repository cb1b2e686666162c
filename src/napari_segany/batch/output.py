"""Where a batch run's outputs go and how they are written: names mirroring the inputs, atomic
writes that leave only whole files, label TIFFs and the JSON record's helpers."""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..atomic import write_atomic

LABELS_SUFFIX = "_labels.tif"
COCO_SUFFIX = "_masks.json"


def output_bases(paths: list[Path], out_dir: Path) -> list[Path]:
    """Output path prefixes (no suffix) mirroring each input below the inputs' common folder;
    inputs that would share one (``a.tif`` and ``a.png``) keep their suffix in the name."""
    parents = [p.resolve().parent for p in paths]
    try:
        root = Path(os.path.commonpath(parents)) if parents else Path()
    except ValueError:  # different drives: no common folder
        root = None
    bases = []
    for path, parent in zip(paths, parents):
        relative = parent.relative_to(root) if root is not None else Path()
        bases.append(out_dir / relative / _stem(path))
    counts: dict[Path, int] = {}
    for base in bases:
        counts[base] = counts.get(base, 0) + 1
    return [
        base.with_name(f"{base.name}_{path.suffix.lstrip('.').lower()}")
        if counts[base] > 1
        else base
        for base, path in zip(bases, paths)
    ]


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def write_output(path: Path, write: Callable[[BinaryIO], Any], run_started: float) -> None:
    """Write an output whole or not at all (see :mod:`napari_segany.atomic`); a killed run
    leaves only a stray ``.part``, which a later run removes here."""
    write_atomic(path, write)
    _remove_stale_parts(path, run_started)


def _remove_stale_parts(path: Path, run_started: float) -> None:
    # Only leftovers older than this run: a concurrent run's file in progress stays.
    cutoff = time.time() - (time.perf_counter() - run_started)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        try:
            if stale.stat().st_mtime < cutoff:
                stale.unlink()
        except OSError:
            pass


def write_tiff(f: BinaryIO, labels: np.ndarray) -> None:
    """Write a label image, (..., H, W) uint16 or uint32, as a compressed TIFF."""
    import tifffile

    # zlib needs no extra codec package, and label images shrink by orders of magnitude.
    tifffile.imwrite(f, labels, compression="zlib", photometric="minisblack")


def all_params(params: dict[str, Any]) -> dict[str, Any]:
    """Every setting the run used, defaults included, for the record in the JSON file."""
    from dataclasses import asdict

    from ..automatic import AutomaticParams

    return asdict(AutomaticParams(**params))


def json_scalar(value: Any) -> Any:
    """``json.dumps``'s ``default``: numpy scalars as Python numbers."""
    if isinstance(value, np.generic):  # numpy numbers from API callers
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
