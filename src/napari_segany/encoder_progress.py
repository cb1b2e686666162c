"""Progress of one encoder pass: a step after each of its blocks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .progress import ProgressCallback

if TYPE_CHECKING:
    import torch


@contextlib.contextmanager
def reporting_blocks(encoder: torch.nn.Module, progress: ProgressCallback | None) -> Iterator[None]:
    """Call ``progress(0, total)``, then ``progress(done, total)`` after each transformer or
    MBConv block of ``encoder``."""
    if progress is None:
        yield
        return
    from torch import nn

    blocks = [
        block
        for name, module in encoder.named_modules()
        if name.split(".")[-1] == "blocks" and isinstance(module, nn.ModuleList)
        for block in module
    ]
    done = iter(range(1, len(blocks) + 1))
    handles = [
        b.register_forward_hook(lambda *_: progress(next(done), len(blocks))) for b in blocks
    ]
    try:
        progress(0, len(blocks))
        yield
    finally:
        for handle in handles:
            handle.remove()
