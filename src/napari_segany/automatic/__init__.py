"""Segment everything: prompt an image with a grid of points and keep the confident, stable,
non-overlapping masks, as the reference ``SamAutomaticMaskGenerator`` does.

``generator`` runs it, ``params`` defines its settings (for the API, the command line and the
widget), ``filters`` and ``geometry`` are its parts, ``records`` what it returns and ``coco``
how results are written in SA-1B's format.
"""

from __future__ import annotations

from .generator import generate_masks, iter_generate_masks
from .params import PRESETS, SETTINGS, AutomaticParams, preset, settings_from
from .records import MaskRecord, masks_to_labels

__all__ = [
    "PRESETS",
    "SETTINGS",
    "AutomaticParams",
    "MaskRecord",
    "generate_masks",
    "iter_generate_masks",
    "masks_to_labels",
    "preset",
    "settings_from",
]
