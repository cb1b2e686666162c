"""How much two masks agree, measured as micro-sam measures it for its stop rule."""

from __future__ import annotations

import numpy as np

_EPS = 1e-7


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (H, W) bool masks; 0 for two empty masks.

    The union carries micro-sam's 1e-7, so a threshold of 1 stops even at identical masks, as
    it does there.
    """
    overlap = np.count_nonzero(a & b)
    union = np.count_nonzero(a | b)
    return float(overlap) / (float(union) + _EPS)
