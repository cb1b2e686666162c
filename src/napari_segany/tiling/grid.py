"""Which pixels each tile covers: inner blocks of ``tile_shape`` and outer blocks with a halo.

The geometry is micro-sam's (``precompute_image_embeddings(tile_shape, halo)``, which takes it
from bioimage_cpp's ``Blocking`` and ``get_block_with_halo``): the image is cut into inner
blocks of ``tile_shape`` pixels from its top-left corner (the last row and column of blocks are
smaller when the image's sides are not multiples of the tile), tiles are numbered row-major,
and each tile is encoded as its *outer* block, the inner block grown by ``halo`` pixels on every
side and clipped to the image. Sizes are (rows, cols) in image pixels. Boxes are
(min_row, min_col, max_row, max_col) with the max exclusive, so ``image[r0:r1, c0:c1]`` is the
block.

``tile_shape="auto"`` is :func:`auto_tiling`'s choice.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

Box = tuple[int, int, int, int]
"""(min_row, min_col, max_row, max_col), max exclusive."""

# Images whose long side is at most this many times the model's input size are not tiled by
# ``auto``: SAM sees them shrunk by at most this factor, which it handles well.
AUTO_TILING_ABOVE = 1.5
# ``auto``'s halo, as a fraction of the model's input size (128 pixels for SAM's 1024).
AUTO_HALO_FRACTION = 1 / 8


@dataclass(frozen=True)
class Tile:
    """One tile: ``inner`` is the block it answers for, ``outer`` the pixels it is encoded from."""

    index: int
    position: tuple[int, int]  # (tile row, tile column) in the grid
    inner: Box
    outer: Box

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the outer block, the image the encoder sees."""
        r0, c0, r1, c1 = self.outer
        return r1 - r0, c1 - c0


