"""What micro-sam task scripts share: reading their inputs and building the reference model.

Runs inside micro-sam's environment (see ``tests/microsam_bridge.py``), where
``segment_anything`` is micro-sam's copy of Meta's package.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def read_inputs() -> tuple[dict[str, np.ndarray], dict[str, Any], Path]:
    """The task's arrays, parameters and where its answer goes (from the command line)."""
    in_path, params_path, out_path = (Path(p) for p in sys.argv[1:4])
    with np.load(in_path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    return arrays, json.loads(params_path.read_text()), out_path


def write_outputs(out_path: Path, **arrays: np.ndarray) -> None:
    np.savez(out_path, **arrays)


def sam_from_checkpoint(checkpoint: str, spec: dict[str, Any]):
    """A segment_anything ``Sam`` with ``spec``'s shapes (the fields of tests'
    ``reference_models.TinySpec``) and the checkpoint's weights, in eval mode on the CPU."""
    import torch

    from reference_models import TinySpec, build_reference_vit

    spec = dict(spec)
    spec["global_attn_indexes"] = tuple(spec.get("global_attn_indexes", ()))
    model = build_reference_vit(TinySpec(**spec), seed=0)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()
