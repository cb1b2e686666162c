"""``napari-segany propagate``: seeds labels in, one labels volume out, and clear refusals."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import tifffile

from napari_segany import Predictor, load_model, segment_volume, track
from napari_segany.cli import EXIT_FAILED, EXIT_OK, main


def _run(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_SEGANY_CACHE_DIR", str(tmp_path / "cache"))


def _volume() -> np.ndarray:
    z, r, c = np.mgrid[:6, :48, :56]
    ball = ((z - 3) * 5) ** 2 + (r - 24) ** 2 + (c - 20) ** 2 < 14**2
    blob = ((z - 2) * 6) ** 2 + (r - 30) ** 2 + (c - 44) ** 2 < 8**2
    rng = np.random.default_rng(0)
    data = 300 + 20 * rng.standard_normal((6, 48, 56)) + 2500 * ball + 1800 * blob
    return data.astype(np.uint16)


def _seeds() -> np.ndarray:
    seeds = np.zeros((6, 48, 56), dtype=np.uint16)
    seeds[3, 18:30, 14:26] = 4
    seeds[2, 26:34, 40:48] = 9
    return seeds


@pytest.fixture
def files(tmp_path):
    tifffile.imwrite(tmp_path / "volume.tif", _volume())
    tifffile.imwrite(tmp_path / "seeds.tif", _seeds())
    return tmp_path


def _predictor(checkpoint) -> Predictor:
    return Predictor(load_model(checkpoint, device="cpu"), precision="fp32")


def _argv(files, checkpoint, *extra):
    return [
        "propagate", files / "volume.tif", "--seeds", files / "seeds.tif",
        "-o", files / "out.tif", "--model", checkpoint, "--device", "cpu",
        "--precision", "fp32", "-q", *extra,
    ]  # fmt: skip


def test_the_output_is_the_apis_labels_volume(files, tiny_checkpoint):
    code, stdout, stderr = _run(*_argv(files, tiny_checkpoint, "--iou-threshold", "0.3"))
    assert code == EXIT_OK, stderr
    written = tifffile.imread(files / "out.tif")
    expected, ranges = segment_volume(
        _predictor(tiny_checkpoint), _volume(), _seeds(), iou_threshold=0.3, box_extension=0.05
    )
    np.testing.assert_array_equal(written, expected)
    assert written.dtype == np.uint16 and written.shape == (6, 48, 56)
    assert set(np.unique(written)) <= {0, 4, 9}
    assert "2 object(s) written" in stdout
    assert f"id 4: {ranges[4][0]}-{ranges[4][1]}" in stdout
    assert not list(files.glob(".*.part"))  # written whole, under its name only


def test_projection_box_extension_axis_and_time_reach_the_core(files, tiny_checkpoint):
    along_rows = np.moveaxis(_volume(), 0, 1)  # (H, Z, W): z is axis 1
    tifffile.imwrite(files / "volume.tif", along_rows)
    tifffile.imwrite(files / "seeds.tif", np.moveaxis(_seeds(), 0, 1))
    argv = _argv(files, tiny_checkpoint, "--axis", "1", "--projection", "box")
    code, _, stderr = _run(*argv, "--box-extension", "2", "--time", "--motion-smoothing", "0.2")
    assert code == EXIT_OK, stderr
    expected, _ = track(
        _predictor(tiny_checkpoint), along_rows, np.moveaxis(_seeds(), 0, 1), axis=1,
        projection="box", box_extension=2.0, motion_smoothing=0.2,
    )  # fmt: skip
    np.testing.assert_array_equal(tifffile.imread(files / "out.tif"), expected)


def test_tile_shape_and_halo_tile_the_planes(files, tiny_checkpoint):
    """The planes in micro-sam's tiles: the API's tiled answer, which differs from whole planes."""
    argv = _argv(files, tiny_checkpoint, "--tile-shape", "24,28", "--halo", "8")
    code, _, stderr = _run(*argv, "--iou-threshold", "0")
    assert code == EXIT_OK, stderr
    predictor = _predictor(tiny_checkpoint)
    common = dict(iou_threshold=0.0, box_extension=0.05)
    tiled, _ = segment_volume(predictor, _volume(), _seeds(), tile_shape=(24, 28), halo=8, **common)
    whole, _ = segment_volume(predictor, _volume(), _seeds(), **common)
    written = tifffile.imread(files / "out.tif")
    np.testing.assert_array_equal(written, tiled)
    assert (written != whole).any()


def test_seeds_of_another_shape_are_refused_with_both_shapes(files, tiny_checkpoint):
    tifffile.imwrite(files / "seeds.tif", _seeds()[:, :40])
    code, _, stderr = _run(*_argv(files, tiny_checkpoint))
    assert code == EXIT_FAILED
    assert "(6, 40, 56)" in stderr and "(6, 48, 56)" in stderr
    assert not (files / "out.tif").exists()


def test_empty_or_float_seeds_are_refused(files, tiny_checkpoint):
    tifffile.imwrite(files / "seeds.tif", np.zeros((6, 48, 56), dtype=np.uint8))
    code, _, stderr = _run(*_argv(files, tiny_checkpoint))
    assert code == EXIT_FAILED and "are empty" in stderr and "at least one slice" in stderr
    tifffile.imwrite(files / "seeds.tif", _seeds().astype(np.float32))
    code, _, stderr = _run(*_argv(files, tiny_checkpoint))
    assert code == EXIT_FAILED and "integer labels" in stderr
    assert not (files / "out.tif").exists()


def test_an_existing_output_or_an_input_is_never_overwritten_unasked(files, tiny_checkpoint):
    (files / "out.tif").write_bytes(b"an earlier result")
    code, _, stderr = _run(*_argv(files, tiny_checkpoint))
    assert code == EXIT_FAILED and "--overwrite" in stderr
    assert (files / "out.tif").read_bytes() == b"an earlier result"
    argv = _argv(files, tiny_checkpoint)
    argv[argv.index("-o") + 1] = files / "seeds.tif"
    code, _, stderr = _run(*argv, "--overwrite")
    assert code == EXIT_FAILED and "is one of the inputs" in stderr
    np.testing.assert_array_equal(tifffile.imread(files / "seeds.tif"), _seeds())
    code, _, stderr = _run(*_argv(files, tiny_checkpoint), "--overwrite")
    assert code == EXIT_OK, stderr
    assert tifffile.imread(files / "out.tif").shape == (6, 48, 56)


def test_bad_settings_are_refused_before_the_model_loads(files, tmp_path):
    missing = tmp_path / "no_such_model.pth"  # never read: the settings are checked first
    code, _, stderr = _run(*_argv(files, missing, "--iou-threshold", "2"))
    assert code == EXIT_FAILED and "iou_threshold" in stderr
    code, _, stderr = _run(*_argv(files, missing, "--axis", "3"))
    assert code == EXIT_FAILED and "axis" in stderr
    code, _, stderr = _run(*_argv(files, missing, "--time", "--motion-smoothing", "-1"))
    assert code == EXIT_FAILED and "motion_smoothing" in stderr
    code, _, stderr = _run(*_argv(files, missing, "--tile-shape", "24"))  # no halo
    assert code == EXIT_FAILED and "halo" in stderr
    assert not (files / "out.tif").exists()


def test_the_command_is_listed_with_its_options():
    code, stdout, _ = _run("propagate", "--help")
    assert code == EXIT_OK
    for flag in ("--seeds", "--projection", "--iou-threshold", "--box-extension", "--axis"):
        assert flag in stdout
    assert "--time" in stdout
