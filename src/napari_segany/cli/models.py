"""``models``: list, download and import checkpoints."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .bars import ByteProgress
from .exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def register(commands: Any) -> None:
    """Add ``models`` and its actions to the console script's subparsers."""
    models = commands.add_parser("models", help="list, download and import models")
    actions = models.add_subparsers(title="actions", metavar="ACTION")
    listing = actions.add_parser("list", help="the models known by name, and which are cached")
    listing.set_defaults(run=run_models_list)
    download = actions.add_parser("download", help="download registered models into the cache")
    download.add_argument("names", nargs="+", metavar="NAME", help="e.g. vit_t vit_b")
    download.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    download.set_defaults(run=run_models_download)
    importing = actions.add_parser(
        "import", help="copy checkpoint files into the cache, to use them by name offline"
    )
    importing.add_argument("files", nargs="+", metavar="FILE", help=".pth/.pt checkpoint files")
    importing.set_defaults(run=run_models_import)
    models.set_defaults(run=lambda args: help_of(models))


def help_of(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def run_models_list(args: argparse.Namespace) -> int:
    from ..weights import cache_dir, list_models

    models = list_models()
    width = max(len(m.name) for m in models)
    print(f"Models (cache: {cache_dir()}):")
    domain = None
    for m in models:
        if m.domain != domain:
            domain = m.domain
            print(f" {domain}:")
        size = f"{m.size / 1e6:,.0f} MB" if m.size else "?"
        state = "cached" if m.cached else "not cached"
        kind = " (imported)" if m.custom else ""
        kind += " [instance decoder: segment-instances]" if m.has_decoder else ""
        print(f"  {m.name:<{width}}  {state:<10}  {size:>8}  {m.description}{kind}")
    return EXIT_OK


def run_models_download(args: argparse.Namespace) -> int:
    from ..weights import checkpoint_for, model_info

    for name in args.names:
        model_info(name)  # unknown names fail before any download starts
    failed = 0
    for name in args.names:
        try:
            with ByteProgress(args.quiet, name) as bar:
                path = checkpoint_for(name, progress=bar.update)
        except (OSError, ValueError) as exc:
            print(f"FAILED {name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {path}")
    return EXIT_FAILED if failed else EXIT_OK


def run_models_import(args: argparse.Namespace) -> int:
    from ..weights import import_checkpoint

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
