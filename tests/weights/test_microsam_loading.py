"""load_model knows micro-sam's models by name (both files downloaded from a local server and
verified with xxh128) and reads both of micro-sam's file formats, decoder included."""

from __future__ import annotations

import http.server
import threading
from dataclasses import replace
from functools import partial

import pytest
import torch

from instance_checkpoints import (
    NARROW,
    decoder_state,
    write_training_checkpoint,
    write_with_decoder,
)
from napari_segany import list_models, load_model
from napari_segany.errors import CheckpointError, DownloadError
from napari_segany.instances import instance_decoder_of
from napari_segany.modeling.instance_decoder import InstanceDecoderConfig
from napari_segany.weights import registry


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(registry.CACHE_ENV, str(folder))
    return folder


@pytest.fixture
def served(tmp_path, small_checkpoint):
    """vit_b.pt and vit_b_decoder.pt on an HTTP server on 127.0.0.1, as on BioImage.IO."""
    import xxhash

    folder = write_with_decoder(tmp_path / "served", small_checkpoint, decoder_state())
    folder = folder.parent
    handler = partial(_Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    digests = {p.name: xxhash.xxh128(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    yield url, digests
    httpd.shutdown()
    httpd.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _point_at(monkeypatch, url: str, digests: dict, decoder_hash: str | None = None) -> None:
    entry = replace(
        registry.REGISTRY["vit_b_lm"],
        url=f"{url}/vit_b.pt", xxh128=digests["vit_b.pt"],
        decoder_url=f"{url}/vit_b_decoder.pt",
        decoder_xxh128=decoder_hash or digests["vit_b_decoder.pt"],
    )  # fmt: skip
    monkeypatch.setitem(registry.REGISTRY, "vit_b_lm", entry)


def test_a_microsam_model_loads_by_name_with_its_decoder(cache, served, monkeypatch):
    url, digests = served
    _point_at(monkeypatch, url, digests)
    assert not {m.name: m for m in list_models()}["vit_b_lm"].cached
    seen = []
    model = load_model("vit_b_lm", device="cpu", progress=lambda d, t: seen.append((d, t)))
    assert instance_decoder_of(model).config == NARROW
    assert (cache / "microsam" / "vit_b_lm.pt").is_file()
    assert (cache / "microsam" / "vit_b_lm_decoder.pt").is_file()
    assert seen and seen[-1][0] == seen[-1][1] > 0
    assert {m.name: m for m in list_models()}["vit_b_lm"].cached
    # Offline from now on: the server is not asked again.
    _point_at(monkeypatch, "http://127.0.0.1:9", digests)
    assert instance_decoder_of(load_model("vit_b_lm", device="cpu")) is not None


def test_a_decoder_with_the_wrong_hash_is_refused_and_not_kept(cache, served, monkeypatch):
    url, digests = served
    _point_at(monkeypatch, url, digests, decoder_hash="0" * 32)
    with pytest.raises(DownloadError, match="xxh128 does not match"):
        load_model("vit_b_lm", device="cpu")
    assert not (cache / "microsam" / "vit_b_lm_decoder.pt").exists()
    assert not {m.name: m for m in list_models()}["vit_b_lm"].cached


def test_a_checkpoint_file_with_its_decoder_beside_it_loads_both(tmp_path, small_checkpoint):
    path = write_with_decoder(tmp_path, small_checkpoint, decoder_state())
    assert instance_decoder_of(load_model(path, device="cpu")).config == NARROW
    assert instance_decoder_of(load_model(small_checkpoint, device="cpu")) is None


def test_a_training_checkpoint_loads_with_its_decoder_state(tmp_path, small_checkpoint):
    path = write_training_checkpoint(tmp_path / "best.pt", small_checkpoint, decoder_state())
    model = load_model(path, device="cpu")
    decoder = instance_decoder_of(model)
    expected = decoder_state()
    assert decoder.config == NARROW
    for key, tensor in decoder.state_dict().items():
        torch.testing.assert_close(tensor, expected[key])


def test_a_broken_or_foreign_decoder_is_a_clear_error(tmp_path, small_checkpoint):
    broken = decoder_state()
    del broken["out_conv.weight"]
    path = write_with_decoder(tmp_path / "a", small_checkpoint, broken)
    with pytest.raises(CheckpointError, match=r"vit_b_decoder\.pt.*out_conv\.weight"):
        load_model(path, device="cpu")
    other = decoder_state(InstanceDecoderConfig(embed_dim=64, features=(32, 16, 8, 4)))
    path = write_with_decoder(tmp_path / "b", small_checkpoint, other)
    with pytest.raises(CheckpointError, match="belongs to another model"):
        load_model(path, device="cpu")


def test_an_imported_checkpoint_keeps_its_decoder(cache, tmp_path, small_checkpoint):
    from napari_segany import import_checkpoint

    path = write_with_decoder(tmp_path / "mine", small_checkpoint, decoder_state(), "my_cells")
    assert import_checkpoint(path) == "my_cells"
    path.with_name("my_cells_decoder.pt").unlink()  # the cache keeps its own copies
    entry = {m.name: m for m in list_models()}["my_cells"]
    assert entry.custom and entry.has_decoder and entry.domain == registry.IMPORTED
    assert instance_decoder_of(load_model("my_cells", device="cpu")).config == NARROW


# ---- importing micro-sam's published files -------------------------------------------------


def _xxh128(path) -> str:
    import xxhash

    return xxhash.xxh128(path.read_bytes()).hexdigest()


def _publish(monkeypatch, checkpoint, url: str = "http://127.0.0.1:9") -> None:
    """Make the registry's vit_b_lm entry publish ``checkpoint`` and the decoder beside it
    (as our registry would for the real files), served at ``url``."""
    decoder = checkpoint.with_name(f"{checkpoint.stem}_decoder.pt")
    entry = replace(
        registry.REGISTRY["vit_b_lm"],
        url=f"{url}/vit_b.pt", xxh128=_xxh128(checkpoint),
        decoder_url=f"{url}/vit_b_decoder.pt", decoder_xxh128=_xxh128(decoder),
    )  # fmt: skip
    monkeypatch.setitem(registry.REGISTRY, "vit_b_lm", entry)


# micro-sam's own name for the files, and BioImage.IO's (vit_b.pt is also SAM's name: the
# contents decide which model a file is, not its name).
@pytest.mark.parametrize("stem", ["vit_b_lm", "vit_b"])
def test_importing_microsams_published_files_makes_the_model_load_offline(
    cache, tmp_path, small_checkpoint, monkeypatch, stem
):
    import json

    from napari_segany import import_checkpoint

    path = write_with_decoder(tmp_path / "downloads", small_checkpoint, decoder_state(), stem)
    _publish(monkeypatch, path)  # and offline: nothing listens on port 9
    assert import_checkpoint(path) == "vit_b_lm"
    path.unlink()
    path.with_name(f"{stem}_decoder.pt").unlink()  # the cache keeps its own copies
    assert {m.name: m for m in list_models()}["vit_b_lm"].cached
    assert instance_decoder_of(load_model("vit_b_lm", device="cpu")).config == NARROW
    assert "vit_b_lm" not in {m.name for m in list_models() if m.custom}
    records = json.loads((cache / registry.VERIFIED_JSON).read_text())
    for name in ("microsam/vit_b_lm.pt", "microsam/vit_b_lm_decoder.pt"):
        assert records[name]["xxh128"] == _xxh128(cache / name)
        assert len(records[name]["sha256"]) == 64


def test_a_file_named_like_a_microsam_model_with_other_contents_is_refused(
    cache, tmp_path, small_checkpoint
):
    from napari_segany import import_checkpoint

    path = write_with_decoder(tmp_path, small_checkpoint, decoder_state(), "vit_b_lm")
    with pytest.raises(ValueError, match=r"named like the official vit_b_lm model.*Rename"):
        import_checkpoint(path)
    assert not cache.exists() or not [p for p in cache.rglob("*") if p.is_file()]


def test_a_published_checkpoint_with_a_damaged_decoder_is_not_imported(
    cache, tmp_path, small_checkpoint, monkeypatch
):
    from napari_segany import import_checkpoint

    path = write_with_decoder(tmp_path, small_checkpoint, decoder_state(), "vit_b_lm")
    _publish(monkeypatch, path)
    decoder = path.with_name("vit_b_lm_decoder.pt")
    decoder.write_bytes(decoder.read_bytes()[:-10])
    with pytest.raises(ValueError, match="vit_b_lm_decoder.pt beside it is not its published"):
        import_checkpoint(path)
    assert not [p for p in cache.rglob("*") if p.suffix == ".pt" or p.suffix == ".part"]


def test_a_published_checkpoint_alone_is_imported_and_its_decoder_downloaded_later(
    cache, served, tmp_path, small_checkpoint, monkeypatch
):
    from napari_segany import import_checkpoint

    url, digests = served
    _point_at(monkeypatch, url, digests)
    alone = tmp_path / "alone" / "vit_b.pt"
    alone.parent.mkdir()
    alone.write_bytes(small_checkpoint.read_bytes())
    assert import_checkpoint(alone) == "vit_b_lm"
    checkpoint = cache / "microsam" / "vit_b_lm.pt"
    before = checkpoint.stat().st_mtime_ns
    assert instance_decoder_of(load_model("vit_b_lm", device="cpu")).config == NARROW
    assert checkpoint.stat().st_mtime_ns == before  # only the decoder was downloaded
