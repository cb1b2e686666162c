"""What encoding one image gives: its embedding and the size of the image it belongs to."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageEmbedding:
    """What :meth:`Predictor.set_image` computes, enough to resume without re-encoding.

    features: (1, C, h, w) float32; original_size: the image's (H, W).
    """

    features: np.ndarray
    original_size: tuple[int, int]
