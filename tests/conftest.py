from __future__ import annotations

import numpy as np
import pytest

from reference_models import TinySpec, build_reference_vit, save_checkpoint

TINY = TinySpec()


@pytest.fixture(scope="session")
def tiny_reference():
    """A tiny reference SAM (random weights) and the path of its checkpoint."""
    return _reference_with_checkpoint(TINY, seed=0)


_CACHE: dict = {}


def _reference_with_checkpoint(spec: TinySpec, seed: int):
    import tempfile
    from pathlib import Path

    key = (spec, seed)
    if key not in _CACHE:
        model = build_reference_vit(spec, seed)
        folder = Path(tempfile.mkdtemp(prefix="segany-ckpt-"))
        _CACHE[key] = (model, save_checkpoint(model, folder / f"sam_tiny_{seed}.pth"))
    return _CACHE[key]


@pytest.fixture(scope="session")
def small_checkpoint():
    """A tiny SAM with a 256-pixel input (16 x 16 embedding): decodes in a few milliseconds."""
    return _reference_with_checkpoint(TinySpec(img_size=256), seed=1)[1]


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_reference):
    return tiny_reference[1]


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint):
    from napari_segany import load_model

    return load_model(tiny_checkpoint, device="cpu")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
