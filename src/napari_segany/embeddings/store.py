"""Image embeddings on disk, keyed by what SAM saw and which weights saw it.

A key (:func:`embedding_key`) is the SHA-256 of the uint8 RGB image that goes into the encoder,
the checkpoint's SHA-256 (:func:`model_fingerprint`), the precision it ran in and a version tag
of the preprocessing. Change any of them, pixels, contrast limits, weights, precision, and the
key changes, so a stale embedding is never used. Each embedding is one ``<key>.npz`` file
(plain arrays, read with ``allow_pickle=False``), written to a temporary name and renamed.

The widget's use, for one displayed 2-D plane::

    from napari_segany.embeddings import EmbeddingStore, plane_embedding_key

    store = EmbeddingStore()  # $NAPARI_SEGANY_EMBEDDING_DIR, else <cache dir>/embeddings
    key = plane_embedding_key(plane, layer.contrast_limits, "vit_b", predictor.dtype)
    embedding = store.load(key)  # None on a miss
    if embedding is not None:
        predictor.set_image_embedding(embedding.features, embedding.original_size)
    else:
        predictor.set_image(plane, layer.contrast_limits)
        store.save(key, predictor.get_embedding_state())

``napari-segany embed`` fills a store ahead of time with the same keys.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

from ..atomic import atomic_file
from ..imaging import to_uint8_rgb
from ..precision import precision_name
from .embedding import ImageEmbedding

if TYPE_CHECKING:
    import torch

Precision = Union[str, "torch.dtype"]

EMBEDDING_DIR_ENV = "NAPARI_SEGANY_EMBEDDING_DIR"

# Bump when anything between the uint8 RGB image and the encoder changes (resize, normalisation,
# padding), so embeddings made by older code stop matching.
PREPROCESSING = "longest-side-1024 pil-bilinear sam-mean-std pad-bottom-right v1"
_FILE_VERSION = 1

_log = logging.getLogger(__name__)


def embedding_dir() -> Path:
    """``$NAPARI_SEGANY_EMBEDDING_DIR``, else ``embeddings/`` in the checkpoint cache folder."""
    override = os.environ.get(EMBEDDING_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    from ..weights import cache_dir

    return cache_dir() / "embeddings"


# ---- keys ------------------------------------------------------------------------------------

_FINGERPRINTS: dict[tuple[str, int, int], str] = {}
_FINGERPRINTS_LOCK = threading.Lock()


def model_fingerprint(model: str | os.PathLike) -> str:
    """``"sha256:<hex>"`` of the checkpoint that ``load_model(model)`` would load.

    model: a registered name (its registered hash, no file access) or a checkpoint path (the
    file is hashed once per process and file version; a few seconds for vit_h).
    The same weights give the same fingerprint whichever way they are named.
    """
    from ..weights.download import sha256_of
    from ..weights.registry import is_registered, model_info

    text = str(model)
    if isinstance(model, str) and is_registered(text):
        info = model_info(text)
        if info.sha256:
            return f"sha256:{info.sha256.lower()}"
        if info.xxh128:  # micro-sam's models publish no SHA-256
            return f"xxh128:{info.xxh128.lower()}"
    path = Path(model).expanduser()
    if not path.is_file():
        model_info(text)  # ValueError naming the registered models for a bare unknown name
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    stat = path.stat()
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _FINGERPRINTS_LOCK:
        known = _FINGERPRINTS.get(memo)
    if known is None:
        known = f"sha256:{sha256_of(path)}"
        with _FINGERPRINTS_LOCK:
            _FINGERPRINTS[memo] = known
    return known


def embedding_key(
    image_rgb: np.ndarray,
    model_identity: str,
    precision: Precision,
    tiling: tuple[tuple[int, int], tuple[int, int]] | None = None,
) -> str:
    """Store key (64 hex digits) of one encoder input.

    image_rgb: (H, W, 3) uint8, exactly what the encoder receives (from
    :func:`~napari_segany.to_uint8_rgb`). model_identity: :func:`model_fingerprint` of the
    model. precision: what the encoder runs in, ``fp32``, ``bf16`` or ``fp16`` or the torch
    dtype (``Predictor.dtype``); not ``auto``, which means different things on different
    machines. tiling: ((rows, cols) tile shape, (rows, cols) halo) when the input is one tile
    of a larger image (see :mod:`napari_segany.tiling.stored`).
    """
    rgb = np.asarray(image_rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(
            f"embedding_key takes the (H, W, 3) uint8 image the encoder sees; got "
            f"{rgb.dtype} {rgb.shape}. Convert it with napari_segany.to_uint8_rgb first."
        )
    header = {
        "preprocessing": PREPROCESSING,
        "model": str(model_identity),
        "precision": precision_name(precision),
        "shape": list(rgb.shape),
    }
    if tiling is not None:
        header["tiling"] = [[int(v) for v in pair] for pair in tiling]
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode("utf-8"))
    digest.update(np.ascontiguousarray(rgb).data)
    return digest.hexdigest()


def plane_embedding_key(
    plane: np.ndarray,
    contrast_limits: tuple[float, float] | None,
    model: str | os.PathLike,
    precision: Precision,
) -> str:
    """Store key of a 2-D image plane as the widget shows it.

    plane: (H, W), (H, W, 3) or (H, W, 4), any dtype; contrast_limits: the layer's (they
    decide the pixels SAM sees, see :mod:`napari_segany.imaging`); model: the name or path
    given to ``load_model``; precision: the predictor's ``dtype`` (or ``fp32``/``bf16``/
    ``fp16``). A checkpoint path is hashed on first use (seconds for vit_h): call this off
    the GUI thread.
    """
    rgb = to_uint8_rgb(plane, contrast_limits)
    return embedding_key(rgb, model_fingerprint(model), precision)


# ---- the store -------------------------------------------------------------------------------


class EmbeddingStore:
    """A folder of ``<key>.npz`` embeddings. Safe to share between processes: every file
    appears whole (temporary name, then rename), and unreadable files count as misses."""

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder).expanduser() if folder is not None else embedding_dir()

    def __repr__(self) -> str:
        return f"EmbeddingStore({str(self.folder)!r})"

    def path_for(self, key: str) -> Path:
        _check_key(key)
        return self.folder / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def keys(self) -> set[str]:
        """Keys of every embedding in the folder."""
        if not self.folder.is_dir():
            return set()
        return {p.stem for p in self.folder.glob("*.npz") if _is_key(p.stem)}

    def save(self, key: str, embedding: ImageEmbedding) -> Path:
        """Write ``embedding`` under ``key`` (replacing any earlier one); returns its path."""
        path = self.path_for(key)
        features = np.asarray(embedding.features, dtype=np.float32)
        original_size = np.asarray(embedding.original_size, dtype=np.int64)
        if features.ndim != 4 or features.shape[0] != 1 or original_size.shape != (2,):
            raise ValueError(
                "An embedding needs features of shape (1, C, h, w) and original_size (H, W); "
                f"got {features.shape} and {tuple(original_size)}."
            )
        with atomic_file(path) as out:
            np.savez(
                out.handle,
                features=features,
                original_size=original_size,
                key=np.array(key),
                version=np.array(_FILE_VERSION),
            )
        return path

    def load(self, key: str) -> ImageEmbedding | None:
        """The embedding saved under ``key``, or None when there is none (or it is unreadable)."""
        path = self.path_for(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["version"]) != _FILE_VERSION or str(data["key"]) != key:
                    return None
                features = np.array(data["features"], dtype=np.float32)
                height, width = (int(v) for v in data["original_size"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _log.warning(
                "Ignoring unreadable embedding file %s (%s); it will be recomputed.", path, exc
            )
            return None
        return ImageEmbedding(features=features, original_size=(height, width))


def _is_key(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _check_key(key: str) -> None:
    # Keys become file names: only the hex digests made here are accepted.
    if not isinstance(key, str) or not _is_key(key):
        raise ValueError(
            f"Not an embedding key: {key!r}. Make keys with embedding_key() or "
            "plane_embedding_key()."
        )
