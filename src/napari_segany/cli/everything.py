"""``segment-everything`` and ``embed``: the batch runs over files, folders and stacks."""

from __future__ import annotations

import argparse
from typing import Any

from .bars import Progress
from .instances import add_mode, default_mode, run_everything_as_instances
from .options import add_common, add_inputs, add_params, params
from .runs import fetch_model_first, finish, run_batch
from .tiling_options import add_tiling


def register(commands: Any) -> None:
    """Add both commands to the console script's subparsers."""
    segment = commands.add_parser(
        "segment-everything",
        help="segment every object in each image; label TIFFs (+ SA-1B JSON with --coco)",
        description="Segment everything in each input. Writes <name>_labels.tif (an integer "
        "label image of the input's size) and, with --coco, <name>_masks.json (SA-1B "
        "annotations, compressed COCO RLE). Stacks are segmented plane by plane.",
    )
    add_inputs(segment)
    segment.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    segment.add_argument(
        "--coco", action="store_true", help="also write the masks as SA-1B/COCO-RLE JSON"
    )
    add_mode(segment)
    add_common(segment)
    add_tiling(segment)
    add_params(segment)
    segment.set_defaults(run=run_segment)

    embed = commands.add_parser(
        "embed",
        help="precompute image embeddings so the widget opens these images without encoding",
        description="Encode every plane of each input into an embedding store (.npz files "
        "keyed by image content, model and precision). The widget reads the store at "
        "$NAPARI_SEGANY_EMBEDDING_DIR, else at the default below the model cache.",
    )
    add_inputs(embed)
    embed.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="store folder (default: $NAPARI_SEGANY_EMBEDDING_DIR or <model cache>/embeddings)",
    )
    add_common(embed)
    add_tiling(embed)
    embed.set_defaults(run=run_embed)


def run_segment(args: argparse.Namespace) -> int:
    mode = args.mode or default_mode(args.model)
    if mode != "amg":
        return run_everything_as_instances(args, mode)
    return run_batch(args, "amg", params(args))


def run_embed(args: argparse.Namespace) -> int:
    from ..batch import embed_files

    fetch_model_first(args)
    with Progress(args.quiet, "embed") as progress:
        summary = embed_files(
            args.inputs,
            args.output,
            model=args.model,
            device=args.device,
            precision=args.precision,
            scheduler=args.scheduler,
            workers=args.workers,
            overwrite=args.overwrite,
            contrast_limits=args.contrast_limits,
            progress=progress.update,
            on_result=progress.result,
            tile_shape=args.tile_shape,
            halo=args.halo,
        )
    return finish(summary)
