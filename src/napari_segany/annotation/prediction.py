"""What one decode gives the user: each object's candidate masks, and which one is shown.

Masks are kept in the window of the image they cover, not at the image's size: a click on a
20000 x 20000 image costs the size of its object, not 400 million pixels per candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Window = tuple[int, int, int, int]
"""(min_row, min_col, max_row, max_col), max exclusive, in image pixels."""


@dataclass(frozen=True)
class Prediction:
    """Masks for one set of prompts on one slice.

    masks: (K, M, h, w) bool inside ``window`` of an image of ``image_shape``; scores: (K, M)
    — K objects (1 for point prompts, one per box), M candidates (3 for an ambiguous single
    click, else 1). ``rank`` below counts candidates from the best predicted IoU down, and
    wraps around.
    """

    masks: np.ndarray
    scores: np.ndarray
    multimask: bool
    window: Window
    image_shape: tuple[int, int]

    @classmethod
    def from_masks(
        cls,
        masks: np.ndarray,
        scores: np.ndarray,
        multimask: bool,
        offset: tuple[int, int] = (0, 0),
        image_shape: tuple[int, int] | None = None,
    ) -> Prediction:
        """The prediction of (K, M, h, w) masks placed at ``offset`` of an image of
        ``image_shape`` (default: the masks are the whole image), cropped to the pixels any
        candidate covers (at least one pixel, so an empty answer still has a place)."""
        k, m, h, w = masks.shape
        shape = image_shape or (h, w)
        rows = np.flatnonzero(masks.any(axis=(0, 1, 3)))
        cols = np.flatnonzero(masks.any(axis=(0, 1, 2)))
        if rows.size == 0:
            r0 = c0 = 0
            r1 = c1 = 1
        else:
            r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        crop = np.ascontiguousarray(masks[:, :, r0:r1, c0:c1])
        if crop.shape[2:] != (r1 - r0, c1 - c0):  # an empty answer on an image of 0 rows
            crop = np.zeros((k, m, r1 - r0, c1 - c0), dtype=bool)
        window = (offset[0] + r0, offset[1] + c0, offset[0] + r1, offset[1] + c1)
        return cls(crop, np.asarray(scores, dtype=np.float32), multimask, window, tuple(shape))

    @property
    def n_objects(self) -> int:
        return int(self.masks.shape[0])

    def candidate(self, rank: int, obj: int = 0) -> int:
        """Index of object ``obj``'s ``rank``-th best candidate (0 without a choice)."""
        if not self.multimask:
            return 0
        order = np.argsort(-self.scores[obj], kind="stable")
        return int(order[rank % self.masks.shape[1]])

    def shown_masks(self, rank: int) -> np.ndarray:
        """(K, h, w) bool: each object's shown candidate, in the window."""
        return np.stack([self.masks[i, self.candidate(rank, i)] for i in range(self.n_objects)])

    def objects(self, rank: int) -> np.ndarray:
        """(h, w) int32 over the window: object k's shown candidate painted with k + 1."""
        painted = np.zeros(self.masks.shape[2:], dtype=np.int32)
        for i, mask in enumerate(self.shown_masks(rank)):
            painted[mask] = i + 1
        return painted

    def whole_objects(self, rank: int) -> np.ndarray:
        """(H, W) int32 over the whole image: :meth:`objects` placed at the window."""
        full = np.zeros(self.image_shape, dtype=np.int32)
        r0, c0, r1, c1 = self.window
        full[r0:r1, c0:c1] = self.objects(rank)
        return full

    def empty(self, rank: int) -> list[int]:
        """Indices of the objects whose shown mask has no pixel."""
        return [i for i, mask in enumerate(self.shown_masks(rank)) if not mask.any()]

    def describe(self, rank: int) -> str:
        """One line for the user: which candidate is shown, its predicted IoU, empty masks."""
        empty = self.empty(rank)
        if self.multimask:
            shown = rank % self.masks.shape[1]
            best = " (best)" if shown == 0 else ""
            iou = self.scores[0, self.candidate(rank)]
            text = f"{shown + 1} of {self.masks.shape[1]}{best} · predicted IoU {iou:.2f}"
            return text + (" · this mask is empty: press K for another" if empty else "")
        if len(empty) == self.n_objects:
            return "SAM found no object here: move the prompts or add positive points"
        kept = [i for i in range(self.n_objects) if i not in empty]
        ious = ", ".join(f"{self.scores[i, 0]:.2f}" for i in kept)
        text = f"{len(kept)} object(s) · predicted IoU {ious}"
        return text + (f" · {len(empty)} box(es) gave an empty mask" if empty else "")
