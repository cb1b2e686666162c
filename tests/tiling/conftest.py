from __future__ import annotations

import pytest
from tiling_models import bright_region_checkpoint, structured_sam

from reference_models import TinySpec, save_checkpoint

# Models with a 256-pixel input keep tiled tests fast: tiles of a few hundred pixels are
# "large" images for them, with SAM's geometry otherwise.
SMALL = TinySpec(img_size=256)


@pytest.fixture(scope="session")
def bright_model(tmp_path_factory):
    """Our Sam (256-pixel input) that segments bright regions, whatever the prompt."""
    from napari_segany import load_model

    folder = tmp_path_factory.mktemp("bright")
    return load_model(bright_region_checkpoint(folder, SMALL), device="cpu")


@pytest.fixture(scope="session")
def structured_pair(tmp_path_factory):
    """(reference Sam, our Sam) with the structured random weights, 256-pixel input."""
    from napari_segany import load_model

    reference = structured_sam(SMALL)
    path = save_checkpoint(reference, tmp_path_factory.mktemp("structured") / "sam.pth")
    return reference, load_model(path, device="cpu")
