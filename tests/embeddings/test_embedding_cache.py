"""The in-memory cache of the session's embeddings: bounded in bytes, least recently used out."""

from __future__ import annotations

import numpy as np

from napari_segany.embeddings import EmbeddingCache, ImageEmbedding


def _embedding(value: float = 0.0) -> ImageEmbedding:
    return ImageEmbedding(np.full((1, 4, 8, 8), value, np.float32), (10, 10))  # 1 KiB


def test_the_least_recently_used_embedding_goes_first():
    cache = EmbeddingCache(max_bytes=3 * 1024)
    for i in range(3):
        cache.put(("a", i), _embedding(i))
    assert cache.get(("a", 0)) is not None  # used again: now the newest
    cache.put(("a", 3), _embedding(3))
    assert ("a", 1) not in cache and ("a", 0) in cache and len(cache) == 3
    assert cache.nbytes <= 3 * 1024


def test_one_embedding_larger_than_the_bound_is_still_kept():
    cache = EmbeddingCache(max_bytes=10)
    cache.put(("a",), _embedding())
    assert len(cache) == 1  # the current slice's embedding is never thrown away


def test_dropping_one_image_keeps_the_others():
    cache = EmbeddingCache()
    cache.put(("a", 0), _embedding())
    cache.put(("a", 1), _embedding())
    cache.put(("b", 0), _embedding())
    assert cache.drop_source("a") == 2
    assert list(cache._items) == [("b", 0)]
    assert cache.drop_where(lambda key: key[1] == 0) == 1 and len(cache) == 0
