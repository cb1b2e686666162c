"""A tiled image's embeddings in an :class:`~napari_segany.embeddings.EmbeddingStore`, one
``.npz`` per tile.

Each tile's key (:func:`tile_key`) is the store's usual key of what the encoder sees, the
tile's uint8 RGB pixels (mapped with the whole image's intensity mapping), the model's
fingerprint and the precision, plus the tile shape and halo. ``napari-segany embed
--tile-shape`` fills a store with these keys; :class:`TiledPredictor` reads them through
:class:`StoredTileEmbeddings`, encoding only the tiles it does not find.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING

import numpy as np

from ..embeddings.embedding import ImageEmbedding
from ..embeddings.store import EmbeddingStore, Precision, embedding_key
from .grid import TileGrid
from .source import SourceImage

if TYPE_CHECKING:
    from .predictor import TiledPredictor


def tile_key(
    grid: TileGrid, tile_rgb: np.ndarray, model_identity: str, precision: Precision
) -> str:
    """Store key of one tile: tile_rgb (h, w, 3) uint8, its outer block as the encoder sees it;
    model_identity: :func:`~napari_segany.embeddings.model_fingerprint` of the model."""
    return embedding_key(tile_rgb, model_identity, precision, (grid.tile_shape, grid.halo))


class StoredTileEmbeddings(MutableMapping[int, ImageEmbedding]):
    """Tile index -> embedding, backed by ``store``: tiles found there are read instead of
    encoded, and (with ``write``) tiles encoded here are saved there.

    Up to ``keep`` tiles stay in memory (least recently used go; the store keeps them), so a
    fully encoded 20000 x 20000 image costs ``keep`` tiles of memory, not 729. A tile counts as
    present once it was encoded or read here; tiles on disk are looked up when a prompt needs
    them, because hashing every tile of a large image to count them would take seconds.
    """

    def __init__(
        self,
        store: EmbeddingStore,
        source: SourceImage,
        grid: TileGrid,
        model_identity: str,
        precision: Precision,
        write: bool = True,
        keep: int = 16,
    ) -> None:
        self.store, self.source, self.grid = store, source, grid
        self.model_identity, self.precision = model_identity, precision
        self.write, self.keep = write, max(1, int(keep))
        self._memory: OrderedDict[int, ImageEmbedding] = OrderedDict()
        self._keys: dict[int, str] = {}
        self._present: set[int] = set()
        self._on_disk: set[int] = set()

    def key(self, index: int) -> str:
        """Tile ``index``'s store key (its pixels are read and hashed once)."""
        found = self._keys.get(index)
        if found is None:
            rgb = self.source.rgb(self.grid.tile(index).outer)
            found = self._keys[index] = tile_key(
                self.grid, rgb, self.model_identity, self.precision
            )
        return found

    def __getitem__(self, index: int) -> ImageEmbedding:
        found = self._memory.get(index)
        if found is None:
            if not 0 <= index < self.grid.n_tiles:
                raise KeyError(index)
            found = self.store.load(self.key(index))
            if found is None or tuple(found.original_size) != self.grid.tile(index).shape:
                raise KeyError(index)
            self._on_disk.add(index)
            self._remember(index, found)
        self._memory.move_to_end(index)
        return found

    def __setitem__(self, index: int, embedding: ImageEmbedding) -> None:
        if self.write:
            self.store.save(self.key(index), embedding)
            self._on_disk.add(index)
        self._remember(index, embedding)

    def __delitem__(self, index: int) -> None:
        if index not in self._present:
            raise KeyError(index)
        self._present.discard(index)
        self._memory.pop(index, None)

    def __contains__(self, index: object) -> bool:
        return index in self._present

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._present))

    def __len__(self) -> int:
        return len(self._present)

    def _remember(self, index: int, embedding: ImageEmbedding) -> None:
        self._memory[index] = embedding
        self._memory.move_to_end(index)
        self._present.add(index)
        while len(self._memory) > self.keep:
            evicted, _ = self._memory.popitem(last=False)
            if evicted not in self._on_disk:
                self._present.discard(evicted)  # gone: it would be encoded again


def use_store(
    tiled: TiledPredictor,
    store: EmbeddingStore,
    model_identity: str,
    precision: Precision,
    write: bool = True,
    keep: int = 16,
) -> StoredTileEmbeddings:
    """Back ``tiled``'s current image's tile embeddings by ``store`` (keeping those already
    encoded); returns the mapping."""
    grid, source = tiled.grid, tiled.source
    if grid is None or source is None:
        raise ValueError("No image is set: call tiled.set_image(image) before use_store().")
    stored = StoredTileEmbeddings(store, source, grid, model_identity, precision, write, keep)
    for index in list(tiled.embeddings):
        stored[index] = tiled.embeddings[index]
    tiled.embeddings = stored
    return stored
