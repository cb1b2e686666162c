"""Image embeddings kept for reuse: in memory for the slices of a session, on disk for images
encoded ahead of time (``napari-segany embed``)."""

from __future__ import annotations

from .cache import EmbeddingCache, EmbeddingKey
from .embedding import ImageEmbedding
from .store import (
    EMBEDDING_DIR_ENV,
    EmbeddingStore,
    embedding_dir,
    embedding_key,
    model_fingerprint,
    plane_embedding_key,
)

__all__ = [
    "EMBEDDING_DIR_ENV",
    "EmbeddingCache",
    "EmbeddingKey",
    "EmbeddingStore",
    "ImageEmbedding",
    "embedding_dir",
    "embedding_key",
    "model_fingerprint",
    "plane_embedding_key",
]
