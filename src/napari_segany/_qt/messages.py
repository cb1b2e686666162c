"""What the widget tells the user when a layer or the model work cannot go on.

Notifications show one short paragraph: what failed and what to do in the widget. The full
detail goes to the status line, which wraps.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Image


def unsupported_reason(layer: Image) -> str | None:
    """Why SAM cannot work on this layer, or None."""
    data = layer.data[0] if layer.multiscale else layer.data
    if layer.ndim < 2:
        return f"Layer '{layer.name}' is not a 2-D image."
    if layer.rgb and data.shape[-1] not in (3, 4):
        return f"Layer '{layer.name}' has {data.shape[-1]} colour channels; SAM takes RGB(A)."
    if np.dtype(data.dtype).kind not in "biuf":
        return f"Layer '{layer.name}' has {data.dtype} pixels; SAM takes integer or float images."
    return None


def explain_error(exc: Exception, model: str | None) -> str:
    """A short message for the user: what failed and what to do."""
    from ..errors import CheckpointError, DownloadError, LabelIdsExhausted

    text = str(exc) or type(exc).__name__
    if isinstance(exc, DownloadError):
        return (
            f"Model {model!r} is not on this computer and could not be downloaded (offline?). "
            "Choose 'Import checkpoint…' in the model list to use a file you have, or pick a "
            "model that is already downloaded."
        )
    if isinstance(exc, (CheckpointError, FileNotFoundError)):
        return f"Model {model!r} could not be loaded: {text} Pick another model or import one."
    if isinstance(exc, LabelIdsExhausted):
        return text
    if isinstance(exc, OSError):
        return f"Model {model!r} is not available: {text}"
    if isinstance(exc, MemoryError):
        return "Out of memory while running SAM: pick a smaller model (vit_t) or a smaller image."
    return f"Segment Anything failed: {type(exc).__name__}: {text}"
