"""micro-sam's models by name, verified with their published xxh128, downloaded from a local
HTTP server the test starts (these machines have no internet)."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
from dataclasses import replace
from functools import partial

import pytest
import torch

from napari_segany.errors import DownloadError
from napari_segany.instances import (
    DEFAULT_MICROSCOPY_MODEL_CPU,
    DEFAULT_MICROSCOPY_MODEL_GPU,
    DOMAINS,
    MICROSAM_MODELS,
    download_verified,
    fetch_microsam_model,
    instance_decoder_of,
    load_sam_with_decoder,
    models_by_domain,
    verify_file,
)
from napari_segany.modeling.instance_decoder import InstanceDecoder, InstanceDecoderConfig
from napari_segany.weights import registry

# A fixed file and its xxh128, computed once (xxhash 4.1) and written down here, so the test
# does not trust the code it checks for the hash.
CONTENT = b"napari-segany xxh128 test file\n" * 1000
CONTENT_XXH128 = "bc34cb760193f5c357eddca244541a9c"


def test_every_model_of_micro_sam_is_registered_with_its_hashes():
    assert list(MICROSAM_MODELS) == [
        "vit_b_lm", "vit_l_lm", "vit_t_lm", "vit_b_em_organelles", "vit_l_em_organelles",
        "vit_t_em_organelles", "vit_b_histopathology", "vit_l_histopathology",
        "vit_h_histopathology", "vit_b_medical_imaging",
    ]  # fmt: skip
    lm = MICROSAM_MODELS["vit_b_lm"]
    assert lm.url == (
        "https://uk1s3.embassy.ebi.ac.uk/public-datasets/bioimage.io/diplomatic-bug/1.2/files/"
        "vit_b.pt"
    )
    assert lm.decoder_url == lm.url.replace("vit_b.pt", "vit_b_decoder.pt")
    assert (lm.xxh128, lm.decoder_xxh128) == (
        "fe9252a29f3f4ea53c15a06de471e186",
        "708b15ac620e235f90bb38612c4929ba",
    )
    histo = MICROSAM_MODELS["vit_h_histopathology"]
    assert histo.url == "https://owncloud.gwdg.de/index.php/s/L7AcvVz7DoWJ2RZ/download"
    assert histo.decoder_url == "https://owncloud.gwdg.de/index.php/s/1qAKxy5H0jgwZvM/download"
    assert histo.architecture == "vit_h"
    assert MICROSAM_MODELS["vit_t_em_organelles"].url.endswith("greedy-whale/1/files/vit_t.pt")
    for model in MICROSAM_MODELS.values():
        assert re.fullmatch(r"[0-9a-f]{32}", model.xxh128), model.name
        assert re.fullmatch(r"[0-9a-f]{32}", model.decoder_xxh128), model.name
        assert model.name.startswith(model.architecture + "_")
        assert model.domain in DOMAINS and model.description
    assert len({m.filename for m in MICROSAM_MODELS.values()}) == len(MICROSAM_MODELS)


def test_the_picker_groups_models_by_domain():
    groups = models_by_domain()
    assert list(groups) == list(DOMAINS)
    assert [m.name for m in groups["Electron microscopy"]] == [
        "vit_b_em_organelles", "vit_l_em_organelles", "vit_t_em_organelles",
    ]  # fmt: skip
    assert sum(len(g) for g in groups.values()) == len(MICROSAM_MODELS)
    assert {DEFAULT_MICROSCOPY_MODEL_GPU, DEFAULT_MICROSCOPY_MODEL_CPU} <= set(MICROSAM_MODELS)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(registry.CACHE_ENV, str(folder))
    return folder


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path / "served"``."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_a_file_with_its_xxh128_is_downloaded_and_its_sha256_recorded(server, cache):
    folder, url = server
    (folder / "file.bin").write_bytes(CONTENT)
    seen = []
    got = download_verified(
        f"{url}/file.bin", cache / "microsam" / "file.bin", CONTENT_XXH128,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert got.path.read_bytes() == CONTENT
    assert got.sha256 == hashlib.sha256(CONTENT).hexdigest()
    assert seen[-1] == (len(CONTENT), len(CONTENT))
    # Later checks trust the unchanged file by either hash.
    assert verify_file(got.path, xxh128=CONTENT_XXH128) is None
    assert verify_file(got.path, sha256=got.sha256) is None
    records = json.loads((cache / registry.VERIFIED_JSON).read_text())
    assert records["microsam/file.bin"]["xxh128"] == CONTENT_XXH128
    assert records["microsam/file.bin"]["sha256"] == got.sha256


def test_a_file_with_the_wrong_xxh128_is_discarded(server, cache):
    folder, url = server
    (folder / "file.bin").write_bytes(CONTENT + b"tampered")
    dest = cache / "microsam" / "file.bin"
    with pytest.raises(DownloadError, match="xxh128 does not match"):
        download_verified(f"{url}/file.bin", dest, CONTENT_XXH128)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no partial file left behind


def test_a_missing_file_is_a_clear_error(server, cache, tmp_path):
    _, url = server
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_verified(f"{url}/nope.pt", tmp_path / "x.pt", CONTENT_XXH128)


def test_a_registry_entry_downloads_both_files_and_loads_with_its_decoder(
    server, cache, monkeypatch, small_checkpoint
):
    import xxhash

    folder, url = server
    torch.manual_seed(0)
    decoder = InstanceDecoder(InstanceDecoderConfig(features=(16, 8, 4, 2)))
    (folder / "vit_b.pt").write_bytes(small_checkpoint.read_bytes())
    torch.save(decoder.state_dict(), folder / "vit_b_decoder.pt")
    digest = {p.name: xxhash.xxh128(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    entry = replace(
        registry.REGISTRY["vit_b_lm"],
        url=f"{url}/vit_b.pt", xxh128=digest["vit_b.pt"],
        decoder_url=f"{url}/vit_b_decoder.pt", decoder_xxh128=digest["vit_b_decoder.pt"],
    )  # fmt: skip
    monkeypatch.setitem(registry.REGISTRY, "vit_b_lm", entry)
    checkpoint, decoder_path = fetch_microsam_model("vit_b_lm")
    assert checkpoint == cache / "microsam" / "vit_b_lm.pt"
    assert decoder_path == cache / "microsam" / "vit_b_lm_decoder.pt"
    model = load_sam_with_decoder(checkpoint, decoder_path, device="cpu")
    assert instance_decoder_of(model).config.features == (16, 8, 4, 2)

    # A file changed on disk is fetched again; an unchanged one is not.
    before = checkpoint.stat().st_mtime_ns
    decoder_path.write_bytes(b"corrupted")
    fetch_microsam_model("vit_b_lm")
    assert xxhash.xxh128(decoder_path.read_bytes()).hexdigest() == digest["vit_b_decoder.pt"]
    assert checkpoint.stat().st_mtime_ns == before


def test_an_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="vit_b_lm"):
        fetch_microsam_model("vit_b_cells")
