"""What one decode gives the user: each object's candidate masks, and which one is shown."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Prediction:
    """Masks for one set of prompts on one slice.

    masks: (K, M, H, W) bool, scores: (K, M) — K objects (1 for point prompts, one per box),
    M candidates (3 for an ambiguous single click, else 1). ``rank`` below counts candidates
    from the best predicted IoU down, and wraps around.
    """

    masks: np.ndarray
    scores: np.ndarray
    multimask: bool

    def candidate(self, rank: int, obj: int = 0) -> int:
        """Index of object ``obj``'s ``rank``-th best candidate (0 without a choice)."""
        if not self.multimask:
            return 0
        order = np.argsort(-self.scores[obj], kind="stable")
        return int(order[rank % self.masks.shape[1]])

    def objects(self, rank: int) -> np.ndarray:
        """(H, W) int32: object k's shown candidate painted with k + 1, 0 elsewhere."""
        k, _, h, w = self.masks.shape
        painted = np.zeros((h, w), dtype=np.int32)
        for i in range(k):
            painted[self.masks[i, self.candidate(rank, i)]] = i + 1
        return painted

    def describe(self, rank: int) -> str:
        """One line for the user: which candidate is shown and its predicted IoU."""
        if self.multimask:
            shown = rank % self.masks.shape[1]
            best = " (best)" if shown == 0 else ""
            iou = self.scores[0, self.candidate(rank)]
            return f"{shown + 1} of {self.masks.shape[1]}{best} · predicted IoU {iou:.2f}"
        ious = ", ".join(f"{s:.2f}" for s in self.scores[:, 0])
        return f"{self.masks.shape[0]} object(s) · predicted IoU {ious}"
