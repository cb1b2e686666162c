"""Model weights: the registry of models by name (SAM's and micro-sam's), verified downloads,
imports of files the user has, reading checkpoints (and micro-sam's instance decoders) safely
and building the architecture they describe."""

from __future__ import annotations

from .registry import (
    CACHE_ENV,
    DEFAULT_MODEL_CPU,
    DEFAULT_MODEL_GPU,
    MODEL_DOMAINS,
    MODEL_ENV,
    REGISTRY,
    ModelInfo,
    cache_dir,
    default_model,
    is_registered,
    list_models,
    model_info,
)

__all__ = [
    "CACHE_ENV",
    "DEFAULT_MODEL_CPU",
    "DEFAULT_MODEL_GPU",
    "MODEL_DOMAINS",
    "MODEL_ENV",
    "REGISTRY",
    "ModelInfo",
    "cache_dir",
    "checkpoint_for",
    "decoder_for",
    "default_model",
    "import_checkpoint",
    "is_registered",
    "list_models",
    "load_model",
    "model_has_decoder",
    "model_info",
]


def __getattr__(name: str):
    # Downloads need requests and pooch, loading needs torch: both load on first use.
    if name in ("checkpoint_for", "decoder_for"):
        from . import download

        return getattr(download, name)
    if name == "import_checkpoint":
        from .importing import import_checkpoint

        return import_checkpoint
    if name == "load_model":
        from .loading import load_model

        return load_model
    if name == "model_has_decoder":
        from .decoder_files import model_has_decoder

        return model_has_decoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
