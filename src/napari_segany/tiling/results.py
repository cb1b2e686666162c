"""What a prompt on a tiled image returns: masks over a window of the image, not the whole.

On a 20000 x 20000 image a full-size mask is 400 MB (and SAM gives three), so masks come back
over the *frame* they were decoded in (an outer tile, or a window over a cut object) with its
place in the image. This is the form everywhere in tiled work, whatever the image's size; ask
for :meth:`TiledPrediction.full_masks` only where the image is small enough to hold M copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grid import Box


@dataclass(frozen=True, eq=False)
class TiledPrediction:
    """Masks for one object's prompts.

    masks: (M, h, w) bool over ``box``; scores: (M,) float32 predicted IoU; low_res_logits:
    (M, 256, 256) float32 in ``box``'s frame (pass one back as ``mask_input`` with
    ``frame=box``). box: (min_row, min_col, max_row, max_col), max exclusive: where the masks
    lie in the image, the block the decoder saw. tile: the tile whose embedding decoded it, or
    None for a window encoded for a cut object. image_shape: the whole image's (H, W).
    M is 3 (multimask) or 1.
    """

    masks: np.ndarray
    scores: np.ndarray
    low_res_logits: np.ndarray
    box: Box
    tile: int | None
    image_shape: tuple[int, int]

    @property
    def offset(self) -> tuple[int, int]:
        """(row, col) of the masks' top-left pixel in the image."""
        return self.box[0], self.box[1]

    @property
    def best(self) -> int:
        """Index of the mask with the highest predicted IoU."""
        return int(np.argmax(self.scores))

    def full_masks(self) -> np.ndarray:
        """(M, H, W) bool at the whole image's size (M * H * W bytes: small images only)."""
        full = np.zeros((self.masks.shape[0], *self.image_shape), dtype=bool)
        r0, c0, r1, c1 = self.box
        full[:, r0:r1, c0:c1] = self.masks
        return full

    def paste(self, labels: np.ndarray, value: int, index: int | None = None) -> None:
        """Write ``value`` into ``labels`` (H, W) where mask ``index`` (default the best) is
        set, touching only the window."""
        r0, c0, r1, c1 = self.box
        mask = self.masks[self.best if index is None else index]
        labels[r0:r1, c0:c1][mask] = value
