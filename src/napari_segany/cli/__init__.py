"""The ``napari-segany`` console script: batch segment-everything, embeddings, models.

Examples::

    napari-segany segment-everything plate1/ "plate2/*.tif" --output results/ --coco \\
        --model vit_t --points-per-side 16
    napari-segany segment-everything stack.tif -o results/ --scheduler tcp://10.0.0.5:8786
    napari-segany embed plate1/              # into the store the widget reads
    napari-segany models list
    napari-segany models download vit_t
    napari-segany models import ~/Downloads/my_finetuned_sam.pth
    napari-segany propagate volume.tif --seeds seeds.tif -o labels.tif --model vit_b

Exit status: 0 when every input succeeded (or was skipped because its outputs exist), 1 when
any input failed or the run could not start, 2 for a bad command line, 130 when interrupted.
Heavy modules (torch, dask) load only once a command runs, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

from .exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE  # noqa: F401

# one module per command (or group of commands), each with register(subparsers)
COMMANDS = ("everything", "instances", "models", "propagate")


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
    from ..errors import MissingExtraError, ModelLoadError

    return (ValueError, OSError, ModelLoadError, MissingExtraError)


def _parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="napari-segany",
        description="Segment Anything for whole experiments: batch segmentation, embeddings "
        "for the napari widget, and the model registry.",
    )
    parser.add_argument("--version", action="version", version=f"napari-segany {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    for command in COMMANDS:
        import_module(f".{command}", __name__).register(commands)
    return parser
