"""``--tile-shape`` and ``--halo``: micro-sam's tiling of large images, in image pixels."""

from __future__ import annotations

import argparse


def add_tiling(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tiling of large images (micro-sam's tile_shape and halo)")
    group.add_argument(
        "--tile-shape",
        type=tile_shape,
        default="auto",
        metavar="N|ROWS,COLS|auto|none",
        help="tiles of N x N or ROWS x COLS pixels; auto (the default, as the widget) tiles "
        "planes longer than 1.5x the model's input with tiles SAM sees unshrunk; none resizes "
        "each plane whole to the model's input",
    )
    group.add_argument(
        "--halo",
        type=halo,
        default=None,
        metavar="N|ROWS,COLS",
        help="pixels of context encoded on every side of a tile; needed with a --tile-shape "
        "size (e.g. --tile-shape 1024 --halo 256), chosen by auto",
    )


def tile_shape(text: str) -> int | tuple[int, int] | str | None:
    word = text.strip().lower()
    if word in ("auto", "none"):
        return None if word == "none" else "auto"
    return _pixels(text, "--tile-shape", minimum=1)


def halo(text: str) -> int | tuple[int, int]:
    return _pixels(text, "--halo", minimum=0)


def _pixels(text: str, option: str, minimum: int) -> int | tuple[int, int]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) < minimum:
        raise argparse.ArgumentTypeError(
            f"{option} takes N or ROWS,COLS in pixels (integers >= {minimum}), got {text!r}"
        )
    return values[0] if len(values) == 1 else (values[0], values[1])
