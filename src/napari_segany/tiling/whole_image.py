"""A tiled image behind :class:`~napari_segany.Predictor`'s own ``predict``: prompts in
whole-image pixels, answers in the form the image's size allows.

``Predictor.set_image(image, tile_shape=...)`` hands a tiled image to a :class:`TiledImage`.
Its answers follow one rule (:data:`FULL_MASKS_MAX_PIXELS`):

* images of at most 4096 x 4096 pixels (16.8 megapixels) get what an untiled image gets, masks
  at the whole image's size: ``(masks (M, H, W), scores (M,), low_res_logits (M, 256, 256))``;
* larger images get a :class:`~napari_segany.tiling.TiledPrediction` (a list of them for K
  boxes): masks over the window they were decoded in, with its place in the image, so a click
  on a 20000 x 20000 image costs what a tile costs, not 3 x 400 MB of masks.

The low-res logits belong to the window they were decoded in; passed back as ``mask_input``
they are decoded in the window of the prediction that made them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .grid import Box
from .predictor import TiledPredictor
from .results import TiledPrediction

if TYPE_CHECKING:
    from ..predictor import Predictor

# Above this many pixels a tiled image's predictions come back as windows (TiledPrediction):
# three full-size masks of a 4096 x 4096 image are 50 MB, of a 20000 x 20000 one 1.2 GB.
FULL_MASKS_MAX_PIXELS = 4096 * 4096

Answer = tuple[np.ndarray, np.ndarray, np.ndarray] | TiledPrediction | list[TiledPrediction]


def tiled_image(
    predictor: Predictor,
    image: Any,
    contrast_limits: tuple[float, float] | None,
    tile_shape: int | tuple[int, int] | str | None,
    halo: int | tuple[int, int] | None,
) -> TiledImage | None:
    """``image`` on a new :class:`TiledImage` for ``predictor``, or None when the tiling asked
    for gives one tile (the image is then encoded whole, as without tiling)."""
    tiled = TiledPredictor.for_image(
        predictor.encoder_twin(), image, contrast_limits, tile_shape, halo
    )
    return None if tiled is None else TiledImage(tiled)


class TiledImage:
    """A :class:`TiledPredictor` and the frame of its last answer, for ``Predictor.predict``.

    predictor: the Predictor that holds it; tiles are encoded by a twin sharing its model,
    precision, decoder and (compiled) encoder, so the holder's own state is left alone.
    """

    def __init__(self, tiled: TiledPredictor) -> None:
        self.tiled = tiled
        self.last_frame: Box | None = None

    @property
    def original_size(self) -> tuple[int, int]:
        return self.tiled.original_size

    @property
    def returns_windows(self) -> bool:
        """Whether :meth:`predict` answers with :class:`TiledPrediction` windows."""
        h, w = self.original_size
        return h * w > FULL_MASKS_MAX_PIXELS

    def predict(
        self,
        points: np.ndarray | None,
        labels: np.ndarray | None,
        box: np.ndarray | None,
        mask_input: np.ndarray | None,
        multimask: bool,
    ) -> Answer:
        frame = None
        if mask_input is not None:
            if self.last_frame is None:
                raise ValueError(
                    "mask_input are the low-res logits of a previous prediction on this image, "
                    "but nothing was predicted on it yet: predict without mask_input first."
                )
            frame = self.last_frame
        result = self.tiled.predict(points, labels, box, mask_input, multimask, frame=frame)
        results = result if isinstance(result, list) else [result]
        if not isinstance(result, list):
            self.last_frame = result.box
        if self.returns_windows:
            return result
        masks = np.stack([r.full_masks() for r in results])
        scores = np.stack([r.scores for r in results])
        logits = np.stack([r.low_res_logits for r in results])
        if isinstance(result, list):
            return masks, scores, logits
        return masks[0], scores[0], logits[0]
