"""The ``napari-segany`` console script, end to end on a temporary folder."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import entry_points

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage import data

from napari_segany.automatic.coco import decode_rle
from napari_segany.cli import main
from napari_segany.weights import download, registry

FAST = ["--points-per-side", "2", "--pred-iou-thresh", "0", "--stability-score-thresh", "0"]
PARAM_FLAGS = [
    "--points-per-side",
    "--points-per-batch",
    "--pred-iou-thresh",
    "--stability-score-thresh",
    "--stability-score-offset",
    "--box-nms-thresh",
    "--crop-n-layers",
    "--crop-nms-thresh",
    "--crop-overlap-ratio",
    "--crop-n-points-downscale-factor",
    "--min-mask-region-area",
]


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_SEGANY_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, tiny_checkpoint):
    """One run over a folder with a grey PNG, an RGB JPEG, a 2-plane TIFF stack, a corrupt
    TIFF, an image whose outputs exist, and a stale temporary file of a killed run."""
    root = tmp_path_factory.mktemp("experiment")
    images, out = root / "images", root / "results"
    images.mkdir()
    out.mkdir()
    Image.fromarray(data.coins()[:96, :128]).save(images / "coins.png")
    Image.fromarray(data.astronaut()[::4, ::4]).save(images / "astronaut.jpg", quality=90)
    cell = data.cell()[:64, :80].astype(np.uint16) * 40
    tifffile.imwrite(images / "stack.tif", np.stack([cell, cell[::-1]]))
    (images / "corrupt.tif").write_bytes(b"II*\x00" + os.urandom(200))
    Image.fromarray(data.coins()[:32, :32]).save(images / "done.png")
    (out / "done_labels.tif").write_bytes(b"from an earlier run")
    (out / "done_masks.json").write_bytes(b"from an earlier run")
    stale = out / ".coins_labels.tif.abcdef123456.part"
    stale.write_bytes(b"half a TIFF")
    os.utime(stale, (time.time() - 60, time.time() - 60))

    argv = ["segment-everything", images, "-o", out, "--model", tiny_checkpoint, "--coco"]
    argv += ["--device", "cpu", *FAST]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NAPARI_SEGANY_CACHE_DIR", str(root / "cache"))
        code, stdout, stderr = _run(*argv)
    return {"images": images, "out": out, "argv": argv, "code": code, "stdout": stdout,
            "stderr": stderr, "stale": stale}  # fmt: skip


def _labels_and_json(out, name):
    labels = tifffile.imread(out / f"{name}_labels.tif")
    document = json.loads((out / f"{name}_masks.json").read_text())
    return labels, document


def test_each_image_gets_labels_of_its_size_and_sa1b_json(experiment):
    out = experiment["out"]
    for name, shape in (("coins", (96, 128)), ("astronaut", (128, 128))):
        labels, document = _labels_and_json(out, name)
        assert labels.shape == shape and labels.dtype.kind == "u"
        assert document["image"]["height"] == shape[0] and document["image"]["width"] == shape[1]
        annotations = document["annotations"]
        assert annotations, f"no masks for {name}"
        assert {a["id"] for a in annotations} >= set(np.unique(labels[labels > 0]).tolist())
        for annotation in annotations:
            mask = decode_rle(annotation["segmentation"])
            assert mask.shape == shape
            assert annotation["area"] == int(mask.sum())
            # Every pixel labelled with this id belongs to its mask (smaller masks may cover
            # parts of it in the label image).
            assert np.all(mask[labels == annotation["id"]])
            x, y, w, h = annotation["bbox"]
            rows, cols = np.nonzero(mask)
            assert (x, y, x + w, y + h) == (cols.min(), rows.min(), cols.max(), rows.max())
            for key in ("predicted_iou", "stability_score", "point_coords", "crop_box"):
                assert key in annotation


def test_stack_is_segmented_plane_by_plane_with_unique_ids(experiment):
    labels, document = _labels_and_json(experiment["out"], "stack")
    assert labels.shape == (2, 64, 80)
    ids = [set(np.unique(plane[plane > 0]).tolist()) for plane in labels]
    assert ids[0] and ids[1] and not ids[0] & ids[1]
    for annotation in document["annotations"]:
        (plane,) = annotation["slice_index"]
        assert annotation["id"] not in ids[1 - plane]
        assert np.all(decode_rle(annotation["segmentation"])[labels[plane] == annotation["id"]])


def test_corrupt_input_is_named_and_the_rest_goes_on(experiment):
    assert experiment["code"] == 1
    assert "3 done (4 planes), 1 skipped" in experiment["stdout"]
    assert "1 failed" in experiment["stdout"]
    assert "corrupt.tif" in experiment["stdout"] and "corrupt.tif" in experiment["stderr"]
    assert not (experiment["out"] / "corrupt_labels.tif").exists()
    assert "plane" in experiment["stderr"]  # the progress bar


def test_existing_outputs_are_kept_and_stale_temporaries_ignored(experiment):
    out = experiment["out"]
    assert (out / "done_labels.tif").read_bytes() == b"from an earlier run"
    assert tifffile.imread(out / "coins_labels.tif").shape == (96, 128)
    assert not experiment["stale"].exists()
    assert not list(out.glob(".*.part"))


def test_rerun_skips_everything_and_overwrite_redoes(experiment, tiny_checkpoint):
    out = experiment["out"]
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, stdout, _ = _run(*experiment["argv"])
    assert code == 1 and "0 done (0 planes), 4 skipped" in stdout  # corrupt still fails
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before

    code, stdout, _ = _run(
        "segment-everything", experiment["images"] / "done.png", "-o", out, "--model",
        tiny_checkpoint, "--device", "cpu", "--coco", "--overwrite", "-q", *FAST,
    )  # fmt: skip
    assert code == 0 and "1 done" in stdout
    assert tifffile.imread(out / "done_labels.tif").shape == (32, 32)
    assert json.loads((out / "done_masks.json").read_text())["image"]["file_name"] == "done.png"


def test_embed_fills_the_widget_store_by_default(tmp_path, tiny_checkpoint, monkeypatch):
    from napari_segany.embeddings import EmbeddingStore, plane_embedding_key

    monkeypatch.setenv("NAPARI_SEGANY_EMBEDDING_DIR", str(tmp_path / "widget-store"))
    image = data.coins()[:40, :56]
    Image.fromarray(image).save(tmp_path / "coins.png")
    argv = ["embed", tmp_path / "coins.png", "--model", tiny_checkpoint, "--device", "cpu"]
    code, stdout, _ = _run(*argv, "--precision", "fp32")
    assert code == 0 and "1 done" in stdout
    key = plane_embedding_key(image, (0, 255), tiny_checkpoint, "fp32")
    assert EmbeddingStore(tmp_path / "widget-store").load(key) is not None
    code, stdout, _ = _run(*argv, "--precision", "fp32")
    assert code == 0 and "1 skipped" in stdout


# ---- arguments -----------------------------------------------------------------------------------


def test_console_script_is_installed_and_help_is_light():
    (script,) = entry_points(group="console_scripts", name="napari-segany")
    assert script.load() is main
    code = (
        "import sys\n"
        "from napari_segany.cli import main\n"
        "rc = main(['segment-everything', '--help'])\n"
        "heavy = [m for m in ('torch', 'dask', 'distributed') if m in sys.modules]\n"
        "sys.exit(rc or (3 if heavy else 0))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for flag in (*PARAM_FLAGS, "--model", "--device", "--precision", "--scheduler", "--coco"):
        assert flag in done.stdout
    # The help and the presets are the ones the API and the widget read.
    from napari_segany.automatic.params import PRESETS, SETTINGS

    flat = " ".join(done.stdout.split())
    assert SETTINGS["box_nms_thresh"].help.split(" (")[0][:40] in flat
    assert "--preset" in flat and all(name in flat for name in PRESETS)


def test_a_preset_and_flags_given_on_top_of_it(tmp_path, tiny_checkpoint, monkeypatch):
    import napari_segany.batch

    seen = {}
    monkeypatch.setattr(
        napari_segany.batch, "segment_files", lambda *a, **kw: seen.update(kw) or _Summary()
    )
    code, _, _ = _run(
        "segment-everything", tmp_path, "-o", tmp_path / "o", "--model", tiny_checkpoint,
        "--preset", "Fast (16 x 16 points)", "--box-nms-thresh", "0.5", "-q",
    )  # fmt: skip
    assert code == 0
    assert seen["points_per_side"] == 16 and seen["pred_iou_thresh"] == 0.86
    assert seen["box_nms_thresh"] == 0.5 and seen["crop_n_layers"] == 0


class _Summary:
    ok = True

    def report(self) -> str:
        return "done"


def test_without_the_batch_extra_the_command_names_it(tmp_path, tiny_checkpoint):
    code = (
        "import sys\n"
        "sys.modules['distributed'] = None  # as if dask.distributed were not installed\n"
        "from napari_segany.cli import main\n"
        f"sys.exit(main(['segment-everything', {str(tmp_path)!r}, '-o', {str(tmp_path / 'o')!r},"
        f" '--model', {str(tiny_checkpoint)!r}, '-q']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert "pip install 'napari-segany[batch]'" in done.stderr


def test_bad_arguments_are_explained(tmp_path, tiny_checkpoint):
    code, _, stderr = _run("segment-everything", tmp_path)  # no --output
    assert code == 2 and "--output" in stderr
    code, _, stderr = _run(
        "segment-everything", tmp_path, "-o", tmp_path / "o", "--model", tiny_checkpoint,
        "--device", "cpu", "--precision", "fp16",
    )  # fmt: skip
    assert code == 1 and "fp16 is not supported on the CPU" in stderr
    code, _, stderr = _run("segment-everything", tmp_path, "-o", tmp_path / "o", "--model", "nope")
    assert code == 1 and "Unknown model 'nope'" in stderr
    code, _, stderr = _run(
        "segment-everything", tmp_path, "-o", tmp_path / "o", "--model", tiny_checkpoint,
        "--points-per-side", "0",
    )  # fmt: skip
    assert code == 1 and "points_per_side" in stderr


# ---- models --------------------------------------------------------------------------------------


def test_models_list_and_import(tmp_path, tiny_checkpoint):
    code, stdout, _ = _run("models", "list")
    assert code == 0 and str(tmp_path / "cache") in stdout
    for name in ("vit_t", "vit_b", "vit_l", "vit_h"):
        assert f"  {name} " in stdout and "not cached" in stdout

    code, stdout, _ = _run("models", "import", tiny_checkpoint)
    assert code == 0 and "as model 'sam_tiny_0'" in stdout
    code, stdout, _ = _run("models", "list")
    (line,) = [ln for ln in stdout.splitlines() if "sam_tiny_0" in ln]
    assert "not cached" not in line and "(imported)" in line

    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    code, _, stderr = _run("models", "import", junk)
    assert code == 1 and "junk.pth" in stderr


class _Files(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_models_download_from_a_local_server(tmp_path, tiny_checkpoint, monkeypatch):
    body = tiny_checkpoint.read_bytes()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    server.files = {"/mobile_sam.pt": body}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/mobile_sam.pt"
        entry = replace(
            registry.REGISTRY["vit_t"],
            url=url,
            size=len(body),
            sha256=download.sha256_of(tiny_checkpoint),
        )
        monkeypatch.setitem(registry.REGISTRY, "vit_t", entry)
        code, stdout, stderr = _run("models", "download", "vit_t")
        assert code == 0, stderr
        assert (tmp_path / "cache" / "mobile_sam.pt").read_bytes() == body
        assert str(tmp_path / "cache" / "mobile_sam.pt") in stdout
        code, stdout, _ = _run("models", "list")
        (line,) = [ln for ln in stdout.splitlines() if ln.split()[:1] == ["vit_t"]]
        assert "not cached" not in line
    finally:
        server.shutdown()
    code, _, stderr = _run("models", "download", "vit_zz")
    assert code == 1 and "Unknown model 'vit_zz'" in stderr
