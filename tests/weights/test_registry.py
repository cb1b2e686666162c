"""Model registry, cache, downloads and offline import, against an HTTP server on 127.0.0.1.

No test touches the internet: registry entries are pointed at a local server serving a tiny
random SAM checkpoint, and the cache lives in a temporary folder through the environment.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
import xxhash

from napari_segany import (
    CheckpointError,
    DownloadError,
    cache_dir,
    checkpoint_for,
    default_model,
    import_checkpoint,
    list_models,
    load_model,
)
from napari_segany.weights import download, registry

VIT_B_FILE = "sam_vit_b_01ec64.pth"


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.routes``: path -> (behaviour, body); anything else is a 404."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.hits.append(self.path)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        behaviour, body = route
        try:
            if behaviour == "stall":
                self.server.release.wait(10)
            self.send_response(200)
            # "truncate" announces more than it sends, then hangs up.
            extra = 4096 if behaviour == "truncate" else 0
            self.send_header("Content-Length", str(len(body) + extra))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if behaviour == "truncate" else body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (timeout tests)
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.routes, httpd.hits, httpd.release = {}, [], threading.Event()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(registry.CACHE_ENV, str(folder))
    monkeypatch.delenv(registry.MODEL_ENV, raising=False)
    return folder


@pytest.fixture(scope="session")
def checkpoint_bytes(tiny_checkpoint) -> bytes:
    return tiny_checkpoint.read_bytes()


def _closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{VIT_B_FILE}"


def _point_vit_b(monkeypatch, url: str, body: bytes) -> registry.ModelInfo:
    """Make the registry's vit_b entry describe ``body`` served at ``url``."""
    info = replace(
        registry.REGISTRY["vit_b"], url=url, size=len(body), sha256=hashlib.sha256(body).hexdigest()
    )
    monkeypatch.setitem(registry.REGISTRY, "vit_b", info)
    return info


@pytest.fixture
def served_vit_b(server, cache, checkpoint_bytes, monkeypatch):
    """vit_b served correctly by the local server: (server, registry entry)."""
    server.routes[f"/{VIT_B_FILE}"] = ("ok", checkpoint_bytes)
    return server, _point_vit_b(monkeypatch, f"{server.url}/{VIT_B_FILE}", checkpoint_bytes)


