"""Command-line options shared by the commands: inputs, model and device, run settings."""

from __future__ import annotations

import argparse
from typing import Any


def add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="TIFF/PNG/JPEG files, folders of them, or glob patterns (quote them; ** recurses)",
    )


def add_model(
    parser: argparse.ArgumentParser,
    contrast_help: str = "intensities shown as black and white to SAM",
) -> None:
    """The model, where it runs and how the image reaches it: every command that runs SAM."""
    from ..precision import PRECISIONS

    parser.add_argument(
        "-m",
        "--model",
        metavar="NAME_OR_PATH",
        help="registered model (vit_t, vit_b, vit_l, vit_h, micro-sam's vit_b_lm, vit_t_lm, ..., "
        "or an imported one; see 'models list') or checkpoint file (default: "
        "$NAPARI_SEGANY_MODEL, else vit_b_lm with a CUDA GPU and vit_t_lm without)",
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
        "--contrast-limits", type=float, nargs=2, metavar=("LOW", "HIGH"), help=contrast_help
    )


def add_common(parser: argparse.ArgumentParser) -> None:
    """:func:`add_model`'s options and those of a batch run over many inputs."""
    add_model(parser)
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a running dask.distributed scheduler (tcp://host:port); inputs and a model given "
        "by path must be at the same paths on its workers (default: run here)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="planes processed at once when running here (default 1: one plane already uses "
        "every core)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="redo inputs whose outputs already exist"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def add_params(parser: argparse.ArgumentParser) -> None:
    from ..automatic.params import PRESETS, SETTINGS, defaults

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


def params(args: argparse.Namespace) -> dict[str, Any]:
    """The preset's settings (or SAM's defaults), with those given on the command line."""
    from ..automatic.params import defaults, preset

    params = preset(args.preset) if args.preset else defaults()
    given = {name: getattr(args, name) for name in params if getattr(args, name) is not None}
    return {**params, **given}


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
