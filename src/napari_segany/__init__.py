"""Segment Anything in napari.

Importing this package is cheap: torch, Qt and napari load only when a model or a widget is
first used, so napari starts as fast with the plugin installed as without it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "load_model": ".weights.loading",
    "list_models": ".weights.registry",
    "ModelInfo": ".weights.registry",
    "default_model": ".weights.registry",
    "cache_dir": ".weights.registry",
    "import_checkpoint": ".weights.importing",
    "checkpoint_for": ".weights.download",
    "Predictor": ".predictor",
    "ImageEmbedding": ".embeddings",
    "EmbeddingStore": ".embeddings",
    "embedding_key": ".embeddings",
    "plane_embedding_key": ".embeddings",
    "model_fingerprint": ".embeddings",
    "embedding_dir": ".embeddings",
    "to_uint8_rgb": ".imaging",
    "available_devices": ".devices",
    "AutomaticParams": ".automatic",
    "MaskRecord": ".automatic",
    "generate_masks": ".automatic",
    "iter_generate_masks": ".automatic",
    "masks_to_labels": ".automatic",
    "encode_rle": ".automatic.coco",
    "decode_rle": ".automatic.coco",
    "segment_files": ".batch",
    "embed_files": ".batch",
    "BatchSummary": ".batch",
    "InputResult": ".batch",
    "CheckpointError": ".errors",
    "DownloadError": ".errors",
    "segment_instances": ".instances",
    "iter_segment_instances": ".instances",
    "segment_volume": ".volumes",
    "iter_segment_volume": ".volumes",
    "track": ".volumes",
    "iter_track": ".volumes",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'napari_segany' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
