"""``propagate``: carry the objects of a seeds labels image through a volume or a time-lapse.

Seeds are what a user labelled on some slices (in napari, or another tool); the output is the
whole volume's labels, each object under its seed's id. Re-running an experiment's seeds with
another model or other settings is one command per volume.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from .bars import ByteProgress, Progress
from .exits import EXIT_OK
from .options import add_model
from .tiling_options import add_tiling


def register(commands: Any) -> None:
    """Add ``propagate`` to the console script's subparsers."""
    from ..volumes import PROJECTIONS
    from ..volumes.settings import ANNOTATOR_DEFAULTS as DEFAULTS  # as the widget's

    parser = commands.add_parser(
        "propagate",
        help="carry objects seeded on some slices through a volume or time-lapse",
        description="Segment each object of SEEDS (a labels image of the volume's shape with "
        "objects on some slices) through VOLUME with SAM, as micro-sam's segment_mask_in_volume "
        "does (or, with --time, forward through frames as its tracking does), all objects at "
        "once. Writes one labels volume, each object under its seed's id.",
    )
    parser.add_argument("volume", metavar="VOLUME", help="3-D TIFF (Z, Y, X), or with RGB last")
    parser.add_argument(
        "--seeds", required=True, metavar="SEEDS", help="labels TIFF of the volume's shape"
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="labels TIFF")
    add_model(
        parser,
        contrast_help="intensities shown as black and white to SAM (default: the 1st and 99th "
        "percentiles of the volume; 8-bit volumes are used as they are)",
    )
    group = parser.add_argument_group("propagation settings (micro-sam's annotator defaults)")
    group.add_argument(
        "--projection",
        default=DEFAULTS["projection"],
        choices=PROJECTIONS,
        help="prompts each slice takes from the previous mask (default %(default)s)",
    )
    group.add_argument(
        "--iou-threshold",
        type=float,
        default=DEFAULTS["iou_threshold"],
        metavar="X",
        help="stop where a mask overlaps the previous one by less than this, 0 never "
        "(default %(default)s)",
    )
    group.add_argument(
        "--box-extension",
        type=float,
        default=DEFAULTS["box_extension"],
        metavar="X",
        help="grow the previous mask's box by this fraction (below 1) or pixels (from 1 on) "
        "(default %(default)s)",
    )
    group.add_argument(
        "--axis",
        type=int,
        default=0,
        metavar="N",
        help="the volume's axis that is z (or t), 0, 1 or 2 (default %(default)s)",
    )
    group.add_argument(
        "--time",
        action="store_true",
        help="a time-lapse: go forward from each object's first seeded frame, following its motion",
    )
    group.add_argument(
        "--motion-smoothing",
        type=float,
        default=DEFAULTS["motion_smoothing"],
        metavar="X",
        help="with --time: share of the earlier motion kept, 0 to 1 (default %(default)s)",
    )
    add_tiling(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists already")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_propagate)


def run_propagate(args: argparse.Namespace) -> int:
    volume_path, seeds_path, out = Path(args.volume), Path(args.seeds), Path(args.output)
    _check_paths(volume_path, seeds_path, out, args.overwrite)
    volume = _read(volume_path, "volume")
    seeds = _read(seeds_path, "seeds")
    seeds = _checked_seeds(seeds, volume, seeds_path, volume_path)
    _check_settings(args, volume)  # before the model loads, which may take a minute
    predictor = _predictor(args)
    from ..volumes import segment_volume, track

    common: dict[str, Any] = {
        "projection": args.projection, "iou_threshold": args.iou_threshold,
        "box_extension": args.box_extension, "axis": args.axis,
        "contrast_limits": tuple(args.contrast_limits) if args.contrast_limits else None,
        "tile_shape": args.tile_shape, "halo": args.halo,
    }  # fmt: skip
    with _PlaneProgress(args.quiet, "propagate") as progress:
        if args.time:
            labels, ranges = track(
                predictor, volume, seeds, motion_smoothing=args.motion_smoothing,
                progress=progress.update, **common,
            )  # fmt: skip
        else:
            labels, ranges = segment_volume(
                predictor, volume, seeds, progress=progress.update, **common
            )
    _write(out, labels)
    print(_report(ranges, out, args.axis))
    return EXIT_OK


def _check_paths(volume: Path, seeds: Path, out: Path, overwrite: bool) -> None:
    for path, what in ((volume, "volume"), (seeds, "seeds")):
        if not path.is_file():
            raise ValueError(f"The {what} file {path} does not exist.")
    if out.resolve() in (volume.resolve(), seeds.resolve()):
        raise ValueError(
            f"-o {out} is one of the inputs: write the result to another file, so the inputs "
            "stay as they are."
        )
    if out.exists() and not overwrite:
        raise ValueError(f"{out} exists already: pass --overwrite to replace it.")


def _read(path: Path, what: str) -> np.ndarray:
    import tifffile

    try:
        return tifffile.imread(path)
    except Exception as exc:
        raise ValueError(
            f"Cannot read the {what} {path.name} as a TIFF ({type(exc).__name__}: {exc}). "
            "Give a TIFF file (.tif, .tiff)."
        ) from None


def _checked_seeds(seeds: np.ndarray, volume: np.ndarray, seeds_path: Path, volume_path: Path):
    colour = volume.ndim == 4 and volume.shape[-1] in (3, 4)
    shape = volume.shape[:-1] if colour else volume.shape
    if seeds.shape != shape:
        raise ValueError(
            f"The seeds {seeds_path.name} have shape {seeds.shape}, but the volume "
            f"{volume_path.name} has {shape}{' (without its colour axis)' if colour else ''}: "
            "give a labels image of the volume's shape."
        )
    if seeds.dtype.kind not in "biu":
        raise ValueError(
            f"The seeds {seeds_path.name} hold {seeds.dtype} values: give an integer labels "
            "image (0 background, each object its own id)."
        )
    if not seeds.any():
        raise ValueError(
            f"The seeds {seeds_path.name} are empty: label each object on at least one slice."
        )
    if seeds.dtype == np.bool_:
        seeds = seeds.astype(np.uint8)  # one object, id 1, written as labels
    return seeds


def _check_settings(args: argparse.Namespace, volume: np.ndarray) -> None:
    from ..volumes.settings import PropagationSettings, check_motion_smoothing
    from ..volumes.slices import stack_axis

    PropagationSettings.checked(args.projection, args.iou_threshold, args.box_extension)
    check_motion_smoothing(args.motion_smoothing)
    axis, _ = stack_axis(volume, args.axis)
    if args.tile_shape not in (None, "auto"):
        from ..tiling import TileGrid

        spatial = [n for i, n in enumerate(volume.shape[:3]) if i != axis]
        # Every registered model takes 1024-pixel input; a wrong tiling is reported now rather
        # than after the model has loaded.
        TileGrid.for_image((spatial[0], spatial[1]), args.tile_shape, args.halo, 1024)


def _predictor(args: argparse.Namespace):
    from ..predictor import Predictor
    from ..weights import default_model
    from ..weights.loading import load_model

    name = args.model or default_model()
    with ByteProgress(args.quiet, f"model {name}") as bar:
        model = load_model(name, args.device, progress=bar.update)
    return Predictor(model, precision=args.precision)


def _write(path: Path, labels: np.ndarray) -> None:
    from ..atomic import write_atomic
    from ..batch.output import write_tiff

    write_atomic(path, lambda handle: write_tiff(handle, labels))


def _report(ranges: dict[int, tuple[int, int]], out: Path, axis: int) -> str:
    lines = [f"{len(ranges)} object(s) written to {out}; planes along axis {axis}:"]
    lines += [f"  id {k}: {first}-{last}" for k, (first, last) in sorted(ranges.items())]
    return "\n".join(lines)


class _PlaneProgress(Progress):
    """Planes done of those planned; the plan shrinks as objects stop early."""

    def update(self, done: int, total: int) -> None:
        super().update(done, total)
        if self.bar is not None and self.bar.total != total:
            self.bar.total = total
            self.bar.refresh()
