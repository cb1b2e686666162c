"""What runs on a dask worker: the model each worker process loads once and keeps, and the
tasks that segment or encode one plane with it."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelLoadError
from .inputs import ImagePlan, PathLike, read_plane

if TYPE_CHECKING:
    from ..embeddings import ImageEmbedding
    from ..predictor import Predictor


# ---- the model on a worker -------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """Which model a worker loads: a name or path as the workers resolve it, device, precision."""

    model: str
    device: str
    precision: str


_MODELS: dict[ModelSpec, Any] = {}
_MODELS_LOCK = threading.Lock()


def cached_models() -> list[ModelSpec]:
    """The models this process (a dask worker, or the client) holds for batch tasks."""
    with _MODELS_LOCK:
        return list(_MODELS)


def clear_model_cache() -> None:
    """Free the models that batch tasks loaded in this process."""
    with _MODELS_LOCK:
        _MODELS.clear()


def load_cached_model(spec: ModelSpec) -> Any:
    """The model ``spec`` names, loaded on first use and kept for this process's later tasks.
    Raises ModelLoadError."""
    # Loaded under the lock so that two threads of one worker never load the same model twice;
    # the model is shared, each task builds its own (stateful) Predictor around it.
    with _MODELS_LOCK:
        model = _MODELS.get(spec)
        if model is None:
            from ..weights.loading import load_model

            try:
                model = load_model(spec.model, spec.device)
            except Exception as exc:
                raise ModelLoadError(f"Could not load model {spec.model!r}: {exc}") from None
            _MODELS[spec] = model
    return model


def _predictor(spec: ModelSpec) -> Predictor:
    from ..predictor import Predictor

    return Predictor(load_cached_model(spec), precision=spec.precision)


def _encoder_precision(spec: ModelSpec) -> str:
    """``fp32``, ``bf16`` or ``fp16``: what the encoder runs in here (``auto`` depends on the
    worker's hardware), for embedding keys."""
    from ..devices import resolve_device
    from ..precision import resolved_precision_name

    return resolved_precision_name(spec.precision, resolve_device(spec.device))


def model_spec(model: PathLike | None, device: str, precision: str, remote: bool) -> ModelSpec:
    """Check the model, device and precision arguments on the client, before any work; for a
    local run (not ``remote``) also that this machine can run them."""
    from ..precision import PRECISIONS
    from ..weights.registry import default_model, is_registered

    precision = str(precision).strip().lower()
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}.")
    name = os.fspath(model) if model is not None else default_model()
    if not is_registered(name):
        path = Path(name).expanduser()
        if not path.is_file():
            from ..weights.registry import model_info

            if not any(sep in name for sep in ("/", os.sep)) and path.suffix == "":
                model_info(name)  # ValueError naming the registered models
            raise FileNotFoundError(f"Checkpoint file not found: {path}")
        # Workers may start in another folder: give them an absolute path.
        name = str(path.resolve())
    spec = ModelSpec(model=name, device=str(device), precision=precision)
    if not remote:
        _encoder_precision(spec)  # a clear error now (bad device, fp16 on a CPU), not per input
    return spec


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"


# ---- segment-everything tasks ----------------------------------------------------------------


@dataclass(frozen=True)
class PlaneResult:
    """What a task returns for one plane. labels: (H, W) int32, 1..objects (segment);
    annotations: SA-1B dicts without id; embedding: None when the plane was skipped (embed).
    saved: the files the task wrote itself (a tiled plane's tile embeddings).

    error: why the plane failed (the task reports its failure rather than raising it, so dask
    does not log a traceback beside the message); fatal: the model itself could not load.
    """

    objects: int
    worker: str
    seconds: float
    labels: np.ndarray | None = None
    annotations: list[dict[str, Any]] = field(default_factory=list)
    key: str = ""
    embedding: ImageEmbedding | None = None
    saved: tuple[Path, ...] = ()
    error: str = ""
    fatal: bool = False


def describe(exc: BaseException) -> str:
    """An exception as a line for the run's report: its message, with its type when that is
    not self-explanatory."""
    text = str(exc).strip()
    if isinstance(exc, (ValueError, OSError, TypeError, ModelLoadError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _reported(task: Callable[..., PlaneResult]) -> Callable[..., PlaneResult]:
    """The task, with its failure returned as a PlaneResult instead of raised."""

    @functools.wraps(task)
    def run(*args: Any, **kwargs: Any) -> PlaneResult:
        start = time.perf_counter()
        try:
            return task(*args, **kwargs)
        except Exception as exc:
            return PlaneResult(
                objects=0, worker=_worker_address(), seconds=time.perf_counter() - start,
                error=describe(exc), fatal=isinstance(exc, ModelLoadError),
            )  # fmt: skip

    return run


@_reported
def segment_plane(
    plan: ImagePlan,
    index: int,
    spec: ModelSpec,
    params: dict[str, Any],
    contrast_limits: tuple[float, float] | None,
    coco: bool,
) -> PlaneResult:
    """The task: segment everything in one plane with the worker's cached model."""
    from ..automatic import generate_masks, masks_to_labels
    from ..automatic.coco import sa1b_annotation

    start = time.perf_counter()
    plane = read_plane(plan, index)
    predictor = _predictor(spec)
    records = generate_masks(predictor, plane, contrast_limits=contrast_limits, **params)
    labels = masks_to_labels(records, plan.plane_shape)
    annotations = [sa1b_annotation(r) for r in records] if coco else []
    return PlaneResult(
        objects=len(records),
        worker=_worker_address(),
        seconds=time.perf_counter() - start,
        labels=labels,
        annotations=annotations,
    )


def input_contrast_limits(plan: ImagePlan) -> tuple[float, float] | None:
    """The task behind embed's default limits (see ``napari_contrast_limits``); None when the
    input cannot be read, which its planes' own tasks then report."""
    from .inputs import napari_contrast_limits

    try:
        return napari_contrast_limits(plan)
    except Exception:
        return None


@_reported
def embed_plane(
    plan: ImagePlan,
    index: int,
    spec: ModelSpec,
    contrast_limits: tuple[float, float] | None,
    existing: frozenset[str],
) -> PlaneResult:
    """The task: encode one plane unless its key is in ``existing``."""
    from ..embeddings import embedding_key, model_fingerprint
    from ..imaging import to_uint8_rgb

    start = time.perf_counter()
    rgb = to_uint8_rgb(read_plane(plan, index), contrast_limits)
    key = embedding_key(rgb, model_fingerprint(spec.model), _encoder_precision(spec))
    worker = _worker_address()
    if key in existing:
        return PlaneResult(objects=0, worker=worker, seconds=0.0, key=key)
    predictor = _predictor(spec)
    predictor.set_image(rgb)
    return PlaneResult(
        objects=1,
        worker=worker,
        seconds=time.perf_counter() - start,
        key=key,
        embedding=predictor.get_embedding_state(),
    )
