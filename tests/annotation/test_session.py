"""The interactive session behind the widget: caching, precision in the key, GPU fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_segany import EmbeddingStore, Predictor
from napari_segany.annotation.session import InteractiveSession


@pytest.fixture
def session(tmp_path, tiny_checkpoint):
    s = InteractiveSession(store=EmbeddingStore(tmp_path / "store"))
    s.select(str(tiny_checkpoint), "cpu", "fp32")
    return s


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (80, 100), dtype=np.uint8)


def test_each_slice_is_encoded_once(session, monkeypatch):
    calls = []
    original = Predictor.set_image
    monkeypatch.setattr(
        Predictor, "set_image", lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    )
    key = session.key("layer", (0,), (0.0, 255.0))
    session.encode(key, _image(), (0.0, 255.0))
    session.encode(key, _image(), (0.0, 255.0))
    other = session.key("layer", (1,), (0.0, 255.0))
    session.encode(other, _image(1), (0.0, 255.0))
    session.predict(key, np.array([[10.0, 10.0]]), np.array([1]), None)  # back to slice 0
    assert len(calls) == 2 and len(session.cache) == 2


def test_precision_and_model_are_part_of_the_key(session, tiny_checkpoint):
    fp32 = session.key("layer", (), None)
    session.select(str(tiny_checkpoint), "cpu", "bf16")
    assert session.key("layer", (), None) != fp32
    assert session.predictor is None  # a new precision loads a new predictor


def test_single_click_gets_three_candidates_boxes_one_each(session):
    key = session.key("layer", (), None)
    session.encode(key, _image(), None)
    one = session.predict(key, np.array([[40.0, 50.0]]), np.array([1]), None)
    assert one.multimask and one.masks.shape == (1, 3, 80, 100)
    boxes = session.predict(key, None, None, np.array([[5, 5, 40, 40], [30, 30, 70, 90]]))
    assert not boxes.multimask and boxes.n_objects == 2 and boxes.masks.shape[1] == 1
    assert boxes.image_shape == (80, 100)
    r0, c0, r1, c1 = boxes.window  # the masks' window, not the whole image
    assert boxes.masks.shape[2:] == (r1 - r0, c1 - c0)


def test_gpu_out_of_memory_falls_back_to_the_cpu(session, monkeypatch):
    """A CUDA out-of-memory error moves the model to the CPU, tells the user, and retries."""
    predictor = session.ensure_model()
    on_gpu = {"yes": True}
    monkeypatch.setattr(
        Predictor,
        "device",
        property(lambda self: torch.device("cuda" if on_gpu["yes"] else "cpu")),
    )
    moved_to = []
    original_to = predictor.model.to

    def to(device, *args, **kwargs):
        moved_to.append(str(device))
        on_gpu["yes"] = False
        return original_to(device, *args, **kwargs)

    monkeypatch.setattr(predictor.model, "to", to)
    original_set_image = Predictor.set_image

    def set_image(self, image, contrast_limits=None, progress=None):
        if on_gpu["yes"]:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 4 GiB")
        return original_set_image(self, image, contrast_limits, progress)

    monkeypatch.setattr(Predictor, "set_image", set_image)
    notices: list[str] = []
    key = session.key("layer", (), None)
    moves: list[str] = []
    session.device_changed.connect(moves.append)
    session.encode(key, _image(), None, notify=notices.append)
    assert moved_to == ["cpu"] and session.device == "cpu" and moves == ["cpu"]
    assert notices and "continuing on the CPU" in notices[0]
    assert session.has_embedding(key)


def test_the_key_holds_the_precision_auto_resolves_to(session, tiny_checkpoint, monkeypatch):
    """``auto`` is bf16 on CPUs with AVX-512 BF16 and fp32 elsewhere; keys say which."""
    import napari_segany.precision as precision

    session.select(str(tiny_checkpoint), "cpu", "auto")
    for fast_bf16, name in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda v=fast_bf16: v)
        assert session.key("layer", (), None)[3] == name
