"""Large images in tiles: micro-sam's tile geometry, the whole image's intensity mapping,
embeddings encoded on demand, prompts decoded where objects are not cut, and segment
everything across tiles.

Masks of tiled work come back over a window of the image with its place in it, never at the
whole image's size (see :mod:`.results` and :mod:`.records`). Importing this package does not
import torch.
"""

from __future__ import annotations

from .everything import generate_tiled_masks, iter_generate_tiled_masks
from .grid import Box, Tile, TileGrid, auto_tiling
from .intensity import whole_image_range
from .predictor import TiledPredictor
from .records import TiledMaskRecord
from .results import TiledPrediction
from .source import SourceImage

__all__ = [
    "Box",
    "SourceImage",
    "Tile",
    "TileGrid",
    "TiledMaskRecord",
    "TiledPrediction",
    "TiledPredictor",
    "auto_tiling",
    "generate_tiled_masks",
    "iter_generate_tiled_masks",
    "whole_image_range",
]
