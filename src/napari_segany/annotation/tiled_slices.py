"""Large displayed slices in tiles: the tiled predictor of each, and their answers as the
widget's :class:`~.prediction.Prediction` over a window of the slice.

A slice is tiled when its tiling (``"auto"`` by default, see
:func:`~napari_segany.tiling.auto_tiling`) gives more than one tile. Its tiles are encoded when
a prompt needs them, read from the embedding store where ``napari-segany embed --tile-shape``
put them, and kept in memory up to a bound, so a 20000 x 20000 slice costs a few tiles.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..embeddings import EmbeddingKey, EmbeddingStore
from ..tiling import TiledPrediction, TiledPredictor
from .prediction import Prediction

if TYPE_CHECKING:
    from ..predictor import Predictor

# Slices whose tiled predictors are kept (going back to one keeps its encoded tiles).
KEEP_SLICES = 4
# Tile embeddings each slice keeps in memory (4 MiB each for SAM); the least recently used go
# and are encoded again when a prompt comes back to them, unless the store holds them.
KEEP_TILES = 64


class TiledSlices:
    """The tiled predictors of the most recent tiled slices, by embedding key."""

    def __init__(self, tile_shape: Any = "auto", halo: Any = None) -> None:
        self.tile_shape, self.halo = tile_shape, halo
        self._items: OrderedDict[EmbeddingKey, TiledPredictor] = OrderedDict()

    def __contains__(self, key: EmbeddingKey) -> bool:
        return key in self._items

    def get(self, key: EmbeddingKey) -> TiledPredictor | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def prepare(
        self,
        key: EmbeddingKey,
        image: np.ndarray,
        contrast_limits: tuple[float, float] | None,
        predictor: Predictor,
        store: EmbeddingStore,
        model_name: str,
    ) -> TiledPredictor | None:
        """The slice's tiled predictor (nothing encoded yet), or None when the slice is not
        tiled. Hashes the checkpoint once for a model given by path: call it off the GUI
        thread."""
        found = self.get(key)
        if found is not None:
            return found
        tiled = TiledPredictor.for_image(
            predictor.encoder_twin(), image, contrast_limits, self.tile_shape, self.halo
        )
        if tiled is None:
            return None
        from ..embeddings import model_fingerprint
        from ..tiling.stored import use_store

        # Read what embed stored; what is encoded here stays in memory (the store is the user's).
        identity = model_fingerprint(model_name)
        use_store(tiled, store, identity, predictor.dtype, write=False, keep=KEEP_TILES)
        self._items[key] = tiled
        while len(self._items) > KEEP_SLICES:
            self._items.popitem(last=False)
        return tiled

    def drop_where(self, stale: Callable[[EmbeddingKey], bool]) -> int:
        doomed = [k for k in self._items if stale(k)]
        for key in doomed:
            del self._items[key]
        return len(doomed)

    def clear(self) -> None:
        self._items.clear()


def tiled_prediction(
    tiled: TiledPredictor,
    points: np.ndarray | None,
    labels: np.ndarray | None,
    boxes: np.ndarray | None,
    multimask: bool,
) -> Prediction:
    """Decode prompts in whole-slice pixels (encoding the tiles they need) into a Prediction
    over the window the objects cover. boxes: (K, 4) or None."""
    box = None if boxes is None else np.asarray(boxes, dtype=float).reshape(-1, 4)
    result = tiled.predict(points, labels, box=box, multimask=multimask)
    results: list[TiledPrediction] = result if isinstance(result, list) else [result]
    return as_prediction(results, multimask, tiled.original_size)


def as_prediction(
    results: list[TiledPrediction], multimask: bool, image_shape: tuple[int, int]
) -> Prediction:
    """K objects' windows -> one Prediction over the block holding them all (cropped to the
    pixels their masks cover)."""
    boxes = np.array([r.box for r in results])
    r0, c0 = boxes[:, :2].min(axis=0)
    r1, c1 = boxes[:, 2:].max(axis=0)
    m = results[0].masks.shape[0]
    masks = np.zeros((len(results), m, int(r1 - r0), int(c1 - c0)), dtype=bool)
    for k, r in enumerate(results):
        a, b, c, d = r.box
        masks[k, :, a - r0 : c - r0, b - c0 : d - c0] = r.masks
    scores = np.stack([r.scores for r in results])
    return Prediction.from_masks(masks, scores, multimask, (int(r0), int(c0)), image_shape)
