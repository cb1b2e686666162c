"""Batch instance segmentation with the model's decoder (micro-sam's AIS and APG): the task
that segments one plane on a worker, and the checks made on the client before any work.

The runs, outputs and resuming are segment-everything's (:mod:`.run`, :mod:`.jobs`): only the
task that turns a plane into labels differs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .inputs import ImagePlan, read_plane
from .tiles import Tiling, tiled_plane
from .worker import ModelSpec, PlaneResult, _predictor, _reported, _worker_address

EVERYTHING = "amg"
MODES = ("ais", "apg", EVERYTHING)


def checked_params(mode: str, params: dict[str, Any], coco: bool) -> dict[str, Any]:
    """The settings of ``mode`` (``amg``: segment everything's; ``ais``, ``apg``: micro-sam's),
    checked before any work: ValueError for a bad value or mode, TypeError for a setting of
    another mode."""
    if mode == EVERYTHING:
        from ..automatic import settings_from

        settings_from(params)
        return dict(params)
    if mode not in MODES:
        raise ValueError(
            f"Unknown mode {mode!r}: use 'ais' (instances from the model's decoder, fastest), "
            "'apg' (SAM prompted at the decoder's seeds) or 'amg' (segment everything)."
        )
    if coco:
        raise ValueError(
            "The SA-1B/COCO masks file holds segment-everything's per-mask scores, which "
            f"mode={mode!r} does not have: leave out coco (--coco), or use mode 'amg'."
        )
    from ..instances.params import params_from

    params_from(mode, params)
    return dict(params)


def require_decoder(model: Any, spec: ModelSpec) -> None:
    """ValueError naming the model when it has no instance decoder (before any input)."""
    from ..weights.instance_decoder import require_instance_decoder

    require_instance_decoder(model, spec.model)


@_reported
def segment_instances_plane(
    plan: ImagePlan,
    index: int,
    spec: ModelSpec,
    params: dict[str, Any],
    contrast_limits: tuple[float, float] | None,
    coco: bool,
    mode: str,
    tiling: Tiling | None = None,
    folder: str | None = None,
) -> PlaneResult:
    """The task: the instances of one plane (labels 1..objects) with the worker's model.

    With ``tiling`` (AIS only), a plane it cuts is decoded tile by tile and watershedded whole,
    reading the tile embeddings ``embed --tile-shape`` stored at ``folder`` where they are.
    """
    from skimage.segmentation import relabel_sequential

    from ..instances import segment_instances

    start = time.perf_counter()
    plane = read_plane(plan, index)
    tiled = None if tiling is None else tiled_plane(plane, contrast_limits, spec, tiling, folder)
    if tiled is not None:
        labels = segment_instances(tiled, mode=mode, **params)
    else:
        labels = segment_instances(
            _predictor(spec), plane, mode=mode, contrast_limits=contrast_limits, **params
        )
    labels = relabel_sequential(labels)[0].astype(np.int32, copy=False)  # ids follow on
    return PlaneResult(
        objects=int(labels.max(initial=0)),
        worker=_worker_address(),
        seconds=time.perf_counter() - start,
        labels=labels,
    )
