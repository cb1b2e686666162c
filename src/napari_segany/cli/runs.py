"""What the batch commands share: the model fetched before the run, the run itself, its report."""

from __future__ import annotations

import argparse
from typing import Any

from .bars import ByteProgress, Progress
from .exits import EXIT_FAILED, EXIT_OK


def run_batch(args: argparse.Namespace, mode: str, settings: dict[str, Any]) -> int:
    """segment_files with ``mode`` (ais, apg or amg) and the command line's common options."""
    from ..batch import segment_files

    fetch_model_first(args)
    tiling = {k: getattr(args, k) for k in ("tile_shape", "halo") if hasattr(args, k)}
    with Progress(args.quiet, "segment") as progress:
        summary = segment_files(
            args.inputs, args.output, model=args.model, device=args.device,
            precision=args.precision, scheduler=args.scheduler, workers=args.workers,
            coco=getattr(args, "coco", False), overwrite=args.overwrite,
            contrast_limits=args.contrast_limits, progress=progress.update,
            on_result=progress.result, mode=mode, **tiling, **settings,
        )  # fmt: skip
    return finish(summary)


def finish(summary: Any) -> int:
    print(summary.report())
    return EXIT_OK if summary.ok else EXIT_FAILED


def fetch_model_first(args: argparse.Namespace) -> None:
    """Download a registered model here, with a progress bar, before the tasks want it.

    Only for local runs: a cluster's workers use their own cache.
    """
    from ..weights import checkpoint_for, default_model, is_registered

    name = args.model or default_model()
    if args.scheduler is None and is_registered(name):
        with ByteProgress(args.quiet, f"model {name}") as bar:
            checkpoint_for(name, progress=bar.update)
