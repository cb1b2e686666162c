"""``embed`` and ``segment-everything`` on tiles: one stored embedding per tile, keyed so that
the tiled predictor finds them instead of encoding, and tiled segment-everything in the batch.

The model's input is 256 pixels, so a 600 x 700 plane is large for it.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import tifffile
from PIL import Image
from tiling_models import bright_region_checkpoint

from napari_segany import Predictor, load_model
from napari_segany.automatic import masks_to_labels
from napari_segany.cli import main
from napari_segany.embeddings import EmbeddingStore, model_fingerprint
from napari_segany.tiling import TiledPredictor, generate_tiled_masks
from napari_segany.tiling.stored import tile_key, use_store
from reference_models import TinySpec

SMALL = TinySpec(img_size=256)
SHAPE = (600, 700)
TILE, HALO = 200, 32  # a 3 x 4 grid


@pytest.fixture(scope="module")
def bright_checkpoint(tmp_path_factory):
    return bright_region_checkpoint(tmp_path_factory.mktemp("bright-cli"), SMALL)


@pytest.fixture
def plane_file(tmp_path):
    image = np.full(SHAPE, 30, np.uint8)
    image[150:330, 120:260] = 220  # across the tiles' borders (rows 200, cols 200)
    image[420:520, 480:640] = 200
    image[40:100, 620:680] = 240  # inside tile 3, alone in it
    path = tmp_path / "scan.png"
    Image.fromarray(image).save(path)
    return path, image


@pytest.fixture(autouse=True)
def _private_store(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_SEGANY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NAPARI_SEGANY_EMBEDDING_DIR", str(tmp_path / "store"))


def _run(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _tiled(checkpoint, image) -> TiledPredictor:
    tiled = TiledPredictor(Predictor(load_model(checkpoint, device="cpu"), precision="fp32"))
    tiled.set_image(image, (0, 255), tile_shape=TILE, halo=HALO)
    return tiled


def test_embed_stores_every_tile_and_the_predictor_reads_them(
    tmp_path, bright_checkpoint, plane_file
):
    path, image = plane_file
    common = ("--model", bright_checkpoint, "--device", "cpu", "--precision", "fp32")
    code, stdout, stderr = _run("embed", path, *common, "--tile-shape", TILE, "--halo", HALO)
    assert code == 0 and "1 done" in stdout, stderr
    store = EmbeddingStore(tmp_path / "store")
    tiled = _tiled(bright_checkpoint, image)
    identity = model_fingerprint(bright_checkpoint)
    keys = {tile_key(tiled.grid, tiled.tile_rgb(i), identity, "fp32") for i in range(12)}
    assert store.keys() == keys  # one file per tile of the 3 x 4 grid, nothing else
    # A stored tile is what encoding that tile gives.
    np.testing.assert_array_equal(
        store.load(tile_key(tiled.grid, tiled.tile_rgb(5), identity, "fp32")).features,
        tiled.encode_tile(5).features,
    )
    # The predictor reads tiles from the store: a click encodes nothing.
    reader = _tiled(bright_checkpoint, image)
    use_store(reader, store, identity, "fp32", write=False)
    result = reader.predict(np.array([[70.0, 650.0]]), np.array([1]))
    assert reader.predictor.encode_seconds is None  # its encoder never ran
    assert result.tile == 3 and reader.status() == "tiled 3 x 4, 1 tile encoded"
    r0, c0, r1, c1 = result.box
    mask, drawn = result.masks[result.best], image[r0:r1, c0:c1] > 128
    assert (mask & drawn).sum() / (mask | drawn).sum() > 0.75  # 16-pixel patches blur edges
    # Embedding again skips every tile; another tiling is another set of keys.
    code, stdout, _ = _run("embed", path, *common, "--tile-shape", TILE, "--halo", HALO)
    assert code == 0 and "1 skipped" in stdout
    code, stdout, _ = _run("embed", path, *common, "--tile-shape", "200,240", "--halo", "32,40")
    assert code == 0 and "1 done" in stdout and len(store.keys()) == 12 + 3 * 3


def test_segment_everything_on_tiles_writes_the_tiled_labels(
    tmp_path, bright_checkpoint, plane_file
):
    path, image = plane_file
    settings = ("--points-per-side", "4", "--pred-iou-thresh", "0.5")
    code, stdout, stderr = _run(
        "segment-everything", path, "-o", tmp_path / "out", "--model", bright_checkpoint,
        "--device", "cpu", "--precision", "fp32", "--tile-shape", TILE, "--halo", HALO,
        "--contrast-limits", "0", "255", *settings,
    )  # fmt: skip
    assert code == 0 and "1 done" in stdout, stderr
    labels = tifffile.imread(tmp_path / "out" / "scan_labels.tif")
    tiled = _tiled(bright_checkpoint, image)
    records = generate_tiled_masks(tiled, points_per_side=4, pred_iou_thresh=0.5)
    np.testing.assert_array_equal(labels, masks_to_labels(records, SHAPE))
    # The object across four tiles is one label, not four pieces.
    assert len(np.unique(labels[160:320, 130:250])) == 1 and labels[240, 190] > 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--tile-shape", "0"), "--tile-shape takes N or ROWS,COLS"),
        (("--tile-shape", "1,2,3"), "--tile-shape takes N or ROWS,COLS"),
        (("--tile-shape", "200"), "needs a halo"),
        (("--halo", "32"), "chooses the halo too"),
        (("--tile-shape", "200", "--halo", "200"), "smaller than tile_shape"),
    ],
)
def test_bad_tiling_options_say_what_to_do(tmp_path, bright_checkpoint, plane_file, flags, message):
    path, _ = plane_file
    code, _, stderr = _run("embed", path, "--model", bright_checkpoint, "--device", "cpu", *flags)
    assert code != 0 and message in stderr
    assert not (tmp_path / "store").exists() or not EmbeddingStore(tmp_path / "store").keys()