@dataclass(frozen=True)
class TileGrid:
    """The tiles of an image of ``image_shape`` with ``tile_shape`` and ``halo`` (rows, cols).

    One tile whose blocks are the whole image (``TileGrid.single``) is the untiled case.
    """

    image_shape: tuple[int, int]
    tile_shape: tuple[int, int]
    halo: tuple[int, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_shape", _pair(self.image_shape, "image_shape", 1))
        object.__setattr__(self, "tile_shape", _pair(self.tile_shape, "tile_shape", 1))
        object.__setattr__(self, "halo", _pair(self.halo, "halo", 0))
        for axis, (tile, halo) in enumerate(zip(self.tile_shape, self.halo)):
            if halo >= tile:
                raise ValueError(
                    f"halo {self.halo} must be smaller than tile_shape {self.tile_shape} along "
                    f"each axis (axis {axis}: {halo} >= {tile}): the halo is the context added "
                    "on every side of a tile, not the tile itself. micro-sam's usual choices are "
                    "tile_shape=(1024, 1024) with halo=(256, 256), or (384, 384) with (64, 64)."
                )

    @classmethod
    def single(cls, image_shape: tuple[int, int]) -> TileGrid:
        """One tile covering the whole image: no tiling."""
        shape = _pair(image_shape, "image_shape", 1)
        return cls(shape, shape, (0, 0))

    @classmethod
    def for_image(
        cls,
        image_shape: tuple[int, int],
        tile_shape: int | tuple[int, int] | str | None,
        halo: int | tuple[int, int] | None,
        input_size: int,
    ) -> TileGrid:
        """The grid the user asked for: ``tile_shape`` None (one tile, no tiling), ``"auto"``
        (see :func:`auto_tiling`) or (rows, cols) / an int for square tiles, with ``halo``
        likewise (required with an explicit tile_shape, chosen with ``auto``)."""
        if tile_shape is None:
            if halo is not None and np.any(np.asarray(halo) != 0):
                raise ValueError(
                    f"halo={halo!r} was given without a tile_shape: give tile_shape=(rows, cols) "
                    "(or 'auto') to tile the image, or leave halo out."
                )
            return cls.single(image_shape)
        if isinstance(tile_shape, str):
            if tile_shape != "auto":
                raise ValueError(
                    "tile_shape must be 'auto', None or (rows, cols) in pixels; "
                    f"got {tile_shape!r}."
                )
            if halo is not None:
                raise ValueError(
                    "tile_shape='auto' chooses the halo too: leave halo out, or give both "
                    "tile_shape and halo explicitly."
                )
            return auto_tiling(image_shape, input_size)
        if halo is None:
            raise ValueError(
                f"tile_shape={tile_shape!r} needs a halo, the pixels of context encoded on every "
                "side of each tile, e.g. halo=(256, 256) for (1024, 1024) tiles; or use "
                "tile_shape='auto'."
            )
        return cls(image_shape, tile_shape, halo)

    # ---- the grid --------------------------------------------------------------------------

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(tile rows, tile columns)."""
        return (
            math.ceil(self.image_shape[0] / self.tile_shape[0]),
            math.ceil(self.image_shape[1] / self.tile_shape[1]),
        )

    @property
    def n_tiles(self) -> int:
        rows, cols = self.grid_shape
        return rows * cols

    @property
    def is_tiled(self) -> bool:
        """More than one tile."""
        return self.n_tiles > 1

    def __len__(self) -> int:
        return self.n_tiles

    def __iter__(self) -> Iterator[Tile]:
        return (self.tile(i) for i in range(self.n_tiles))

    def tile(self, index: int) -> Tile:
        """Tile ``index`` (row-major, as micro-sam numbers them)."""
        if not 0 <= index < self.n_tiles:
            raise IndexError(f"There is no tile {index}: this grid has {self.n_tiles} tiles.")
        row, col = divmod(int(index), self.grid_shape[1])
        (th, tw), (hh, hw), (h, w) = self.tile_shape, self.halo, self.image_shape
        inner = (row * th, col * tw, min((row + 1) * th, h), min((col + 1) * tw, w))
        outer = (
            max(inner[0] - hh, 0),
            max(inner[1] - hw, 0),
            min(inner[2] + hh, h),
            min(inner[3] + hw, w),
        )
        return Tile(int(index), (row, col), inner, outer)

    def tile_at(self, row: float, col: float) -> int:
        """The tile whose inner block holds pixel (row, col) (pixel centres round, as
        micro-sam's ``coordinates_to_block_id`` of rounded coordinates)."""
        r = min(max(int(np.floor(row + 0.5)), 0), self.image_shape[0] - 1)
        c = min(max(int(np.floor(col + 0.5)), 0), self.image_shape[1] - 1)
        return (r // self.tile_shape[0]) * self.grid_shape[1] + c // self.tile_shape[1]

    def outer_boxes(self) -> np.ndarray:
        """(n_tiles, 4) int64 outer boxes, row-major (a copy)."""
        return self._boxes[1].copy()

    def inner_boxes(self) -> np.ndarray:
        """(n_tiles, 4) int64 inner boxes, row-major (a copy)."""
        return self._boxes[0].copy()

    @functools.cached_property
    def _boxes(self) -> tuple[np.ndarray, np.ndarray]:
        # Made once: routing a click reads every tile's box, and a slide has hundreds.
        tiles = list(self)
        inner = np.array([t.inner for t in tiles], dtype=np.int64).reshape(-1, 4)
        outer = np.array([t.outer for t in tiles], dtype=np.int64).reshape(-1, 4)
        return inner, outer

    def cut_sides(self, box: Box) -> tuple[bool, bool, bool, bool]:
        """Which sides (top, left, bottom, right) of ``box`` lie inside the image, where an
        object can continue past them; the image's own edges cut nothing."""
        r0, c0, r1, c1 = box
        h, w = self.image_shape
        return r0 > 0, c0 > 0, r1 < h, c1 < w


def auto_tiling(image_shape: tuple[int, int], input_size: int) -> TileGrid:
    """The tiling ``tile_shape="auto"`` picks for an image on a model of ``input_size`` (1024).

    * An image whose long side is at most :data:`AUTO_TILING_ABOVE` (1.5) times the input size
      is not tiled: SAM sees it whole, shrunk by at most 1.5.
    * Otherwise the halo is 1/8 of the input size (128 pixels for SAM) and each axis gets the
      fewest equal tiles whose outer block (tile + 2 halos) fits the model's input: n =
      ceil(side / (input - 2 * halo)) tiles of ceil(side / n) pixels. So SAM sees every pixel
      at its own resolution or larger (never shrunk, unlike micro-sam's (1024, 256), whose
      1536-pixel outer tiles are shrunk 1.5 times), the last tile is not a sliver, and an object
      cut by a tile's edge is followed into a window of the input size (see
      :class:`~napari_segany.tiling.TiledPredictor`). An axis with one tile has no halo.
    """
    shape = _pair(image_shape, "image_shape", 1)
    if max(shape) <= AUTO_TILING_ABOVE * input_size:
        return TileGrid.single(shape)
    halo = int(input_size * AUTO_HALO_FRACTION)
    step = input_size - 2 * halo
    tiles, halos = [], []
    for side in shape:
        n = math.ceil(side / step)
        tiles.append(math.ceil(side / n))
        halos.append(halo if n > 1 else 0)
    return TileGrid(shape, (tiles[0], tiles[1]), (halos[0], halos[1]))


def _pair(value: object, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints >= minimum -> (rows, cols); ValueError naming ``name``."""
    items = [value, value] if np.isscalar(value) else list(np.asarray(value).ravel())
    ok = len(items) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in items
    )
    if not ok or min(int(v) for v in items) < minimum:
        raise ValueError(
            f"{name} must be an integer >= {minimum} or a (rows, cols) pair of them; got {value!r}."
        )
    return int(items[0]), int(items[1])
