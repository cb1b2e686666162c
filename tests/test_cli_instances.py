"""``napari-segany segment-instances`` and ``segment-everything --mode``: micro-sam's instance
segmentation over files, folders and stacks, with the batch runs' resumable outputs."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage import data

from instance_checkpoints import structured_decoder_state, write_with_decoder
from napari_segany import Predictor, load_model, segment_instances
from napari_segany.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main

COINS = data.coins()[:96, :128]
CELL = data.cell()[:64, :80]


def _run(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_SEGANY_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def microsam_checkpoint(tmp_path_factory, small_checkpoint):
    """The small SAM with an instance decoder beside it (vit_b.pt and vit_b_decoder.pt)."""
    folder = tmp_path_factory.mktemp("model")
    decoder = structured_decoder_state(small_checkpoint, COINS)
    return write_with_decoder(folder, small_checkpoint, decoder)


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(COINS).save(folder / "coins.png")
    tifffile.imwrite(folder / "stack.tif", np.stack([CELL, CELL[::-1]]))
    return folder


def _expected(checkpoint, plane: np.ndarray, **params) -> np.ndarray:
    predictor = Predictor(load_model(checkpoint, device="cpu"), precision="fp32")
    return segment_instances(predictor, plane, **params)


def _same_objects(labels: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_array_equal(labels > 0, expected > 0)
    assert len(np.unique(labels)) == len(np.unique(expected))


COMMON = ["--device", "cpu", "--precision", "fp32", "-q"]


def test_segment_instances_writes_labels_and_resumes(images, tmp_path, microsam_checkpoint):
    out = tmp_path / "out"
    code, stdout, stderr = _run(
        "segment-instances", images, "-o", out, "--model", microsam_checkpoint, *COMMON
    )
    assert code == EXIT_OK, stderr
    coins = tifffile.imread(out / "coins_labels.tif")
    expected = _expected(microsam_checkpoint, COINS)
    assert expected.max() > 3, "the decoder itself found too few objects to compare"
    _same_objects(coins, expected)
    stack = tifffile.imread(out / "stack_labels.tif")
    assert stack.shape == (2, *CELL.shape)
    first, second = (_expected(microsam_checkpoint, p) for p in (CELL, CELL[::-1]))
    _same_objects(stack[0], first)
    _same_objects(stack[1], second)
    # every id in the stack is one object: the second plane's follow the first's
    assert stack[1][stack[1] > 0].min(initial=first.max() + 1) > stack[0].max()
    assert not list(out.glob(".*.part"))

    code, stdout, _ = _run(
        "segment-instances", images, "-o", out, "--model", microsam_checkpoint, *COMMON
    )
    assert code == EXIT_OK and "skipped" in stdout.lower()


def test_apg_takes_its_settings_and_refuses_those_of_ais(images, tmp_path, microsam_checkpoint):
    out = tmp_path / "out"
    argv = ["segment-instances", images / "coins.png", "-o", out, "-m", microsam_checkpoint]
    code, _, stderr = _run(*argv, "--mode", "apg", "--min-size", "5", "--batch-size", "64", *COMMON)
    assert code == EXIT_OK, stderr
    labels = tifffile.imread(out / "coins_labels.tif")
    _same_objects(labels, _expected(microsam_checkpoint, COINS, mode="apg", min_size=5))

    code, _, stderr = _run(*argv, "--nms-threshold", "0.5", *COMMON)  # --mode ais, the default
    assert code == EXIT_USAGE and "--nms-threshold" in stderr and "--mode apg" in stderr
    code, _, stderr = _run(*argv, "--foreground-threshold", "-0.5", *COMMON)
    assert code == EXIT_FAILED and "foreground_threshold" in stderr


def test_segment_everything_segments_instances_when_the_model_has_a_decoder(
    images, tmp_path, microsam_checkpoint
):
    argv = ["segment-everything", images / "coins.png", "-m", microsam_checkpoint, *COMMON]
    code, _, stderr = _run(*argv, "-o", tmp_path / "ais")
    assert code == EXIT_OK, stderr
    _same_objects(
        tifffile.imread(tmp_path / "ais" / "coins_labels.tif"),
        _expected(microsam_checkpoint, COINS),
    )
    # segment everything's settings say the mode must be amg
    code, _, stderr = _run(*argv, "-o", tmp_path / "x", "--points-per-side", "2")
    assert code == EXIT_USAGE and "--mode amg" in stderr
    assert not (tmp_path / "x").exists()
    fast = ["--points-per-side", "2", "--pred-iou-thresh", "0", "--stability-score-thresh", "0"]
    code, _, stderr = _run(*argv, "-o", tmp_path / "amg", "--mode", "amg", *fast)
    assert code == EXIT_OK, stderr
    assert (tmp_path / "amg" / "coins_labels.tif").is_file()


def test_a_model_without_a_decoder_is_refused_before_any_work(images, tmp_path, small_checkpoint):
    out = tmp_path / "out"
    code, _, stderr = _run("segment-instances", images, "-o", out, "-m", small_checkpoint, *COMMON)
    assert code == EXIT_FAILED and "has no instance decoder" in stderr
    assert not list(out.glob("*_labels.tif"))
    # segment-everything falls back to SAM's mode for it
    code, _, stderr = _run(
        "segment-everything", images / "coins.png", "-o", out, "-m", small_checkpoint,
        "--points-per-side", "2", *COMMON,
    )  # fmt: skip
    assert code == EXIT_OK, stderr


def test_a_large_plane_is_segmented_tile_by_tile_from_the_stored_tiles(
    tmp_path, monkeypatch, microsam_checkpoint
):
    # 600 x 500 is 4 x 3 tiles for the 256-pixel model ("auto", as the widget).
    large = np.tile(COINS, (7, 4))[:600, :500]
    Image.fromarray(large).save(tmp_path / "large.png")
    monkeypatch.setenv("NAPARI_SEGANY_EMBEDDING_DIR", str(tmp_path / "store"))
    code, _, stderr = _run("embed", tmp_path / "large.png", "--model", microsam_checkpoint, *COMMON)
    assert code == EXIT_OK, stderr
    from napari_segany.embeddings import EmbeddingStore

    assert len(EmbeddingStore(tmp_path / "store").keys()) == 12
    # The stored tiles are read, not encoded again.
    from napari_segany.tiling import TiledPredictor

    out = tmp_path / "out"
    with monkeypatch.context() as patched:
        patched.setattr(
            TiledPredictor, "_encode", lambda *a: pytest.fail("a stored tile was encoded again")
        )
        code, _, stderr = _run(
            "segment-instances", tmp_path / "large.png", "-o", out, "--model",
            microsam_checkpoint, *COMMON,
        )  # fmt: skip
    assert code == EXIT_OK, stderr
    expected = _expected(microsam_checkpoint, large, tile_shape="auto")
    assert expected.max() > 10
    np.testing.assert_array_equal(tifffile.imread(out / "large_labels.tif"), expected)
    # APG encodes planes whole: asking it for tiles is refused with what to do.
    code, _, stderr = _run(
        "segment-instances", tmp_path / "large.png", "-o", tmp_path / "apg", "--mode", "apg",
        "--model", microsam_checkpoint, "--tile-shape", "200", "--halo", "20", *COMMON,
    )  # fmt: skip
    assert code == EXIT_FAILED and "mode 'ais'" in stderr
    assert not (tmp_path / "apg").exists() or not list((tmp_path / "apg").iterdir())
