"""The ``napari-segany`` console script: batch segment-everything, embeddings, models.

Examples::

    napari-segany segment-everything plate1/ "plate2/*.tif" --output results/ --coco \\
        --model vit_t --points-per-side 16
    napari-segany segment-everything stack.tif -o results/ --scheduler tcp://10.0.0.5:8786
    napari-segany embed plate1/              # into the store the widget reads
    napari-segany models list
    napari-segany models download vit_t
    napari-segany models import ~/Downloads/my_finetuned_sam.pth

Exit status: 0 when every input succeeded (or was skipped because its outputs exist), 1 when
any input failed or the run could not start, 2 for a bad command line, 130 when interrupted.
Heavy modules (torch, dask) load only once a command runs, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script with ``argv`` (default: the command line); returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or argparse's usage error
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("\nInterrupted; run the same command again to resume.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _expected_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _expected_errors() -> tuple[type[BaseException], ...]:
    # Errors whose message tells the user what to do; anything else keeps its traceback.
    from .errors import MissingExtraError, ModelLoadError

    return (ValueError, OSError, ModelLoadError, MissingExtraError)


# ---- parser ----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="napari-segany",
        description="Segment Anything for whole experiments: batch segmentation, embeddings "
        "for the napari widget, and the model registry.",
    )
    parser.add_argument("--version", action="version", version=f"napari-segany {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    segment = commands.add_parser(
        "segment-everything",
        help="segment every object in each image; label TIFFs (+ SA-1B JSON with --coco)",
        description="Segment everything in each input. Writes <name>_labels.tif (an integer "
        "label image of the input's size) and, with --coco, <name>_masks.json (SA-1B "
        "annotations, compressed COCO RLE). Stacks are segmented plane by plane.",
    )
    _add_inputs(segment)
    segment.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    segment.add_argument(
        "--coco", action="store_true", help="also write the masks as SA-1B/COCO-RLE JSON"
    )
    _add_common(segment)
    _add_params(segment)
    segment.set_defaults(run=_run_segment)

    embed = commands.add_parser(
        "embed",
        help="precompute image embeddings so the widget opens these images without encoding",
        description="Encode every plane of each input into an embedding store (.npz files "
        "keyed by image content, model and precision). The widget reads the store at "
        "$NAPARI_SEGANY_EMBEDDING_DIR, else at the default below the model cache.",
    )
    _add_inputs(embed)
    embed.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="store folder (default: $NAPARI_SEGANY_EMBEDDING_DIR or <model cache>/embeddings)",
    )
    _add_common(embed)
    embed.set_defaults(run=_run_embed)

    models = commands.add_parser("models", help="list, download and import models")
    actions = models.add_subparsers(title="actions", metavar="ACTION")
    listing = actions.add_parser("list", help="the models known by name, and which are cached")
    listing.set_defaults(run=_run_models_list)
    download = actions.add_parser("download", help="download registered models into the cache")
    download.add_argument("names", nargs="+", metavar="NAME", help="e.g. vit_t vit_b")
    download.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    download.set_defaults(run=_run_models_download)
    importing = actions.add_parser(
        "import", help="copy checkpoint files into the cache, to use them by name offline"
    )
    importing.add_argument("files", nargs="+", metavar="FILE", help=".pth/.pt checkpoint files")
    importing.set_defaults(run=_run_models_import)
    models.set_defaults(run=lambda args: _help(models))
    return parser


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="TIFF/PNG/JPEG files, folders of them, or glob patterns (quote them; ** recurses)",
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    from .precision import PRECISIONS

    parser.add_argument(
        "-m",
        "--model",
        metavar="NAME_OR_PATH",
        help="registered model (vit_t, vit_b, vit_l, vit_h, or an imported one) or checkpoint "
        "file (default: $NAPARI_SEGANY_MODEL, else vit_b with a CUDA GPU and vit_t without)",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps"
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto: bf16 where the hardware runs it fast, else fp32 (default %(default)s)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a running dask.distributed scheduler (tcp://host:port); inputs and a model given "
        "by path must be at the same paths on its workers (default: run here)",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="planes processed at once when running here (default 1: one plane already uses "
        "every core)",
    )
    parser.add_argument(
        "--contrast-limits",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="intensities shown as black and white to SAM",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="redo inputs whose outputs already exist"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _add_params(parser: argparse.ArgumentParser) -> None:
    from .automatic.params import PRESETS, SETTINGS, defaults

    group = parser.add_argument_group("segment-everything settings (SAM's defaults)")
    group.add_argument(
        "--preset",
        choices=list(PRESETS),
        metavar="NAME",
        help="start from a named set of settings: " + "; ".join(map(repr, PRESETS)),
    )
    for name, default in defaults().items():
        kind = int if isinstance(default, int) else float
        shown = f"{default:.4g}" if kind is float else default
        group.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=None,
            metavar="N" if kind is int else "X",
            help=f"{SETTINGS[name].help} (default {shown})",
        )


def _params(args: argparse.Namespace) -> dict[str, Any]:
    """The preset's settings (or SAM's defaults), with those given on the command line."""
    from .automatic.params import defaults, preset

    params = preset(args.preset) if args.preset else defaults()
    given = {name: getattr(args, name) for name in params if getattr(args, name) is not None}
    return {**params, **given}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# ---- segment-everything and embed ------------------------------------------------------------


def _run_segment(args: argparse.Namespace) -> int:
    from .batch import segment_files

    _fetch_model_first(args)
    params = _params(args)
    with _Progress(args.quiet, "segment") as progress:
        summary = segment_files(
            args.inputs,
            args.output,
            model=args.model,
            device=args.device,
            precision=args.precision,
            scheduler=args.scheduler,
            workers=args.workers,
            coco=args.coco,
            overwrite=args.overwrite,
            contrast_limits=args.contrast_limits,
            progress=progress.update,
            on_result=progress.result,
            **params,
        )
    return _finish(summary)


def _run_embed(args: argparse.Namespace) -> int:
    from .batch import embed_files

    _fetch_model_first(args)
    with _Progress(args.quiet, "embed") as progress:
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
        )
    return _finish(summary)


def _finish(summary: Any) -> int:
    print(summary.report())
    return EXIT_OK if summary.ok else EXIT_FAILED


def _fetch_model_first(args: argparse.Namespace) -> None:
    """Download a registered model here, with a progress bar, before the tasks want it.

    Only for local runs: a cluster's workers use their own cache.
    """
    from .weights import checkpoint_for, default_model, is_registered

    name = args.model or default_model()
    if args.scheduler is None and is_registered(name):
        with _ByteProgress(args.quiet, f"model {name}") as bar:
            checkpoint_for(name, progress=bar.update)


class _Bar:
    """A tqdm bar on stderr, created at the first update (so nothing shows for no work)."""

    def __init__(self, quiet: bool, what: str) -> None:
        self.quiet, self.what, self.bar = quiet, what, None

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def _options(self, total: int) -> dict[str, Any]:
        raise NotImplementedError

    def update(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(file=sys.stderr, **self._options(total))
        self.bar.n = done
        self.bar.refresh()


class _Progress(_Bar):
    """Bar over planes, with failures printed above it as they happen."""

    def _options(self, total: int) -> dict[str, Any]:
        return {"total": total, "unit": "plane", "desc": self.what}

    def result(self, result: Any) -> None:
        if result.status != "failed":
            return
        line = f"FAILED {result.input}: {result.message}"
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)


class _ByteProgress(_Bar):
    """Bar over downloaded bytes, shown only once a download really starts."""

    def _options(self, total: int) -> dict[str, Any]:
        return {
            "total": total or None,
            "unit": "B",
            "unit_scale": True,
            "unit_divisor": 1024,
            "desc": f"downloading {self.what}",
        }


# ---- models ----------------------------------------------------------------------------------


def _run_models_list(args: argparse.Namespace) -> int:
    from .weights import cache_dir, list_models

    models = list_models()
    width = max(len(m.name) for m in models)
    print(f"Models (cache: {cache_dir()}):")
    for m in models:
        size = f"{m.size / 1e6:,.0f} MB" if m.size else "?"
        state = "cached" if m.cached else "not cached"
        kind = " (imported)" if m.custom else ""
        print(f"  {m.name:<{width}}  {state:<10}  {size:>8}  {m.description}{kind}")
    return EXIT_OK


def _run_models_download(args: argparse.Namespace) -> int:
    from .weights import checkpoint_for, model_info

    for name in args.names:
        model_info(name)  # unknown names fail before any download starts
    failed = 0
    for name in args.names:
        try:
            with _ByteProgress(args.quiet, name) as bar:
                path = checkpoint_for(name, progress=bar.update)
        except (OSError, ValueError) as exc:
            print(f"FAILED {name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {path}")
    return EXIT_FAILED if failed else EXIT_OK


def _run_models_import(args: argparse.Namespace) -> int:
    from .weights import import_checkpoint

    failed = 0
    for file in args.files:
        try:
            name = import_checkpoint(file)
        except (OSError, ValueError) as exc:
            print(f"FAILED {file}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"Imported {file} as model {name!r}: use --model {name}")
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
