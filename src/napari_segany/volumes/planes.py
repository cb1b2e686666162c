"""How a plane's masks come from the masks carried to it: SAM sees each plane whole, or, for
planes larger than SAM's input, in micro-sam's tiles.

Both propagation through a volume and tracking through a time-lapse ask a plane for one thing:
given each object's previous mask (already moved by the motion model, or the union of two
neighbours at a midpoint), its mask on this plane. :class:`WholePlanes` derives the prompts
from the whole mask and decodes them on the plane's embedding. :class:`TiledPlanes` does what
micro-sam's ``segment_from_mask`` does on tiled embeddings: the object is segmented in the tile
whose inner block holds its previous mask's centroid, from prompts derived from the mask cut to
that tile's outer block, and its mask there is placed in an otherwise empty plane.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..tiling.grid import TileGrid
from .decoding import decode_masks
from .settings import PropagationSettings
from .slices import PlaneEmbeddings, PlaneStack

if TYPE_CHECKING:
    from ..predictor import Predictor


class WholePlanes:
    """Planes SAM sees whole, each encoded once when first reached (see PlaneEmbeddings)."""

    def __init__(
        self,
        predictor: Predictor,
        stack: PlaneStack,
        settings: PropagationSettings,
        embeddings: Any = None,
    ) -> None:
        self.predictor = predictor
        self.stack = stack
        self.settings = settings
        self.source = PlaneEmbeddings(predictor, stack, embeddings)

    def activate(self, z: int) -> None:
        """Make plane ``z`` the one :meth:`segment` works on."""
        self.source.activate(z)

    def segment(self, previous: Sequence[np.ndarray], midpoint: bool = False) -> list[np.ndarray]:
        """(H, W) bool masks on the active plane, one for each object's previous (H, W) mask."""
        prompts = [self.settings.prompts(mask, midpoint=midpoint) for mask in previous]
        return decode_masks(self.predictor, prompts)


class TiledPlanes:
    """Planes in micro-sam's tiles, each tile encoded once when an object first needs it.

    embeddings: None, or a mapping plane -> (mapping tile index -> ImageEmbedding of that tile's
    outer block); the tiles encoded here are added to the plane's mapping where it is mutable,
    and to ``embeddings`` as a new one where it is a mutable mapping without that plane.

    An object whose previous mask is empty has no centroid to choose a tile by, and stays empty
    (micro-sam has no answer there either). With the IoU stop on, such an object has stopped.
    """

    def __init__(
        self,
        predictor: Predictor,
        stack: PlaneStack,
        settings: PropagationSettings,
        grid: TileGrid,
        embeddings: Any = None,
    ) -> None:
        from ..tiling import TiledPredictor

        if embeddings is not None and not isinstance(embeddings, Mapping):
            raise ValueError(
                "embeddings of tiled planes must be a mapping plane -> {tile index: "
                f"embedding}}; got {type(embeddings).__name__}."
            )
        self.stack = stack
        self.settings = settings
        self.grid = grid
        # Each object's answer is its tile's, as micro-sam gives it.
        self.tiled = TiledPredictor(predictor, follow_cut_objects=False)
        self._given = embeddings
        self._planes: dict[int, MutableMapping[int, Any]] = {}
        self._current: int | None = None

    def activate(self, z: int) -> None:
        if self._current == z:
            return
        self.tiled.set_image(
            self.stack.plane(z), self.stack.contrast_limits, self.grid.tile_shape,
            self.grid.halo, embeddings=self._tiles_of(z),
        )  # fmt: skip
        self._current = z

    def _tiles_of(self, z: int) -> MutableMapping[int, Any]:
        given = self._given
        found = given.get(z) if given is not None else None
        if found is None:
            found = self._planes.setdefault(z, {})  # kept here, for the planes passed again
            if isinstance(given, MutableMapping):
                given[z] = found
        elif not isinstance(found, MutableMapping):
            found = self._planes.setdefault(z, dict(found))
        return found

    def segment(self, previous: Sequence[np.ndarray], midpoint: bool = False) -> list[np.ndarray]:
        """(H, W) bool masks on the active plane, one for each object's previous (H, W) mask."""
        out = [np.zeros(self.stack.plane_shape, bool) for _ in previous]
        by_tile: dict[int, list[tuple[int, Any]]] = defaultdict(list)
        for i, mask in enumerate(previous):
            rows, cols = np.nonzero(mask)
            if rows.size == 0:
                continue
            # Rounded as micro-sam rounds the centroid (half to even), then its block.
            tile = self.grid.tile_at(float(np.round(rows.mean())), float(np.round(cols.mean())))
            r0, c0, r1, c1 = self.grid.tile(tile).outer
            prompts = self.settings.prompts(mask[r0:r1, c0:c1], midpoint=midpoint)
            by_tile[tile].append((i, prompts))
        for tile, members in by_tile.items():
            predictor = self.tiled.tile_predictor(tile)
            r0, c0, r1, c1 = self.grid.tile(tile).outer
            for (i, _), mask in zip(members, decode_masks(predictor, [p for _, p in members])):
                out[i][r0:r1, c0:c1] = mask
        return out


def plane_segmenter(
    predictor: Predictor,
    stack: PlaneStack,
    settings: PropagationSettings,
    embeddings: Any = None,
    tile_shape: int | tuple[int, int] | str | None = None,
    halo: int | tuple[int, int] | None = None,
) -> WholePlanes | TiledPlanes:
    """Whole planes, or tiled ones when ``tile_shape`` (micro-sam's, or ``"auto"``) tiles the
    planes; one tile is the same as none."""
    if tile_shape is not None:
        input_size = int(predictor.model.image_size)
        grid = TileGrid.for_image(stack.plane_shape, tile_shape, halo, input_size)
        if grid.is_tiled:
            return TiledPlanes(predictor, stack, settings, grid, embeddings)
    return WholePlanes(predictor, stack, settings, embeddings)
