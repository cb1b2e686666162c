from __future__ import annotations

import pytest
from volume_data import blob_stack, encode_stack, object_checkpoint


@pytest.fixture(scope="session")
def object_model_path(tmp_path_factory):
    """Checkpoint of the compact-object SAM (see ``volume_data``)."""
    return object_checkpoint(tmp_path_factory.mktemp("volume-sam"))


@pytest.fixture(scope="session")
def object_model(object_model_path):
    from napari_segany import load_model

    return load_model(object_model_path, device="cpu")


@pytest.fixture(scope="session")
def stack_embeddings(object_model):
    """(stack, {plane: embedding}) for :func:`volume_data.blob_stack`, encoded once."""
    from napari_segany import Predictor

    stack = blob_stack()
    return stack, encode_stack(Predictor(object_model, precision="fp32"), stack)


@pytest.fixture
def predictor(object_model):
    from napari_segany import Predictor

    return Predictor(object_model, precision="fp32")
