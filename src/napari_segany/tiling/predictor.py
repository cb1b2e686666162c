"""Prompts on images far larger than SAM's input: tiles encoded on demand, masks uncut.

:class:`TiledPredictor` composes a :class:`~napari_segany.Predictor`. Its image is cut into
tiles (:mod:`.grid`, micro-sam's geometry), all mapped to uint8 with the whole image's
intensity mapping (:mod:`.source`); a tile is encoded the first time a prompt needs it, or all
of them ahead through :meth:`TiledPredictor.iter_encode_tiles`. A prompt is decoded in the tile
that holds it farthest from the tile's cutting edges (:mod:`.routing`), so a click in a tile's
inner block gets exactly what SAM gives for that outer tile's pixels. When the mask touches a
cutting edge, the object was cut by the tiling: a window over it, of the model's input size or
more, is encoded and decoded instead, so an object up to the input size comes back whole.
Results are masks over their frame with its place in the image (:mod:`.results`): memory
follows the tile, not the image.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Generator, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..embeddings.embedding import ImageEmbedding
from ..progress import ProgressCallback, drain
from .grid import Box, TileGrid
from .prompts import Prompt, checked_prompts
from .results import TiledPrediction
from .routing import choose_tile, mask_extent, touched_cut_sides, window_box
from .source import SourceImage

if TYPE_CHECKING:
    from ..predictor import Predictor

# Windows tried, one after the other, while the object is still cut: each starts at the part
# of the object already seen, so a second is needed only for objects cut on both sides.
MAX_WINDOWS = 3
# A window's largest side, in multiples of the model's input size: larger objects (and
# prompts) are seen shrunk so much that SAM finds little in them, and their masks would cost
# memory that grows with the image.
MAX_WINDOW_FACTOR = 4
# Pixels of context kept between an object's known extent and a window's edge, as a fraction
# of the input size (32 pixels for SAM).
WINDOW_MARGIN_FRACTION = 1 / 32

Steps = Generator[tuple[int, int], None, Any]


class TiledPredictor:
    """Encode tiles of a large image on demand and :meth:`predict` masks for prompts in
    whole-image coordinates.

    predictor: encodes the tiles and windows (its precision, decoder and compiled encoder
    serve every tile; its own current image becomes the last block encoded).
    follow_cut_objects: when a mask touches a tile's cutting edge, decode again in a window
    over the object (off: every prompt gets its tile's answer, as micro-sam does).
    warm_frames: how many tiles or windows keep a decoder bound to their embedding, so that
    clicks going back and forth between them cost what a click on one image costs.

    encode_progress: called as ``progress(done, total)`` over the encoder's blocks of every
    tile or window encoded without a progress of its own (a prompt's, in the widget; raising
    from it stops the encoder between two blocks).
    """

    def __init__(
        self,
        predictor: Predictor,
        follow_cut_objects: bool = True,
        warm_frames: int = 4,
    ) -> None:
        if warm_frames < 1:
            raise ValueError(f"warm_frames must be at least 1, got {warm_frames}.")
        self.predictor = predictor
        self.follow_cut_objects = follow_cut_objects
        self.warm_frames = int(warm_frames)
        self.input_size = int(predictor.model.image_size)
        self.max_window = MAX_WINDOW_FACTOR * self.input_size
        self.margin = max(1, int(self.input_size * WINDOW_MARGIN_FRACTION))
        self.grid: TileGrid | None = None
        self.source: SourceImage | None = None
        self.embeddings: MutableMapping[int, ImageEmbedding] = {}
        self._frames: OrderedDict[Box, Predictor] = OrderedDict()
        self.encode_progress: ProgressCallback | None = None

    @classmethod
    def for_image(
        cls,
        predictor: Predictor,
        image: Any,
        contrast_limits: tuple[float, float] | None = None,
        tile_shape: int | tuple[int, int] | str | None = "auto",
        halo: int | tuple[int, int] | None = None,
    ) -> TiledPredictor | None:
        """A new tiled predictor on ``predictor`` with ``image`` set (nothing encoded), or None
        when the tiling asked for gives one tile: such an image is encoded whole, as without
        tiling. Only the image's shape is looked at to decide."""
        shape = (int(np.shape(image)[0]), int(np.shape(image)[1]))
        if not TileGrid.for_image(
            shape, tile_shape, halo, int(predictor.model.image_size)
        ).is_tiled:
            return None
        tiled = cls(predictor)
        tiled.set_image(image, contrast_limits, tile_shape, halo)
        return tiled

    # ---- image -----------------------------------------------------------------------------

    def set_image(
        self,
        image: Any,
        contrast_limits: tuple[float, float] | None = None,
        tile_shape: int | tuple[int, int] | str | None = "auto",
        halo: int | tuple[int, int] | None = None,
        embeddings: MutableMapping[int, ImageEmbedding] | None = None,
    ) -> None:
        """Take ``image`` and its tiling; nothing is encoded until a prompt needs it.

        image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), any real dtype, anything that slices
        into numpy arrays (kept, not copied). contrast_limits: the whole image's mapping to
        uint8 (default: its 1st and 99th percentiles; uint8 passes through).
        tile_shape, halo: micro-sam's, in image pixels, (rows, cols) or an int; ``"auto"``
        chooses (see :func:`~napari_segany.tiling.auto_tiling`) and None does not tile.
        embeddings: where tile embeddings are kept, by tile index (default a new dict; a disk
        store can stand in, and tiles found there are not encoded again).
        """
        source = SourceImage(image, contrast_limits)
        self.grid = TileGrid.for_image(source.shape, tile_shape, halo, self.input_size)
        self.source = source
        self.embeddings = {} if embeddings is None else embeddings
        self._frames.clear()

    def reset_image(self) -> None:
        """Forget the image, its tiles and their embeddings."""
        self.grid = self.source = None
        self.embeddings = {}
        self._frames.clear()

    @property
    def is_image_set(self) -> bool:
        return self.grid is not None

    @property
    def original_size(self) -> tuple[int, int]:
        return self._require_image().image_shape

    def status(self) -> str:
        """What the status line shows, e.g. ``tiled 4 x 5, 3 tiles encoded``."""
        grid = self._require_image()
        encoded = len(self.encoded_tiles())
        if not grid.is_tiled:
            return "not tiled, encoded" if encoded else "not tiled, not encoded yet"
        rows, cols = grid.grid_shape
        return f"tiled {rows} x {cols}, {encoded} tile{'s' if encoded != 1 else ''} encoded"

    # ---- tiles -----------------------------------------------------------------------------

    def tile_rgb(self, index: int) -> np.ndarray:
        """(h, w, 3) uint8: tile ``index``'s outer block as the encoder sees it."""
        return self._source().rgb(self._require_image().tile(index).outer)

    def encoded_tiles(self) -> list[int]:
        """Indices of the tiles that have an embedding."""
        grid = self._require_image()
        return [i for i in range(grid.n_tiles) if i in self.embeddings]

    def tile_embedding(self, index: int) -> ImageEmbedding | None:
        """Tile ``index``'s embedding, or None before it is encoded."""
        self._require_image().tile(index)  # IndexError for a tile that does not exist
        return self.embeddings.get(index)

    def set_tile_embedding(self, index: int, embedding: ImageEmbedding) -> None:
        """Use a saved embedding (from :meth:`tile_embedding`) for tile ``index``."""
        tile = self._require_image().tile(index)
        if tuple(embedding.original_size) != tile.shape:
            raise ValueError(
                f"This embedding is of a {embedding.original_size[0]} x "
                f"{embedding.original_size[1]} image, but tile {index} is {tile.shape[0]} x "
                f"{tile.shape[1]}: it belongs to another image or tiling."
            )
        self.embeddings[index] = embedding
        self._frames.pop(tile.outer, None)

    def encode_tile(self, index: int, progress: ProgressCallback | None = None) -> ImageEmbedding:
        """Tile ``index``'s embedding, encoded now unless it already is.

        progress: called as ``progress(done, total)`` over the encoder's blocks.
        """
        tile = self._require_image().tile(index)
        found = self.embeddings.get(index)
        if found is None:
            found = self.embeddings[index] = self._encode(tile.outer, progress)
        return found

    def iter_encode_tiles(self, indices: Sequence[int] | None = None) -> Steps:
        """Encode the tiles not encoded yet (of ``indices``, default all); yields
        ``(done, total)`` after each and returns how many were encoded. Close the generator to
        cancel between two tiles."""
        grid = self._require_image()
        chosen = range(grid.n_tiles) if indices is None else [int(i) for i in indices]
        for i in chosen:
            grid.tile(i)  # IndexError now, not halfway
        return self._encode_tiles([i for i in chosen if i not in self.embeddings])

    def encode_tiles(
        self, indices: Sequence[int] | None = None, progress: ProgressCallback | None = None
    ) -> int:
        """:meth:`iter_encode_tiles` run to the end; ``progress(done, total)`` per tile."""
        return drain(self.iter_encode_tiles(indices), progress)

    def _encode_tiles(self, todo: list[int]) -> Steps:
        yield 0, len(todo)
        for done, index in enumerate(todo, start=1):
            self.encode_tile(index)
            yield done, len(todo)
        return len(todo)

    def tile_predictor(self, index: int) -> Predictor:
        """A predictor bound to tile ``index``'s embedding (encoding the tile if needed), whose
        image is the tile's outer block."""
        return drain(self._bound(self._require_image().tile(index).outer, index))

    # ---- prompts ---------------------------------------------------------------------------

    def predict(
        self,
        points: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = True,
        frame: Box | None = None,
        progress: ProgressCallback | None = None,
    ) -> TiledPrediction | list[TiledPrediction]:
        """:meth:`iter_predict` run to the end; ``progress(done, total)`` per encoding."""
        return drain(self.iter_predict(points, labels, box, mask_input, multimask, frame), progress)

    def iter_predict(
        self,
        points: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = True,
        frame: Box | None = None,
    ) -> Steps:
        """Masks for prompts in whole-image pixels; yields ``(done, total)`` around each
        encoding it needs (none on encoded tiles) and returns a :class:`TiledPrediction`.

        points: (N, 2) (row, col) with labels (N,); box: (4,) (min_row, min_col, max_row,
        max_col), or (K, 4) for K objects sharing the points, which returns a list of K.
        mask_input: (1, 256, 256) low-res logits of a previous prediction, decoded in that
        prediction's ``frame`` (pass ``frame=previous.box``); such a prompt stays in its frame.
        frame: decode in this block of the image (a tile's outer block or a window) and nowhere
        else, even where the mask is cut.
        Bad prompts are reported here, before the first step.
        """
        grid = self._require_image()
        prompts, batched = checked_prompts(points, labels, box, grid.image_shape)
        if frame is not None:
            frame = self._checked_frame(frame)
            for prompt in prompts:
                if not prompt.inside(frame):
                    raise ValueError(
                        f"The prompts reach outside the frame {frame}: prompts decoded in a "
                        "previous prediction's frame (with its mask_input) must lie inside it."
                    )
        elif mask_input is not None and grid.is_tiled:
            raise ValueError(
                "mask_input are low-res logits of a previous prediction, which belong to the "
                "block it was decoded in: pass frame=previous.box with them."
            )
        if mask_input is not None and len(prompts) > 1:
            raise ValueError("On a tiled image mask_input takes one object at a time, not K boxes.")
        routes = [self._route(prompt, frame) for prompt in prompts]
        follow = self.follow_cut_objects and frame is None and mask_input is None
        return self._predict_all(prompts, routes, batched, mask_input, multimask, follow)

    def _route(self, prompt: Prompt, frame: Box | None) -> tuple[Box, int | None]:
        """The frame a prompt is decoded in first and its tile (None for a window)."""
        grid = self.grid
        if frame is not None:
            matches = np.flatnonzero((grid.outer_boxes() == np.array(frame)).all(axis=1))
            return frame, int(matches[0]) if matches.size else None
        index, margin = choose_tile(grid, prompt.extent())
        if margin >= 0:
            return grid.tile(index).outer, index
        # No tile holds the whole prompt: a window over it.
        r0, c0, r1, c1 = prompt.extent()
        extent = (round(r0), round(c0), round(r1), round(c1))
        side = self._window_side(extent)
        if extent[2] - extent[0] + 1 > side[0] or extent[3] - extent[1] + 1 > side[1]:
            raise ValueError(
                f"These prompts span {extent[2] - extent[0] + 1} x {extent[3] - extent[1] + 1} "
                f"pixels, more than the largest window SAM is shown ({self.max_window} pixels a "
                "side, which it sees shrunk to its input size): draw a smaller box or prompt a "
                "downscaled copy of the image."
            )
        no_cut = (False,) * 4
        return window_box(
            extent, no_cut, side, grid.image_shape, prompt.extent(), self.margin
        ), None

    def _predict_all(
        self,
        prompts: list[Prompt],
        routes: list[tuple[Box, int | None]],
        batched: bool,
        mask_input: np.ndarray | None,
        multimask: bool,
        follow: bool,
    ) -> Steps:
        results = []
        for prompt, (frame, tile) in zip(prompts, routes):
            result = yield from self._decode(frame, tile, prompt, mask_input, multimask)
            if follow:
                result = yield from self._follow(result, prompt, multimask)
            results.append(result)
        return results if batched else results[0]

    def _follow(self, result: TiledPrediction, prompt: Prompt, multimask: bool) -> Steps:
        """Decode again in windows over the object while its mask is cut by a cutting edge."""
        for _ in range(MAX_WINDOWS):
            best = result.masks[result.best]
            cut = touched_cut_sides(best, result.box, self.grid)
            if not any(cut):
                break
            known = _union(mask_extent(best, result.box), prompt.extent())
            window = window_box(
                known, cut, self._window_side(known), self.grid.image_shape, prompt.extent(),
                self.margin,
            )  # fmt: skip
            if window == result.box:
                break  # the window would see what this frame saw
            result = yield from self._decode(window, None, prompt, None, multimask)
        return result

    def _window_side(self, extent: tuple[int, int, int, int]) -> tuple[int, int]:
        """(rows, cols) of a window over ``extent``: the input size, or the tiles' own outer
        size when larger (so a window never sees less around the object than a tile), grown
        to hold the extent with margins, at most ``max_window``."""
        grid = self.grid
        side = []
        for axis in (0, 1):
            base = max(self.input_size, grid.tile_shape[axis] + 2 * grid.halo[axis])
            needed = extent[axis + 2] - extent[axis] + 1 + 2 * self.margin
            side.append(min(max(base, needed), self.max_window))
        return side[0], side[1]

    def _decode(
        self,
        frame: Box,
        tile: int | None,
        prompt: Prompt,
        mask_input: np.ndarray | None,
        multimask: bool,
    ) -> Steps:
        predictor = yield from self._bound(frame, tile)
        masks, scores, logits = predictor.predict(
            **prompt.in_frame(frame), mask_input=mask_input, multimask=multimask
        )
        return TiledPrediction(masks, scores, logits, frame, tile, self.grid.image_shape)

    # ---- frames ----------------------------------------------------------------------------

    def _bound(self, frame: Box, tile: int | None) -> Steps:
        """A predictor bound to ``frame``'s embedding: a warm one, else the tile's embedding,
        else encoded now (one step)."""

        predictor = self._frames.get(frame)
        if predictor is not None:
            self._frames.move_to_end(frame)
            return predictor
        embedding = self.embeddings.get(tile) if tile is not None else None
        if embedding is None:
            yield 0, 1
            embedding = self._encode(frame, None)
            if tile is not None:
                self.embeddings[tile] = embedding
            yield 1, 1
        predictor = self.predictor.encoder_twin()
        predictor.set_image_embedding(embedding.features, embedding.original_size)
        self._frames[frame] = predictor
        while len(self._frames) > self.warm_frames:
            self._frames.popitem(last=False)
        return predictor

    def _encode(self, frame: Box, progress: ProgressCallback | None) -> ImageEmbedding:
        progress = self.encode_progress if progress is None else progress
        self.predictor.set_image(self._source().rgb(frame), progress=progress)
        state = self.predictor.get_embedding_state()
        # A copy: the encoder's next image must not share its memory.
        return ImageEmbedding(np.array(state.features, copy=True), state.original_size)

    def _checked_frame(self, frame: Box) -> Box:
        h, w = self.grid.image_shape
        values = np.asarray(frame)
        if values.shape != (4,) or not np.all(values == np.round(values)):
            raise ValueError(
                f"frame must be (min_row, min_col, max_row, max_col) pixels; got {frame!r}."
            )
        r0, c0, r1, c1 = (int(v) for v in values)
        if not (0 <= r0 < r1 <= h and 0 <= c0 < c1 <= w):
            raise ValueError(f"frame {frame!r} is not a block of the {h} x {w} image.")
        return r0, c0, r1, c1

    def _require_image(self) -> TileGrid:
        if self.grid is None:
            raise ValueError("No image is set: call set_image(image) before predicting.")
        return self.grid

    def _source(self) -> SourceImage:
        self._require_image()
        return self.source


def _union(
    extent: tuple[int, int, int, int] | None, prompt: tuple[float, float, float, float]
) -> tuple[int, int, int, int]:
    """The inclusive pixel box holding a mask's extent (if any) and a prompt's extent."""
    p = (
        int(np.floor(prompt[0] + 0.5)),
        int(np.floor(prompt[1] + 0.5)),
        int(np.floor(prompt[2] + 0.5)),
        int(np.floor(prompt[3] + 0.5)),
    )
    if extent is None:
        return p
    return min(extent[0], p[0]), min(extent[1], p[1]), max(extent[2], p[2]), max(extent[3], p[3])
