"""A stack's planes seen through a caller's embedding cache, as ``embeddings`` of a propagation.

An interactive session keeps embeddings under its own keys (image, slice, model, contrast);
this mapping lets a propagation read the planes the user already encoded and leave the planes
it encodes there, so a later click on any of them decodes at once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, MutableMapping
from typing import Any, Protocol


class EmbeddingCacheLike(Protocol):
    def get(self, key: Hashable) -> Any: ...

    def put(self, key: Hashable, value: Any) -> None: ...


class CachedPlanes(MutableMapping):
    """plane index -> embedding, stored in ``cache`` under ``key_of(plane)``.

    Only planes written here are listed by iteration; any plane the cache holds is found.
    """

    def __init__(self, cache: EmbeddingCacheLike, key_of: Callable[[int], Hashable]) -> None:
        self._cache = cache
        self._key_of = key_of
        self._written: set[int] = set()

    def __getitem__(self, plane: int) -> Any:
        found = self._cache.get(self._key_of(int(plane)))
        if found is None:
            raise KeyError(plane)
        return found

    def __setitem__(self, plane: int, embedding: Any) -> None:
        self._cache.put(self._key_of(int(plane)), embedding)
        self._written.add(int(plane))

    def __delitem__(self, plane: int) -> None:
        # The cache decides what it keeps; forgetting a plane here only unlists it.
        self._written.discard(int(plane))

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._written))

    def __len__(self) -> int:
        return len(self._written)