def _stray_files(folder: Path) -> list[str]:
    """Everything in the cache except its JSON bookkeeping: partial or rejected downloads."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix != ".json")


# ---- registry ------------------------------------------------------------------------------


SAM_MODELS = ["vit_t", "vit_b", "vit_l", "vit_h"]
MICROSAM = [
    "vit_b_lm", "vit_l_lm", "vit_t_lm", "vit_b_em_organelles", "vit_l_em_organelles",
    "vit_t_em_organelles", "vit_b_histopathology", "vit_l_histopathology",
    "vit_h_histopathology", "vit_b_medical_imaging",
]  # fmt: skip


def test_registry_lists_the_official_checkpoints(cache):
    models = {m.name: m for m in list_models()}
    assert list(models) == SAM_MODELS + MICROSAM  # grouped by domain, general first
    assert models["vit_b"].filename == "sam_vit_b_01ec64.pth"
    assert models["vit_b"].size == 375042383
    assert models["vit_h"].sha256 == (
        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e"
    )
    assert models["vit_t"].url.endswith("/mobile_sam.pt")
    for name in SAM_MODELS:
        m = models[name]
        assert m.url.startswith("https://") and m.url.endswith("/" + m.filename)
        assert len(m.sha256) == 64 and int(m.sha256, 16) >= 0
        assert not m.has_decoder and m.domain == registry.GENERAL
    for m in models.values():
        assert m.description and "\n" not in m.description
        assert not m.custom and not m.cached  # nothing downloaded into a fresh cache
    # The SAM file names carry the start of their MD5, so no two entries share a file.
    assert len({m.filename for m in models.values()}) == len(models)


def test_microsam_models_are_registered_with_their_decoders_and_domains(cache):
    models = {m.name: m for m in list_models()}
    lm = models["vit_b_lm"]
    assert lm.has_decoder and lm.domain == "Light microscopy"
    assert (lm.xxh128, lm.decoder_xxh128) == (
        "fe9252a29f3f4ea53c15a06de471e186", "708b15ac620e235f90bb38612c4929ba",
    )  # fmt: skip
    assert lm.decoder_url.endswith("diplomatic-bug/1.2/files/vit_b_decoder.pt")
    assert models["vit_b_em_organelles"].domain == "Electron microscopy"
    assert models["vit_h_histopathology"].domain == "Histopathology"
    assert models["vit_b_medical_imaging"].domain == "Medical imaging"
    assert all(models[n].has_decoder and models[n].sha256 is None for n in MICROSAM)


def test_cache_dir_follows_the_environment(cache, monkeypatch):
    assert cache_dir() == cache
    monkeypatch.delenv(registry.CACHE_ENV)
    assert "napari-segany" in str(cache_dir())


def test_unknown_name_lists_the_registered_models(cache):
    with pytest.raises(ValueError, match="vit_t, vit_b, vit_l, vit_h"):
        load_model("vit_q")


# ---- downloads -----------------------------------------------------------------------------


def test_load_model_by_name_downloads_with_progress(served_vit_b, cache, checkpoint_bytes):
    server, info = served_vit_b
    calls: list[tuple[int, int]] = []
    model = load_model(
        "vit_b", device="cpu", progress=lambda done, total: calls.append((done, total))
    )
    assert model.image_encoder.img_size == 1024
    assert (cache / VIT_B_FILE).read_bytes() == checkpoint_bytes
    total = len(checkpoint_bytes)
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert len(calls) > 3, "a 14 MB download should report progress more than once"
    dones = [done for done, _ in calls]
    assert dones == sorted(dones) and all(t == total for _, t in calls)
    assert _stray_files(cache) == [VIT_B_FILE]
    assert [m.cached for m in list_models() if m.name == "vit_b"] == [True]
    # Both hashes are recorded, so later checks can use either.
    record = json.loads((cache / "verified.json").read_text())[VIT_B_FILE]
    assert record["sha256"] == info.sha256
    assert record["xxh128"] == xxhash.xxh128(checkpoint_bytes).hexdigest()


def _fail_if_hashed(*args) -> None:
    pytest.fail("re-hashed a verified file")


def test_cached_checkpoint_is_used_offline_without_rehashing(served_vit_b, cache, monkeypatch):
    server, info = served_vit_b
    path = checkpoint_for("vit_b")
    assert server.hits == [f"/{VIT_B_FILE}"]
    # Offline now; and a second start must trust the record instead of hashing again.
    _point_vit_b(monkeypatch, _closed_port_url(), path.read_bytes())
    monkeypatch.setattr(
        download, "file_hashes", lambda *a: pytest.fail("re-hashed a verified file")
    )
    assert checkpoint_for("vit_b") == path
    assert len(server.hits) == 1


def test_changed_cached_file_is_replaced(served_vit_b, cache, checkpoint_bytes):
    server, _ = served_vit_b
    path = checkpoint_for("vit_b")
    # Same size, different bytes: only the hash can tell.
    path.write_bytes(b"\0" * len(checkpoint_bytes))
    assert checkpoint_for("vit_b") == path
    assert path.read_bytes() == checkpoint_bytes
    assert len(server.hits) == 2


def test_hand_placed_file_is_verified_and_used_offline(cache, checkpoint_bytes, monkeypatch):
    _point_vit_b(monkeypatch, _closed_port_url(), checkpoint_bytes)
    cache.mkdir()
    (cache / VIT_B_FILE).write_bytes(checkpoint_bytes)
    assert checkpoint_for("vit_b") == cache / VIT_B_FILE
    assert VIT_B_FILE in json.loads((cache / "verified.json").read_text())


def _download_error(name: str = "vit_b") -> DownloadError:
    start = time.perf_counter()
    with pytest.raises(DownloadError) as info:
        checkpoint_for(name)
    assert time.perf_counter() - start < 5, "a failed download must fail within seconds"
    return info.value


def _assert_tells_user_what_to_do(error: DownloadError, url: str, folder: Path) -> None:
    message = str(error)
    assert VIT_B_FILE in message and url in message and str(folder) in message
    assert "import_checkpoint" in message
    assert isinstance(error, OSError) and error.url == url


def test_offline_gives_a_clear_error_at_once(cache, checkpoint_bytes, monkeypatch):
    url = _closed_port_url()
    _point_vit_b(monkeypatch, url, checkpoint_bytes)
    error = _download_error()
    _assert_tells_user_what_to_do(error, url, cache)
    assert "offline" in str(error)
    assert _stray_files(cache) == []


def test_wrong_hash_is_rejected_and_discarded(served_vit_b, cache, checkpoint_bytes, monkeypatch):
    server, info = served_vit_b
    monkeypatch.setitem(registry.REGISTRY, "vit_b", replace(info, sha256="0" * 64))
    error = _download_error()
    _assert_tells_user_what_to_do(error, info.url, cache)
    assert "SHA-256" in str(error)
    assert _stray_files(cache) == []


def test_truncated_transfer_is_rejected(served_vit_b, cache, checkpoint_bytes):
    server, info = served_vit_b
    server.routes[f"/{VIT_B_FILE}"] = ("truncate", checkpoint_bytes)
    error = _download_error()
    _assert_tells_user_what_to_do(error, info.url, cache)
    assert "broke" in str(error)
    assert _stray_files(cache) == []


def test_http_error_is_reported(served_vit_b, cache):
    server, info = served_vit_b
    server.routes.clear()
    error = _download_error()
    _assert_tells_user_what_to_do(error, info.url, cache)
    assert "HTTP 404" in str(error)
    assert _stray_files(cache) == []


def test_silent_server_times_out(served_vit_b, cache, checkpoint_bytes, monkeypatch):
    server, info = served_vit_b
    server.routes[f"/{VIT_B_FILE}"] = ("stall", checkpoint_bytes)
    monkeypatch.setattr(download, "READ_TIMEOUT_S", 0.5)
    error = _download_error()
    assert "did not answer" in str(error)
    assert _stray_files(cache) == []


def test_progress_callback_can_cancel(served_vit_b, cache):
    def cancel(done: int, total: int) -> None:
        if done > 0:
            raise KeyboardInterrupt  # what a Cancel button's worker raises, near enough

    with pytest.raises(KeyboardInterrupt):
        checkpoint_for("vit_b", progress=cancel)
    assert _stray_files(cache) == []


def test_full_disk_is_reported_before_downloading(served_vit_b, cache, monkeypatch):
    server, _ = served_vit_b
    monkeypatch.setattr(download.shutil, "disk_usage", lambda p: type("U", (), {"free": 10})())
    assert "free on disk" in str(_download_error())
    assert server.hits == []


# ---- offline import ------------------------------------------------------------------------


def test_import_of_an_official_file_makes_it_loadable_by_name(cache, tiny_checkpoint, monkeypatch):
    _point_vit_b(monkeypatch, _closed_port_url(), tiny_checkpoint.read_bytes())
    assert import_checkpoint(tiny_checkpoint) == "vit_b"
    assert (cache / VIT_B_FILE).read_bytes() == tiny_checkpoint.read_bytes()
    assert load_model("vit_b", device="cpu").image_encoder.img_size == 1024  # offline
    assert _stray_files(cache) == [VIT_B_FILE]


def test_import_of_a_custom_checkpoint_registers_it(cache, tiny_checkpoint, tmp_path):
    mine = tmp_path / "my_cells.pth"
    mine.write_bytes(tiny_checkpoint.read_bytes())
    assert import_checkpoint(mine) == "my_cells"
    mine.unlink()  # the cache keeps its own copy
    entry = {m.name: m for m in list_models()}["my_cells"]
    assert entry.custom and entry.cached and entry.url is None
    assert json.loads((cache / "custom_models.json").read_text())["my_cells"]["sha256"]
    assert load_model("my_cells", device="cpu").image_encoder.img_size == 1024
    with pytest.raises(ValueError, match="my_cells"):  # now among the names it suggests
        load_model("my_cell")


def test_import_rejects_a_file_that_is_not_sam(cache, tmp_path):
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(CheckpointError, match="not a SAM checkpoint"):
        import_checkpoint(other)
    assert [m.name for m in list_models()] == SAM_MODELS + MICROSAM
    assert _stray_files(cache) == []


def test_import_refuses_to_shadow_an_official_name(cache, tiny_checkpoint, tmp_path):
    fake = tmp_path / "vit_h.pth"
    fake.write_bytes(tiny_checkpoint.read_bytes())
    with pytest.raises(ValueError, match="Rename the file"):
        import_checkpoint(fake)
    assert _stray_files(cache) == []


# ---- default model -------------------------------------------------------------------------


def test_default_model_suits_the_machine_unless_the_environment_says(
    cache, tiny_checkpoint, monkeypatch
):
    # micro-sam's light-microscopy model, with its instance decoder, sized for the machine
    monkeypatch.setattr(registry, "_has_cuda", lambda: True)
    assert default_model() == "vit_b_lm"
    monkeypatch.setattr(registry, "_has_cuda", lambda: False)
    assert default_model() == "vit_t_lm"  # a laptop without a GPU: MobileSAM-sized
    monkeypatch.setenv(registry.MODEL_ENV, "vit_h")
    assert default_model() == "vit_h"
    monkeypatch.setenv(registry.MODEL_ENV, str(tiny_checkpoint))
    assert default_model() == str(tiny_checkpoint)
    monkeypatch.setenv(registry.MODEL_ENV, "/no/such/model.pth")
    with pytest.raises(ValueError, match=registry.MODEL_ENV):
        default_model()
