"""Batch work as dask tasks: finding inputs, reading every image layout, resuming after an
interruption, and the same results on a real dask.distributed cluster."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage import data

from napari_segany.batch import run as batch_run
from napari_segany.batch import segment_files
from napari_segany.batch import worker as batch_worker
from napari_segany.batch.inputs import (
    find_inputs,
    napari_contrast_limits,
    plan_image,
    read_plane,
)
from napari_segany.cli import main
from napari_segany.errors import UnreadableImageError

# Few points keep each plane to a couple of seconds on two cores; thresholds at 0 because a
# random-weight model predicts poor masks, and a run without masks would prove little.
FAST = dict(points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0)
CLI_FAST = ["--points-per-side", "2", "--pred-iou-thresh", "0", "--stability-score-thresh", "0"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_SEGANY_CACHE_DIR", str(tmp_path / "cache"))


def _png(path, image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


# ---- finding inputs ----------------------------------------------------------------------------


def test_find_inputs_expands_folders_and_patterns(tmp_path):
    _png(tmp_path / "a" / "one.png", data.coins()[:20, :20])
    _png(tmp_path / "a" / "two.PNG", data.coins()[:20, :20])
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "b" / "deep").mkdir(parents=True)
    tifffile.imwrite(tmp_path / "b" / "deep" / "three.tif", np.zeros((8, 8), np.uint8))
    _png(tmp_path / "a" / "out" / "old_labels.png", data.coins()[:20, :20])

    files, problems = find_inputs(
        [
            tmp_path / "a",
            str(tmp_path / "b" / "**" / "*.tif"),
            tmp_path / "a" / "one.png",  # again: listed once
            tmp_path / "missing.tif",
            str(tmp_path / "a" / "*.jpg"),
        ],
        exclude=tmp_path / "a" / "out",
    )
    assert [f.name for f in files] == ["one.png", "two.PNG", "three.tif"]
    assert [(p.input.name, p.message) for p in problems] == [
        ("missing.tif", "no such file or folder"),
        ("*.jpg", "the pattern matches no files"),
    ]
    # The output folder's own files are never taken for inputs of a rerun.
    files, _ = find_inputs([str(tmp_path / "a" / "**" / "*.png")], exclude=tmp_path / "a" / "out")
    assert "old_labels.png" not in [f.name for f in files]


# ---- reading every layout plane by plane -------------------------------------------------------


@pytest.mark.parametrize(
    ("write", "label_shape", "plane_shape"),
    [
        (lambda p, a: tifffile.imwrite(p, a[0, 0]), (30, 40), (30, 40)),
        (
            lambda p, a: tifffile.imwrite(p, a, imagej=True, metadata={"axes": "TZYX"}),
            (2, 3, 30, 40),
            (30, 40),
        ),
        (lambda p, a: tifffile.imwrite(p, a[:, 0]), (2, 30, 40), (30, 40)),  # unnamed stack
        (
            lambda p, a: tifffile.imwrite(p, np.stack([a[0, 0]] * 3, -1), photometric="rgb"),
            (30, 40),
            (30, 40, 3),
        ),
        (
            lambda p, a: tifffile.imwrite(
                p, np.stack([a[0]] * 3, 1), photometric="rgb", planarconfig="separate"
            ),
            (3, 30, 40),
            (30, 40, 3),
        ),
    ],
    ids=["2d", "imagej-tzyx", "stack", "rgb", "planar-rgb-stack"],
)
def test_tiff_layouts_read_plane_by_plane(tmp_path, rng, write, label_shape, plane_shape):
    stack = rng.integers(0, 60000, size=(2, 3, 30, 40), dtype=np.uint16)
    path = tmp_path / "image.tif"
    write(path, stack)
    plan = plan_image(path)
    assert plan.shape == label_shape
    whole = tifffile.imread(path)
    for index in range(plan.n_planes):
        plane = read_plane(plan, index)
        assert plane.shape == plane_shape
        expected = whole.reshape((-1, *whole.shape[-len(plane_shape) :]))[index]
        if plane.ndim == 3 and expected.shape != plane.shape:  # planar storage
            expected = np.moveaxis(whole.reshape((-1, 3, 30, 40))[index], 0, -1)
        np.testing.assert_array_equal(plane, expected)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "I;16", "LA", "P"])
def test_png_modes(tmp_path, mode):
    rgb = data.astronaut()[:24, :32]
    image = Image.fromarray(rgb).convert(mode) if mode != "I;16" else None
    if mode == "I;16":
        image = Image.fromarray((rgb[..., 0].astype(np.uint16) * 200).astype(np.uint16))
    image.save(tmp_path / "x.png")
    plan = plan_image(tmp_path / "x.png")
    plane = read_plane(plan, 0)
    assert plan.shape == (24, 32) and plane.shape[:2] == (24, 32)
    assert plan.rgb == (plane.ndim == 3)


def test_unreadable_files_are_named_with_the_reason(tmp_path):
    (tmp_path / "broken.tif").write_bytes(b"II*\x00 truncated")
    (tmp_path / "fake.png").write_bytes(b"\x89PNG nothing more")
    for name in ("broken.tif", "fake.png"):
        with pytest.raises(UnreadableImageError, match=name):
            plan_image(tmp_path / name)


def test_embed_contrast_matches_what_napari_shows(tmp_path, rng):
    from napari.layers.utils.layer_utils import calc_data_range

    stack = rng.integers(100, 4000, size=(3, 20, 30), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")
    assert napari_contrast_limits(plan_image(tmp_path / "s.tif")) == calc_data_range(stack)
    floats = rng.normal(size=(20, 30)).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", floats)
    assert napari_contrast_limits(plan_image(tmp_path / "f.tif")) == pytest.approx(
        calc_data_range(floats)
    )
    tifffile.imwrite(tmp_path / "u8.tif", stack.astype(np.uint8), photometric="minisblack")
    assert napari_contrast_limits(plan_image(tmp_path / "u8.tif")) is None  # 0-255


# ---- settings are checked before any work ------------------------------------------------------


def test_bad_settings_fail_before_any_work(tmp_path, tiny_checkpoint):
    _png(tmp_path / "in" / "a.png", data.coins()[:20, :20])
    with pytest.raises(TypeError, match="points_per_sid"):
        segment_files(tmp_path / "in", tmp_path / "out", tiny_checkpoint, points_per_sid=4)
    with pytest.raises(ValueError, match="points_per_side"):
        segment_files(tmp_path / "in", tmp_path / "out", tiny_checkpoint, points_per_side=0)
    with pytest.raises(ValueError, match="fp16 is not supported on the CPU"):
        segment_files(
            tmp_path / "in", tmp_path / "out", tiny_checkpoint, device="cpu", precision="fp16"
        )
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        segment_files(tmp_path / "in", tmp_path / "out", tmp_path / "nowhere.pth")
    assert not (tmp_path / "out").exists()


# ---- resume ------------------------------------------------------------------------------------


class _Interrupt(KeyboardInterrupt):
    pass


def test_a_killed_run_resumes_where_it_stopped(tmp_path, tiny_checkpoint):
    folder = tmp_path / "in"
    _png(folder / "a.png", data.coins()[:64, :80])
    _png(folder / "b.png", data.coins()[64:128, :80])
    out = tmp_path / "out"
    # A temporary file of an earlier, killed run: it must not count as the output.
    out.mkdir()
    stale = out / ".b_labels.tif.0123456789ab.part"
    stale.write_bytes(b"half a TIFF")
    os.utime(stale, (time.time() - 60, time.time() - 60))

    def stop_after_first(result):
        if result.status == "done":
            raise _Interrupt

    with pytest.raises(KeyboardInterrupt):
        segment_files(
            folder, out, tiny_checkpoint, device="cpu", on_result=stop_after_first, **FAST
        )
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert written == ["a_labels.tif"]
    first = (out / "a_labels.tif").stat().st_mtime_ns

    summary = segment_files(folder, out, tiny_checkpoint, device="cpu", **FAST)
    assert [(r.input.name, r.status) for r in summary.results] == [
        ("a.png", "skipped"),
        ("b.png", "done"),
    ]
    assert (out / "a_labels.tif").stat().st_mtime_ns == first
    assert tifffile.imread(out / "b_labels.tif").shape == (64, 80)
    assert not stale.exists()  # cleaned up once b's real output was in place


# ---- dask.distributed --------------------------------------------------------------------------


def test_cluster_runs_the_tasks_and_gives_the_same_labels(tmp_path, tiny_checkpoint):
    from distributed import Client, LocalCluster

    _png(tmp_path / "in" / "coins.png", data.coins()[:96, :128])
    local = segment_files(
        tmp_path / "in", tmp_path / "local", tiny_checkpoint, device="cpu", **FAST
    )
    assert local.ok and local.results[0].workers[0].startswith("inproc://")

    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        (worker,) = [w.worker_address for w in cluster.workers.values()]
        summary = segment_files(
            tmp_path / "in",
            tmp_path / "cluster",
            tiny_checkpoint,
            device="cpu",
            scheduler=cluster.scheduler_address,
            **FAST,
        )
        with Client(cluster) as client:
            models = client.run(batch_worker.cached_models)
        # The console script on the same cluster.
        code = main(
            ["segment-everything", str(tmp_path / "in"), "-o", str(tmp_path / "cli"), "-q",
             "--model", str(tiny_checkpoint), "--device", "cpu",
             "--scheduler", cluster.scheduler_address, *CLI_FAST]
        )  # fmt: skip

    assert summary.ok and summary.scheduler == cluster.scheduler_address
    assert summary.results[0].workers == (worker,)
    # The worker process loaded the model once and keeps it for the next tasks.
    assert [m.model for m in models[worker]] == [str(tiny_checkpoint.resolve())]
    expected = tifffile.imread(tmp_path / "local" / "coins_labels.tif")
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "cluster" / "coins_labels.tif"), expected
    )
    assert code == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "cli" / "coins_labels.tif"), expected)


def test_unreachable_scheduler_is_a_clear_error(tmp_path, tiny_checkpoint, monkeypatch):
    import socket

    monkeypatch.setattr(batch_run, "SCHEDULER_TIMEOUT_S", 1.0)

    _png(tmp_path / "in" / "a.png", data.coins()[:20, :20])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(ConnectionError, match=f"tcp://127.0.0.1:{port}"):
        segment_files(
            tmp_path / "in", tmp_path / "out", tiny_checkpoint, scheduler=f"tcp://127.0.0.1:{port}"
        )


def test_a_plane_that_fails_is_reported_once_without_dask_tracebacks(
    tmp_path, tiny_checkpoint, caplog
):
    """A TIFF whose header reads but whose pixels do not: the report names it, and dask
    logs no 'Compute Failed' traceback beside it."""
    import logging

    images = tmp_path / "images"
    images.mkdir()
    good = data.coins()[:48, :64]
    tifffile.imwrite(images / "good.tif", good)
    tifffile.imwrite(images / "cut.tif", np.stack([good, good]), compression="zlib")
    with tifffile.TiffFile(images / "cut.tif") as tif:  # where the second plane's pixels are
        offset, count = tif.pages[1].dataoffsets[0], tif.pages[1].databytecounts[0]
    raw = bytearray((images / "cut.tif").read_bytes())
    raw[offset : offset + count] = b"not zlib data" * (count // 13) + b"x" * (count % 13)
    (images / "cut.tif").write_bytes(bytes(raw))
    plan_image(images / "cut.tif")  # the header still reads: the failure comes in the task
    with caplog.at_level(logging.INFO):
        summary = segment_files(
            images, tmp_path / "out", model=str(tiny_checkpoint), device="cpu",
            points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0,
        )  # fmt: skip
    assert [r.input.name for r in summary.failed] == ["cut.tif"]
    assert "cut.tif" in summary.report()
    assert [r.input.name for r in summary.done] == ["good.tif"]
    assert "Compute Failed" not in caplog.text
