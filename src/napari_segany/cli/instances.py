"""``segment-instances``: micro-sam's automatic instance segmentation (AIS, APG) over files,
folders and stacks, with the model's instance decoder; and the ``--mode`` that
``segment-everything`` shares with it."""

from __future__ import annotations

import argparse
from typing import Any

from .exits import EXIT_USAGE
from .options import add_common, add_inputs
from .runs import run_batch
from .tiling_options import add_tiling

MODES = ("ais", "apg", "amg")


def register(commands: Any) -> None:
    """Add ``segment-instances`` to the console script's subparsers."""
    segment = commands.add_parser(
        "segment-instances",
        help="segment every object with the model's instance decoder (micro-sam's AIS/APG)",
        description="Segment the instances (cells, nuclei, organelles) in each input with the "
        "instance decoder of one of micro-sam's models (default vit_b_lm with a CUDA GPU, "
        "vit_t_lm without): AIS, a watershed of the decoder's maps, or APG, SAM prompted at "
        "the maps' seeds. Writes <name>_labels.tif (an integer label image of the input's "
        "size); stacks are segmented plane by plane. Outputs are written whole or not at all, "
        "and a second run skips inputs whose outputs exist.",
    )
    add_inputs(segment)
    segment.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    segment.add_argument(
        "--mode", choices=MODES[:2], default="ais",
        help="ais: watershed of the decoder's maps (fastest, the default); apg: SAM decodes a "
        "point prompt at each seed of the maps",
    )  # fmt: skip
    add_common(segment)
    add_tiling(segment)
    add_instance_params(segment)
    segment.set_defaults(run=run_instances)


def add_instance_params(parser: argparse.ArgumentParser) -> None:
    """micro-sam's AIS and APG settings, by micro-sam's names (``--center-distance-threshold``)."""
    from ..instances.params import defaults, settings

    group = parser.add_argument_group(
        "instance segmentation settings (micro-sam's names and defaults; ais and apg share "
        "the thresholds)"
    )
    seen: set[str] = set()
    for mode in ("ais", "apg"):
        given = defaults(mode)
        for name, spec in settings(mode).items():
            if name in seen:
                continue
            seen.add(name)
            default = given[name]
            flag = "--" + name.replace("_", "-")
            only = "" if _shared(name) else f" [{mode} only]"
            text = spec.help.replace("%", "%%")  # argparse formats help with %
            if isinstance(default, bool):
                group.add_argument(flag, action="store_true", default=None, help=text + only)
                continue
            if "default" not in text:
                text += f" (default {_default_text(name)})"
            kind = int if isinstance(default, int) else float
            group.add_argument(
                flag, type=kind, default=None, metavar="N" if kind is int else "X",
                help=text + only,
            )  # fmt: skip


def instance_params(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    """The settings given on the command line for ``mode``; ValueError for a bad value."""
    from ..instances.params import defaults, params_from

    names = set(defaults("ais")) | set(defaults("apg"))
    given = {n: getattr(args, n) for n in sorted(names) if getattr(args, n, None) is not None}
    params_from(mode, given)
    return given


def run_instances(args: argparse.Namespace) -> int:
    from ..instances.params import defaults

    other = [n for n in _given(args, "ais", "apg") if n not in defaults(args.mode)]
    if other:
        flags = ", ".join("--" + n.replace("_", "-") for n in other)
        theirs = "apg" if args.mode == "ais" else "ais"
        return usage_error(f"{flags}: setting(s) of --mode {theirs}, not {args.mode}.")
    return run_batch(args, args.mode, instance_params(args, args.mode))


def run_everything_as_instances(args: argparse.Namespace, mode: str) -> int:
    """``segment-everything --mode ais|apg`` (the default for a model with a decoder):
    instances with micro-sam's default settings."""
    from ..automatic.params import defaults

    given = [n for n in defaults() if getattr(args, n, None) is not None]
    given = ["--" + n.replace("_", "-") for n in given]
    given += ["--preset"] * bool(args.preset) + ["--coco"] * bool(args.coco)
    if given:
        why = "" if args.mode else " (the default: the model has an instance decoder)"
        return usage_error(
            f"{', '.join(given)} belong(s) to segment everything, but the mode is {mode}{why}. "
            "Add --mode amg to segment everything, or use segment-instances for the settings "
            "of ais and apg."
        )
    return run_batch(args, mode, {})


def _given(args: argparse.Namespace, *modes: str) -> list[str]:
    from ..instances.params import defaults

    names = sorted({n for m in modes for n in defaults(m)})
    return [n for n in names if getattr(args, n, None) is not None]


def add_mode(parser: argparse.ArgumentParser) -> None:
    """segment-everything's ``--mode``."""
    parser.add_argument(
        "--mode", choices=MODES, default=None,
        help="amg: SAM's segment everything; ais, apg: instances with the model's decoder "
        "(micro-sam's models; see segment-instances). Default: ais when the model has an "
        "instance decoder, else amg",
    )  # fmt: skip


def default_mode(model: str | None) -> str:
    """``ais`` when the model (default: the default model) has an instance decoder, else
    ``amg``: segment-everything's default."""
    from ..weights import default_model, model_has_decoder

    # A registered name is answered from the registry, so no file is fetched or read here.
    return "ais" if model_has_decoder(model or default_model()) else "amg"


def usage_error(message: str) -> int:
    import sys

    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _shared(name: str) -> bool:
    from ..instances.params import defaults

    return name in defaults("ais") and name in defaults("apg")


def _default_text(name: str) -> str:
    from ..instances.params import defaults

    ais, apg = defaults("ais").get(name), defaults("apg").get(name)
    if name in defaults("ais") and name in defaults("apg") and ais != apg:
        return f"{ais:g} with ais, {apg:g} with apg"
    value = ais if name in defaults("ais") else apg
    return f"{value:g}" if isinstance(value, float) else str(value)
