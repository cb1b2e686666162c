"""Build modules without initialising weights that a checkpoint is about to replace.

Random initialisation of vit_h takes longer than loading its checkpoint (13 s on 2 cores).
Building on torch's meta device would avoid it, but sampling random numbers there imports
torch's compiler stack, whose bundled LLVM crashes next to the software OpenGL napari uses
on machines without a GPU. So layers are built on the CPU with their ``reset_parameters``
switched off: storage is allocated but never written, and ``load_state_dict(assign=True)``
swaps in the checkpoint's tensors.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.LayerNorm, nn.Embedding, nn.BatchNorm2d)
_lock = threading.Lock()


def _skip(self: nn.Module, *args, **kwargs) -> None:
    return None


@contextmanager
def skip_weight_init() -> Iterator[None]:
    """Within the block, the standard layers leave their parameters uninitialised."""
    with _lock:
        saved = {cls: cls.__dict__.get("reset_parameters") for cls in _LAYERS}
        try:
            for cls in _LAYERS:
                cls.reset_parameters = _skip
            yield
        finally:
            for cls, method in saved.items():
                if method is None:
                    del cls.reset_parameters
                else:
                    cls.reset_parameters = method
