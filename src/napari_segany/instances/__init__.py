"""Automatic instance segmentation with micro-sam's instance decoder: AIS and APG.

micro-sam's finetuned SAMs come with a small decoder that turns one image embedding into
foreground and distance maps (:mod:`.maps`); a watershed of those maps gives every object in
one pass (AIS, :mod:`.ais`), or SAM decodes a point prompt from each of their seeds (APG,
:mod:`.apg`). :func:`segment_instances` runs either; :mod:`.params` holds their settings.
micro-sam's models, their verified downloads, its file formats and the decoder's loading
belong to the model weights (:mod:`napari_segany.weights`) and are named here too. Importing
this package does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ..weights.microsam import (
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
    "attach_instance_decoder": "..weights.instance_decoder",
    "build_instance_decoder": "..weights.instance_decoder",
    "instance_decoder_of": "..weights.instance_decoder",
    "decoder_file_beside": "..weights.decoder_files",
    "load_sam_with_decoder": "..weights.decoder_files",
    "read_decoder_file": "..weights.decoder_files",
    "read_sam_and_decoder": "..weights.decoder_files",
    "download_verified": "..weights.microsam_download",
    "fetch_microsam_model": "..weights.microsam_download",
    "verify_file": "..weights.microsam_download",
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
