"""Segment or encode many image files as dask tasks, locally or on a dask.distributed cluster.

Each 2-D plane of each input is one task; a worker loads the model once and keeps it for the
tasks that follow. The calling process (the client) finds the inputs, skips those whose
outputs exist, collects the tasks' results and writes every output file itself, through a
temporary name and a rename, so a killed run leaves only whole files and resumes where it
stopped. Workers only read inputs, so on a cluster the inputs must be at the same path on the
workers (a shared file system), and a model given by path too.

This module holds the entry points and runs the tasks; ``inputs`` finds and reads the inputs,
``worker`` holds what runs on a worker, ``jobs`` what to submit and write per input, ``output``
how outputs are named and written, and ``summary`` what a run reports.

Headless use::

    import napari_segany

    summary = napari_segany.segment_files(
        ["plate1/*.tif", "overview.png"], "results/", model="vit_t",
        coco=True, points_per_side=16, pred_iou_thresh=0.8,
    )
    print(summary.report())  # results/<name>_labels.tif and results/<name>_masks.json

    # precompute embeddings the widget will find ($NAPARI_SEGANY_EMBEDDING_DIR or the default)
    napari_segany.embed_files(["plate1/"], model="vit_t")

    # the same work on a running dask.distributed cluster
    napari_segany.segment_files("plate1/", "results/", scheduler="tcp://10.0.0.5:8786")

Inputs: TIFF (``.tif``, ``.tiff``; the first series, any number of leading axes, RGB when it
has 3 or 4 samples per pixel), PNG and JPEG; folders (their image files, not recursive) and
glob patterns (``**`` recurses). A label image has the input's shape without the colour axis,
as uint16 (uint32 when there are more than 65535 objects). In a stack each plane is segmented
on its own and its objects get ids after those of the planes before it, so every id in the
file is one object; the JSON annotation ``id`` is the object's label. Outputs mirror the
inputs' folders below the inputs' common folder.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MissingExtraError, ModelLoadError, UnreadableImageError
from ..progress import ProgressCallback
from .inputs import Inputs, PathLike, find_inputs, plan_image
from .instances import checked_params
from .jobs import EmbedJob, Pending, SegmentJob
from .summary import BatchSummary, InputResult, failed_input
from .tiles import Tiling
from .worker import PlaneResult, describe, model_spec

if TYPE_CHECKING:
    from distributed import Client

ResultCallback = Callable[[InputResult], None]

# Seconds to keep trying to reach a scheduler given by address.
SCHEDULER_TIMEOUT_S = 20.0


# ---- public functions ------------------------------------------------------------------------


def segment_files(
    inputs: Inputs,
    output: PathLike,
    model: PathLike | None = None,
    *,
    device: str = "auto",
    precision: str = "auto",
    scheduler: str | Client | None = None,
    workers: int = 1,
    coco: bool = False,
    overwrite: bool = False,
    contrast_limits: tuple[float, float] | None = None,
    progress: ProgressCallback | None = None,
    on_result: ResultCallback | None = None,
    tile_shape: int | tuple[int, int] | str | None = None,
    halo: int | tuple[int, int] | None = None,
    mode: str = "amg",
    **params: Any,
) -> BatchSummary:
    """Segment everything in every input and write ``<name>_labels.tif`` (and, with ``coco``,
    ``<name>_masks.json`` in SA-1B's format, see :mod:`napari_segany.coco`) into ``output``.

    inputs: files, folders and glob patterns. model: a registered name or a checkpoint path
    (default :func:`~napari_segany.default_model`). device, precision: as for ``load_model``.
    scheduler: None for a dask scheduler in this process running ``workers`` tasks at once,
    or the address (``tcp://host:port``) or :class:`distributed.Client` of a running cluster.
    contrast_limits: the intensities mapped to 0 and 255 (default: each plane's 1st and 99th
    percentiles, see :func:`~napari_segany.to_uint8_rgb`). mode: ``amg`` segments everything,
    with params the settings of :class:`~napari_segany.AutomaticParams`; ``ais`` and ``apg``
    segment instances with the model's decoder (micro-sam's models), with params those of
    :func:`~napari_segany.segment_instances`. progress(done, total) counts planes;
    on_result(result) is called for each input as it finishes. tile_shape, halo: as for
    ``Predictor.set_image`` (None: planes are not tiled; ``"auto"`` tiles large ones), for
    ``amg`` and ``ais`` (APG encodes each plane whole); tiled planes read the tile embeddings
    ``embed_files`` stored in the default embedding folder.

    An input whose outputs exist is skipped unless ``overwrite``; an input that cannot be read
    or segmented is reported in the summary and the others go on. Raises before any work for
    bad settings, and :class:`ModelLoadError` when the model cannot be loaded.
    """
    _require_dask()
    params = checked_params(mode, params, coco)
    spec = model_spec(model, device, precision, remote=scheduler is not None)
    out_dir = _output_folder(output)
    contrast = _checked_limits(contrast_limits)
    tiling = _tiling(tile_shape, halo)
    store = None if tiling is None else str(_embedding_dir())
    if tiling is not None and mode == "apg":
        if tile_shape != "auto" or halo is not None:
            raise ValueError(
                "APG decodes its prompts on one embedding of the whole plane, so it does not "
                "tile planes: leave out tile_shape and halo (--tile-shape auto or none), or "
                "use mode 'ais', which does."
            )
        tiling = store = None  # each plane whole, resized to the model's input
    job = SegmentJob(spec, params, contrast, coco, tiling, store, mode=mode)
    return _run(job, inputs, out_dir, scheduler, workers, overwrite, progress, on_result)


def embed_files(
    inputs: Inputs,
    output: PathLike | None = None,
    model: PathLike | None = None,
    *,
    device: str = "auto",
    precision: str = "auto",
    scheduler: str | Client | None = None,
    workers: int = 1,
    overwrite: bool = False,
    contrast_limits: tuple[float, float] | None = None,
    progress: ProgressCallback | None = None,
    on_result: ResultCallback | None = None,
    tile_shape: int | tuple[int, int] | str | None = None,
    halo: int | tuple[int, int] | None = None,
) -> BatchSummary:
    """Encode every plane of every input into an :class:`~napari_segany.EmbeddingStore` at
    ``output`` (default :func:`~napari_segany.embedding_store.embedding_dir`, where the widget
    looks), so that opening those images later needs no encoding.

    contrast_limits: the intensities mapped to 0 and 255; by default what napari shows when it
    opens the file: uint8 as it is, other types from the input's minimum to its maximum (for
    inputs over 10 million values napari estimates them instead: give the layer's limits here
    to match). Planes already in the store are skipped unless ``overwrite``. tile_shape, halo:
    tile large planes and store one embedding per tile (the tasks write them into ``output``
    themselves: on a cluster it must be a folder the workers share). The other arguments are
    those of :func:`segment_files`.
    """
    from ..embeddings import EmbeddingStore

    _require_dask()
    spec = model_spec(model, device, precision, remote=scheduler is not None)
    store = EmbeddingStore(output)
    if store.folder.exists() and not store.folder.is_dir():
        raise ValueError(f"The embedding folder {store.folder} is a file; give a folder.")
    tiling = _tiling(tile_shape, halo)
    job = EmbedJob(spec, _checked_limits(contrast_limits), store, overwrite, tiling)
    return _run(job, inputs, store.folder, scheduler, workers, overwrite, progress, on_result)


# ---- running ---------------------------------------------------------------------------------


def _run(
    job: SegmentJob | EmbedJob,
    inputs: Inputs,
    out_dir: Path,
    scheduler: str | Client | None,
    workers: int,
    overwrite: bool,
    progress: ProgressCallback | None,
    on_result: ResultCallback | None,
) -> BatchSummary:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}.")
    started = time.perf_counter()
    paths, problems = find_inputs(inputs, exclude=out_dir)
    results: dict[int, InputResult] = {}
    order = 0

    def report(index: int, result: InputResult) -> None:
        results[index] = result
        if on_result is not None:
            on_result(result)

    for problem in problems:
        report(order, problem)
        order += 1
    pending: list[Pending] = []
    for path, outputs in zip(paths, job.outputs(paths, out_dir)):
        index, order = order, order + 1
        if not overwrite and job.is_done(outputs):
            report(index, InputResult(path, "skipped", outputs))
            continue
        try:
            plan = plan_image(path)
        except UnreadableImageError as exc:
            report(index, failed_input(path, str(exc)))
            continue
        pending.append(Pending(index, plan, outputs))

    engine = "no scheduler (nothing to do)"
    if pending:
        with _client(scheduler, workers) as (client, engine):
            _run_pending(
                client, job, pending, scheduler is None, started, overwrite, progress, report
            )
    ordered = tuple(results[i] for i in sorted(results))
    return BatchSummary(ordered, time.perf_counter() - started, engine)


def _run_pending(
    client: Client,
    job: SegmentJob | EmbedJob,
    pending: list[Pending],
    local: bool,
    started: float,
    overwrite: bool,
    progress: ProgressCallback | None,
    report: Callable[[int, InputResult], None],
) -> None:
    from distributed import as_completed

    job.prepare(client, local)
    tag = f"{os.getpid()}-{time.time_ns()}"
    owner: dict[Any, tuple[Pending, int]] = {}
    for item in pending:
        for plane, future in enumerate(job.submit(client, item, tag)):
            owner[future] = (item, plane)
    total, done = len(owner), 0
    remaining = {id(item): item.plan.n_planes for item in pending}
    if progress is not None:
        progress(0, total)
    try:
        for future in as_completed(list(owner)):
            item, plane = owner.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # the task reports its own failures; this is dask's
                result = PlaneResult(0, "?", 0.0, error=describe(exc))
            if result.fatal:
                raise ModelLoadError(result.error)
            if result.error:
                where = f"plane {plane}: " if item.plan.n_planes > 1 else ""
                item.error = item.error or where + result.error
            else:
                item.planes[plane] = result
            future.release()
            done += 1
            remaining[id(item)] -= 1
            if progress is not None:
                progress(done, total)
            if remaining[id(item)] == 0:
                report(item.index, _finish(job, item, started, overwrite))
    finally:
        if owner:
            client.cancel(list(owner))


def _finish(job: Any, item: Pending, started: float, overwrite: bool) -> InputResult:
    path = item.plan.path
    seconds = sum(p.seconds for p in item.planes.values())
    workers = tuple(sorted({p.worker for p in item.planes.values()}))
    if item.error:
        return InputResult(path, "failed", message=item.error, workers=workers, seconds=seconds)
    try:
        outputs = tuple(job.finish(item, started, overwrite))
    except Exception as exc:  # one input's outputs failing must not stop the others
        return InputResult(path, "failed", message=f"Could not write its outputs: {describe(exc)}")
    objects = sum(p.objects for p in item.planes.values())
    status = "skipped" if isinstance(job, EmbedJob) and objects == 0 else "done"
    return InputResult(
        path,
        status,
        outputs=outputs,
        slices=item.plan.n_planes,
        objects=objects,
        workers=workers,
        seconds=seconds,
    )


@contextmanager
def _client(scheduler: str | Client | None, workers: int) -> Iterator[tuple[Client, str]]:
    """A dask client: the caller's, one connected to ``scheduler``, or an in-process cluster."""
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        yield scheduler, str(scheduler.scheduler.address)
        return
    if scheduler:
        try:
            client = Client(str(scheduler), timeout=SCHEDULER_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(
                f"Could not reach the dask scheduler at {scheduler}: {exc}. Check the address "
                "(tcp://host:port) and that the scheduler is running."
            ) from None
        with client:
            yield client, str(scheduler)
        return
    # Threads in this process: the model loads once and the inputs never cross a process
    # boundary. memory_limit=0: torch's peaks would otherwise make the worker pause or spill.
    cluster = LocalCluster(
        n_workers=1,
        threads_per_worker=workers,
        processes=False,
        dashboard_address=None,
        memory_limit=0,
    )
    with cluster, Client(cluster) as client:
        yield client, f"a local dask scheduler ({workers} thread{'s' * (workers > 1)})"


# ---- argument checks -------------------------------------------------------------------------


def _require_dask() -> None:
    """Batch runs need dask.distributed, which the plugin's base install leaves out."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            "Batch runs need dask.distributed, which is not installed: "
            "pip install 'napari-segany[batch]' (or '[all]')."
        ) from None


def _tiling(tile_shape: Any, halo: Any) -> Tiling | None:
    """The checked tiling, or None for none (checked before any work)."""
    return None if tile_shape is None and halo is None else Tiling(tile_shape, halo)


def _embedding_dir() -> Path:
    from ..embeddings import embedding_dir

    return embedding_dir()


def _checked_limits(limits: tuple[float, float] | None) -> tuple[float, float] | None:
    if limits is None:
        return None
    try:
        lo, hi = (float(v) for v in limits)
    except (TypeError, ValueError):
        raise ValueError(
            f"contrast_limits must be two numbers (low, high), got {limits!r}."
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"contrast_limits must be finite with low < high, got {limits!r}.")
    return lo, hi


def _output_folder(output: PathLike) -> Path:
    out_dir = Path(output).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"The output {out_dir} is a file; give a folder for the results.")
    return out_dir
