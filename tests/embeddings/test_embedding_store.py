"""The on-disk embedding store: safe files, keys that never serve a stale embedding, and
``embed`` filling it so that the widget finds what it would have computed itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from napari_segany import Predictor, import_checkpoint, load_model
from napari_segany.embeddings import (
    EmbeddingStore,
    ImageEmbedding,
    embedding_dir,
    embedding_key,
    model_fingerprint,
    plane_embedding_key,
)
from napari_segany.weights.download import sha256_of
from napari_segany.weights.registry import REGISTRY


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_SEGANY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NAPARI_SEGANY_EMBEDDING_DIR", raising=False)


@pytest.fixture(scope="module")
def other_checkpoint(tiny_checkpoint, tmp_path_factory):
    """Another model of the same shape: the tiny checkpoint with one weight changed."""
    state = torch.load(tiny_checkpoint, weights_only=True)
    name = next(k for k in state if k.startswith("image_encoder.") and state[k].is_floating_point())
    state[name] = state[name] + 0.5
    path = tmp_path_factory.mktemp("other") / "sam_tiny_other.pth"
    torch.save(state, path)
    return path


def _embedding(seed: int = 0) -> ImageEmbedding:
    features = np.random.default_rng(seed).standard_normal((1, 256, 64, 64)).astype(np.float32)
    return ImageEmbedding(features=features, original_size=(120, 160))


def _key(text: str = "x") -> str:
    return embedding_key(np.zeros((4, 4, 3), np.uint8), f"sha256:{text}", "fp32")


def test_store_saves_and_loads_exactly(tmp_path):
    store = EmbeddingStore(tmp_path / "store")
    key, embedding = _key(), _embedding()
    assert store.load(key) is None and key not in store
    path = store.save(key, embedding)
    assert path.parent == tmp_path / "store" and key in store and store.keys() == {key}
    loaded = store.load(key)
    np.testing.assert_array_equal(loaded.features, embedding.features)
    assert loaded.original_size == (120, 160)
    assert not list(path.parent.glob("*.part"))  # no temporary file left behind


def test_store_never_unpickles_and_treats_bad_files_as_misses(tmp_path):
    store = EmbeddingStore(tmp_path)
    key = _key()
    store.path_for(key).write_bytes(b"truncated")
    assert store.load(key) is None
    # An .npz holding a pickled object is refused rather than executed.
    np.savez(store.path_for(key), features=np.array([object()], dtype=object))
    assert store.load(key) is None
    # A file renamed to another key does not answer for that key.
    other = _key("y")
    store.save(other, _embedding())
    store.path_for(other).rename(store.path_for(key))
    assert store.load(key) is None


def test_keys_are_hex_digests_only(tmp_path):
    store = EmbeddingStore(tmp_path)
    for bad in ("../../etc/passwd", "abc", "A" * 64):
        with pytest.raises(ValueError, match="Not an embedding key"):
            store.path_for(bad)


def test_key_changes_with_pixels_model_and_precision():
    rgb = data.astronaut()[:64, :64]
    base = embedding_key(rgb, "sha256:a", "fp32")
    assert embedding_key(rgb.copy(), "sha256:a", torch.float32) == base
    changed = rgb.copy()
    changed[0, 0, 0] ^= 1
    assert embedding_key(changed, "sha256:a", "fp32") != base
    assert embedding_key(rgb, "sha256:b", "fp32") != base
    assert embedding_key(rgb, "sha256:a", "bf16") != base
    assert embedding_key(rgb[:32], "sha256:a", "fp32") != base
    with pytest.raises(ValueError, match="auto"):
        embedding_key(rgb, "sha256:a", "auto")
    with pytest.raises(ValueError, match="uint8"):
        embedding_key(rgb.astype(np.float32), "sha256:a", "fp32")


def test_plane_key_follows_contrast_limits(tiny_checkpoint):
    plane = (data.cell()[:80, :80].astype(np.uint16) * 50).astype(np.uint16)
    key = plane_embedding_key(plane, (0, 5000), tiny_checkpoint, "fp32")
    assert plane_embedding_key(plane, (0, 5000), tiny_checkpoint, "fp32") == key
    assert plane_embedding_key(plane, (0, 9000), tiny_checkpoint, "fp32") != key


def test_model_fingerprint_is_the_checkpoint_content(tiny_checkpoint, other_checkpoint):
    assert model_fingerprint("vit_b") == f"sha256:{REGISTRY['vit_b'].sha256}"
    by_path = model_fingerprint(tiny_checkpoint)
    assert by_path == f"sha256:{sha256_of(tiny_checkpoint)}"
    # The same weights imported under a name share their embeddings with the file.
    name = import_checkpoint(tiny_checkpoint)
    assert model_fingerprint(name) == by_path
    assert model_fingerprint(other_checkpoint) != by_path
    with pytest.raises(ValueError, match="Unknown model"):
        model_fingerprint("vit_zz")


def test_embedding_dir_comes_from_the_environment(tmp_path, monkeypatch):
    assert embedding_dir() == tmp_path / "cache" / "embeddings"
    monkeypatch.setenv("NAPARI_SEGANY_EMBEDDING_DIR", str(tmp_path / "mine"))
    assert embedding_dir() == tmp_path / "mine"
    assert EmbeddingStore().folder == tmp_path / "mine"


def test_embed_fills_the_store_the_widget_reads(tmp_path, tiny_checkpoint, other_checkpoint):
    from napari_segany.batch import embed_files

    image = data.coins()[:96, :128]
    uint16 = (data.cell()[:64, :96].astype(np.uint16) * 40 + 300).astype(np.uint16)
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(image).save(folder / "coins.png")
    import tifffile

    tifffile.imwrite(folder / "cells.tif", uint16)

    summary = embed_files(folder, tmp_path / "store", tiny_checkpoint, device="cpu")
    assert summary.ok and len(summary.done) == 2
    store = EmbeddingStore(tmp_path / "store")

    # What the widget does: key from the layer's plane, contrast limits (napari's defaults:
    # 0-255 for uint8, min-max otherwise), model and precision.
    predictor = Predictor(load_model(tiny_checkpoint, device="cpu"))
    limits = {"coins": (0.0, 255.0), "cells": (float(uint16.min()), float(uint16.max()))}
    for plane, name in ((image, "coins"), (uint16, "cells")):
        key = plane_embedding_key(plane, limits[name], tiny_checkpoint, predictor.dtype)
        stored = store.load(key)
        assert stored is not None, f"the widget would re-encode {name}"
        predictor.set_image(plane, limits[name])
        fresh = predictor.get_embedding_state()
        np.testing.assert_array_equal(stored.features, fresh.features)
        assert stored.original_size == fresh.original_size

    # Another model, another image or other contrast limits: a miss, never a stale hit.
    assert store.load(plane_embedding_key(image, (0, 255), other_checkpoint, "fp32")) is None
    assert store.load(plane_embedding_key(image[1:], (0, 255), tiny_checkpoint, "fp32")) is None
    assert store.load(plane_embedding_key(uint16, (0, 65535), tiny_checkpoint, "fp32")) is None

    # A second run finds everything in the store and encodes nothing.
    again = embed_files(folder, tmp_path / "store", tiny_checkpoint, device="cpu")
    assert [r.status for r in again.results] == ["skipped", "skipped"]
