"""Automatic instance segmentation with micro-sam's instance decoder: AIS and APG.

micro-sam's finetuned SAMs come with a small decoder that turns one image embedding into
foreground and distance maps (:mod:`.maps`); a watershed of those maps gives every object in
one pass (AIS, :mod:`.ais`), or SAM decodes a point prompt from each of their seeds (APG,
:mod:`.apg`). :func:`segment_instances` runs either; :mod:`.params` holds their settings,
:mod:`.files` reads micro-sam's model files, :mod:`.models` lists micro-sam's models and
:mod:`.download` fetches them, verified. Importing this package does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .models import (
    DEFAULT_MICROSCOPY_MODEL_CPU,
    DEFAULT_MICROSCOPY_MODEL_GPU,
    DOMAINS,
    MICROSAM_MODELS,
    MicroSamModel,
    models_by_domain,
)
from .params import MODES, AisParams, ApgParams, params_from

# public name -> module that defines it (loaded on first use: they need scipy or torch)
_LAZY = {
    "segment_instances": ".segment",
    "iter_segment_instances": ".segment",
    "InstanceMaps": ".maps",
    "predict_instance_maps": ".maps",
    "watershed_instances": ".ais",
    "attach_instance_decoder": ".decoder",
    "build_instance_decoder": ".decoder",
    "instance_decoder_of": ".decoder",
    "decoder_file_beside": ".files",
    "load_sam_with_decoder": ".files",
    "read_decoder_file": ".files",
    "read_sam_and_decoder": ".files",
    "download_verified": ".download",
    "fetch_microsam_model": ".download",
    "verify_file": ".download",
}

__all__ = [
    "AisParams",
    "ApgParams",
    "DEFAULT_MICROSCOPY_MODEL_CPU",
    "DEFAULT_MICROSCOPY_MODEL_GPU",
    "DOMAINS",
    "InstanceMaps",
    "MICROSAM_MODELS",
    "MODES",
    "MicroSamModel",
    "attach_instance_decoder",
    "build_instance_decoder",
    "decoder_file_beside",
    "download_verified",
    "fetch_microsam_model",
    "instance_decoder_of",
    "iter_segment_instances",
    "load_sam_with_decoder",
    "models_by_domain",
    "params_from",
    "predict_instance_maps",
    "read_decoder_file",
    "read_sam_and_decoder",
    "segment_instances",
    "verify_file",
    "watershed_instances",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
