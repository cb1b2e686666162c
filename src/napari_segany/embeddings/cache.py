"""A bounded in-memory cache of image embeddings, so returning to a seen slice is instant."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

from .embedding import ImageEmbedding

EmbeddingKey = tuple[Hashable, ...]


class EmbeddingCache:
    """Least-recently-used store of :class:`ImageEmbedding` objects, bounded in bytes.

    Keys are tuples whose first element names the image source (e.g. a layer id), so all
    embeddings of one source can be dropped at once when its data changes.
    """

    def __init__(self, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[EmbeddingKey, ImageEmbedding] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: EmbeddingKey) -> bool:
        return key in self._items

    @property
    def nbytes(self) -> int:
        return sum(e.features.nbytes for e in self._items.values())

    def get(self, key: EmbeddingKey) -> ImageEmbedding | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: EmbeddingKey, embedding: ImageEmbedding) -> None:
        self._items[key] = embedding
        self._items.move_to_end(key)
        while len(self._items) > 1 and self.nbytes > self.max_bytes:
            self._items.popitem(last=False)

    def drop_source(self, source: Hashable) -> int:
        """Forget every embedding whose key starts with ``source``; returns how many."""
        return self.drop_where(lambda key: key[0] == source)

    def drop_where(self, stale: Callable[[EmbeddingKey], bool]) -> int:
        """Forget every embedding whose key ``stale(key)`` is true of; returns how many."""
        doomed = [k for k in self._items if stale(k)]
        for key in doomed:
            del self._items[key]
        return len(doomed)

    def clear(self) -> None:
        self._items.clear()
