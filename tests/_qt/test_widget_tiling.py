"""Large images in the widget: tiled automatically, tiles encoded where the user clicks, the
preview and commits written only over the object's window.

The model has a 256-pixel input and segments bright regions whatever the prompt
(``tests/tiling/tiling_models.py``), so a 3000 x 2500 image is large for it (16 x 14 tiles)
and the object each click should give is the one drawn.
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from napari.layers import Shapes
from widget_helpers import click, press, textured_image

from napari_segany import Predictor, load_model
from napari_segany._qt.keys import KEYS
from reference_models import TinySpec
from tiling.tiling_models import bright_region_checkpoint

pytestmark = pytest.mark.gui

SHAPE = (3000, 2500)
NEAR = (slice(60, 120), slice(60, 130))  # in tile 0
FAR = (slice(2660, 2720), slice(2200, 2290))  # in tile (14, 12), far from the first
MiB = 2**20


@pytest.fixture(scope="module")
def bright_checkpoint(tmp_path_factory):
    return bright_region_checkpoint(
        tmp_path_factory.mktemp("bright-widget"), TinySpec(img_size=256)
    )


@pytest.fixture
def bright_env(monkeypatch, model_env, bright_checkpoint):
    monkeypatch.setenv("NAPARI_SEGANY_MODEL", str(bright_checkpoint))
    return bright_checkpoint


def picture(shape=SHAPE) -> np.ndarray:
    image = np.full(shape, 30, np.uint8)
    image[NEAR] = 230
    image[FAR] = 210
    return image


def wait_for_prediction(qtbot, widget, timeout: int = 60000) -> None:
    # Not widget.preview_objects(): it builds a whole-image array, which this test avoids.
    qtbot.waitUntil(
        lambda: (
            widget.state.prediction is not None
            and not widget.jobs.busy
            and not widget._decode_timer.isActive()
        ),
        timeout=timeout,
    )


def expected_mask(checkpoint, image, row, col) -> np.ndarray:
    """The best mask a plain tiled Predictor gives for the click: what the widget commits."""
    predictor = Predictor(load_model(checkpoint, device="cpu"), precision="fp32")
    predictor.set_image(image, contrast_limits=(0, 255), tile_shape="auto")
    masks, scores, _ = predictor.predict(np.array([[row, col]], float), np.array([1]))
    return masks[int(np.argmax(scores))]


def test_a_large_image_is_tiled_and_clicks_anywhere_give_their_objects(
    open_widget, qtbot, bright_env
):
    image = picture()
    viewer, widget = open_widget(image)
    viewer.layers.selection.active = viewer.layers["img"]
    click(viewer, 90, 95)
    wait_for_prediction(qtbot, widget)
    assert "tiled 16 x 14, 1 tile encoded" in widget.status_label.text()
    preview = viewer.layers["img preview"]
    # Only the object's window is in the preview layer, placed where the object is.
    assert preview.data.size < 100 * 100
    np.testing.assert_allclose(preview.translate, widget.state.prediction.window[:2])
    press(viewer, KEYS["commit"][0])
    labels = viewer.layers["img labels"]
    near = expected_mask(bright_env, image, 90, 95)
    assert near[NEAR].mean() > 0.8 and not near[FAR].any()
    np.testing.assert_array_equal(labels.data, near.astype(labels.data.dtype))

    # A click far from the first encodes its own tile, with the viewer free meanwhile.
    click(viewer, 2690, 2245)
    wait_for_prediction(qtbot, widget)
    assert "tiled 16 x 14, 2 tiles encoded" in widget.status_label.text()
    press(viewer, KEYS["commit"][0])
    far = expected_mask(bright_env, image, 2690, 2245)
    assert far[FAR].mean() > 0.8 and not far[NEAR].any()
    expected = near.astype(np.int32) + 2 * far
    np.testing.assert_array_equal(labels.data, expected.astype(labels.data.dtype))


def test_the_tile_grid_overlay_is_made_on_demand_and_not_editable(open_widget, qtbot, bright_env):
    viewer, widget = open_widget(picture())
    viewer.layers.selection.active = viewer.layers["img"]
    click(viewer, 90, 95)
    wait_for_prediction(qtbot, widget)
    assert not any(isinstance(layer, Shapes) and "tiles" in layer.name for layer in viewer.layers)
    widget.tile_grid_check.setChecked(True)
    grid = viewer.layers["img tiles"]
    assert len(grid.data) == 16 * 14 and not grid.editable
    assert viewer.layers.selection.active.name == "img points"  # clicks still add points
    # The encoded tile stands out from the others.
    assert len({tuple(c) for c in grid.edge_color}) == 2
    assert _thick(grid) == 1
    # A click on another object, in another tile, encodes it, and the grid shows it encoded.
    press(viewer, KEYS["commit"][0])
    click(viewer, 2690, 2245)
    qtbot.waitUntil(lambda: "2 tiles encoded" in widget.status_label.text(), timeout=60_000)
    assert len(grid.data) == 16 * 14 and _thick(grid) == 2
    widget.tile_grid_check.setChecked(False)
    assert "img tiles" not in viewer.layers


def _thick(grid: Shapes) -> int:
    """How many tiles the overlay draws as encoded (thicker than the rest)."""
    widths = np.asarray(grid.edge_width)
    return int((widths == widths.max()).sum()) if widths.min() < widths.max() else 0


@pytest.mark.parametrize("kind", ["stack", "rgb"])
def test_stacks_and_rgb_images_are_tiled_per_displayed_plane(open_widget, qtbot, bright_env, kind):
    plane = picture((900, 800))
    if kind == "stack":
        data = np.stack([np.full_like(plane, 30), plane])  # the object is on plane 1 only
        viewer, widget = open_widget(data)
        viewer.dims.set_current_step(0, 1)
    else:
        data = np.repeat(plane[..., None], 3, axis=2)
        viewer, widget = open_widget(data, rgb=True)
    viewer.layers.selection.active = viewer.layers["img"]
    click(viewer, 90, 95)
    wait_for_prediction(qtbot, widget)
    assert "tiled 5 x 5, 1 tile encoded" in widget.status_label.text()
    r0, c0, r1, c1 = widget.state.prediction.window
    shown = np.zeros(plane.shape, bool)
    shown[r0:r1, c0:c1] = widget.state.prediction.objects(0) > 0
    assert shown[NEAR].mean() > 0.8 and shown.sum() < 2 * plane[NEAR].size


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def test_a_click_on_a_20000_pixel_image_costs_a_tile_not_the_image(open_widget, qtbot, bright_env):
    side = 20000
    image = np.full((side, side), 30, np.uint8)
    image[10040:10100, 9950:10030] = 220
    viewer, widget = open_widget(image)
    viewer.layers.selection.active = viewer.layers["img"]
    qtbot.wait(200)  # let napari finish showing the image
    gc.collect()
    before = _rss()
    tracemalloc.start()
    try:
        click(viewer, 10070, 9990)
        wait_for_prediction(qtbot, widget, timeout=120000)
        _, numpy_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    grown = _rss() - before
    assert "tiled 105 x 105" in widget.status_label.text()
    # One float32 copy of the image is 1.5 GiB and a full-size mask 381 MiB; the click stays
    # far below both (numpy's allocations traced, and the whole process).
    assert numpy_peak < 96 * MiB, f"numpy peak {numpy_peak / MiB:.0f} MiB"
    assert grown < 300 * MiB, f"resident memory grew by {grown / MiB:.0f} MiB"
    r0, c0, r1, c1 = widget.state.prediction.window
    assert r0 <= 10070 < r1 and c0 <= 9990 < c1  # the object's window, at its place
    assert (r1 - r0) * (c1 - c0) < 256 * 256
    assert viewer.layers["img preview"].data.size < 256 * 256


def test_encode_slice_encodes_every_tile_into_the_store(open_widget, qtbot, bright_env, tmp_path):
    from napari_segany.embeddings import EmbeddingStore

    viewer, widget = open_widget(textured_image((900, 800)))  # no two tiles alike
    widget.encode_button.click()
    qtbot.waitUntil(lambda: "25 tiles encoded" in widget.status_label.text(), timeout=60000)
    qtbot.waitUntil(lambda: not widget.jobs.busy, timeout=10000)
    store = EmbeddingStore(tmp_path / "cache" / "embeddings")
    assert len(store.keys()) == 25  # kept for later sessions, not in memory
    viewer.layers.selection.active = viewer.layers["img"]
    click(viewer, 90, 95)
    wait_for_prediction(qtbot, widget)
    assert "tiled 5 x 5, 25 tiles encoded" in widget.status_label.text()


# Two bright discs on a 700 x 600 image (4 x 4 tiles of 175 x 150 for the 256-pixel model):
# one on the corner of four tiles, one across a row border; no tile's outer block sees both.
EVERYTHING_DISCS = (((350, 300), 40), ((175, 525), 30))


def _discs_image() -> tuple[np.ndarray, list[np.ndarray]]:
    rows, cols = np.mgrid[:700, :600]
    image = np.full((700, 600), 30, np.uint8)
    discs = []
    for (r, c), radius in EVERYTHING_DISCS:
        disc = (rows - r) ** 2 + (cols - c) ** 2 < radius**2
        image[disc] = 220
        discs.append(disc)
    return image, discs


def test_segment_everything_on_a_large_image_runs_tile_by_tile(open_widget, qtbot, bright_env):
    from napari_segany.automatic import masks_to_labels
    from napari_segany.tiling import TiledPredictor, generate_tiled_masks

    image, discs = _discs_image()
    viewer, widget = open_widget(image)
    params = {"points_per_side": 3, "crop_n_layers": 0}
    for name, value in params.items():
        widget.everything.fields[name].value = value
    widget.everything.mode_combo.setCurrentIndex(widget.everything.mode_combo.findData("amg"))
    widget.segment_everything()
    qtbot.waitUntil(lambda: "img everything" in viewer.layers, timeout=120000)
    qtbot.waitUntil(lambda: not widget.jobs.busy, timeout=10000)
    result = viewer.layers["img everything"].data

    tiled = TiledPredictor(Predictor(load_model(bright_env, device="cpu"), precision="fp32"))
    tiled.set_image(image, contrast_limits=(0, 255), tile_shape="auto")
    np.testing.assert_array_equal(
        result, masks_to_labels(generate_tiled_masks(tiled, **params), image.shape)
    )
    for disc in discs:  # each disc one object, whole, though tiles cut it
        ids = np.unique(result[disc])
        ids = ids[ids > 0]  # (the model sees 16-pixel patches: a disc's rim may be missed)
        assert len(ids) == 1
        assert ((result == ids[0]) & disc).sum() / ((result == ids[0]) | disc).sum() > 0.8
    # The tiles it encoded serve the clicks that follow.
    viewer.layers.selection.active = viewer.layers["img"]
    click(viewer, 350, 300)
    wait_for_prediction(qtbot, widget)
    assert "tiled 4 x 4, 16 tiles encoded" in widget.status_label.text()


def test_cancel_while_a_tile_encodes_changes_no_layer(open_widget, qtbot, bright_env, encoder_gate):
    image, _ = _discs_image()
    viewer, widget = open_widget(image)
    widget.everything.fields["points_per_side"].value = 3
    widget.everything.mode_combo.setCurrentIndex(widget.everything.mode_combo.findData("amg"))
    before = [layer.name for layer in viewer.layers]
    widget.segment_everything()
    encoder_gate.wait_reached(qtbot)  # inside the first tile's encoder
    qtbot.waitUntil(lambda: not widget.cancel_button.isHidden(), timeout=5000)
    widget.cancel_button.click()
    encoder_gate.release()
    qtbot.waitUntil(lambda: not widget.jobs.busy, timeout=30000)
    assert [layer.name for layer in viewer.layers] == before
    assert "cancelled" in widget.status_label.text()
    # The slice is still usable: a click encodes its tile and gives the disc.
    viewer.layers.selection.active = viewer.layers["img"]
    click(viewer, 350, 300)
    wait_for_prediction(qtbot, widget)
    assert widget.state.prediction is not None


def _counted_level(side: int, chunk: int, bright: tuple[slice, slice], reads: list[int]):
    """A lazy side x side uint8 level whose chunks count the pixels they produce."""
    import dask.array as da

    def block(block_info=None):
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        reads.append((r1 - r0) * (c1 - c0))
        out = np.full((r1 - r0, c1 - c0), 30, np.uint8)
        rows = slice(max(bright[0].start, r0) - r0, max(min(bright[0].stop, r1) - r0, 0))
        cols = slice(max(bright[1].start, c0) - c0, max(min(bright[1].stop, c1) - c0, 0))
        out[rows, cols] = 220
        return out

    chunks = ((chunk,) * (side // chunk), (chunk,) * (side // chunk))
    return da.map_blocks(block, chunks=chunks, dtype=np.uint8, meta=np.empty((0, 0), np.uint8))


def test_a_click_on_a_lazy_pyramid_reads_only_the_tiles_it_needs(open_widget, qtbot, bright_env):
    side, object_ = 20000, (slice(10040, 10100), slice(9950, 10030))
    full_res, coarse = [], []
    pyramid = [
        _counted_level(side, 1000, object_, full_res),
        _counted_level(side // 8, 625, (slice(1255, 1262), slice(1243, 1254)), coarse),
    ]
    viewer, widget = open_widget(pyramid, multiscale=True, contrast_limits=(0, 255))
    viewer.layers.selection.active = viewer.layers["img"]
    qtbot.wait(200)
    full_res.clear()  # what napari read to show the image
    click(viewer, 10070, 9990)
    wait_for_prediction(qtbot, widget, timeout=120000)
    assert "tiled 105 x 105, 1 tile encoded" in widget.status_label.text()
    # Of the plane's 400 chunks of 1000 x 1000: the 4 the tile lies in, and the first, where
    # the pixel type is checked.
    assert sum(full_res) <= 5 * 1000 * 1000, f"read {sum(full_res) / 1e6:.0f} Mpixels"
    r0, c0, r1, c1 = widget.state.prediction.window
    assert r0 <= 10070 < r1 and c0 <= 9990 < c1
    found = int((widget.state.prediction.objects(0) > 0).sum())
    assert 0.8 * 60 * 80 < found < 2 * 60 * 80  # the bright object, read from the right chunks


def drifting_stack(n_planes: int = 6, shape=(700, 600)) -> np.ndarray:
    """(Z, H, W) uint8: a bright square that moves 15 pixels right a plane, across the boundary
    between two tiles at column 300 (auto tiling for a 256-pixel model)."""
    stack = np.full((n_planes, *shape), 30, np.uint8)
    for z in range(n_planes):
        stack[z, 222:302, 225 + 15 * z : 305 + 15 * z] = 220
    return stack


def test_propagation_through_a_stack_of_large_planes_runs_in_their_tiles(
    open_widget, qtbot, bright_env
):
    """Large planes propagate tile by tile, as micro-sam's tiled propagation: the widget shows
    what segment_volume gives with the slice's tiling, and the object is followed across tiles."""
    from napari_segany import segment_volume
    from napari_segany.tiling import TileGrid

    stack = drifting_stack()
    viewer, widget = open_widget(stack)
    viewer.dims.set_current_step(0, 2)
    click(viewer, 262, 295)
    wait_for_prediction(qtbot, widget)
    assert "tiled" in widget.status_label.text()
    seed = widget.preview_objects() > 0
    press(viewer, KEYS["propagate"][0])
    qtbot.waitUntil(lambda: not widget.propagation.running and not widget.jobs.busy, timeout=120000)
    shown = next(layer for layer in viewer.layers if layer.name == "img propagation").data > 0
    predictor = Predictor(load_model(bright_env, device="cpu"), precision="fp32")
    expected, _ = segment_volume(
        predictor, stack, {2: seed}, box_extension=0.05, contrast_limits=(0.0, 255.0),
        tile_shape="auto",
    )  # fmt: skip
    np.testing.assert_array_equal(shown, expected)
    grid = TileGrid.for_image(stack.shape[1:], "auto", None, 256)
    reached = [z for z in range(stack.shape[0]) if shown[z].any()]
    assert len(reached) >= 4, reached
    tiles = set()
    for z in reached:
        truth = stack[z] == 220
        assert (shown[z] & truth).sum() / (shown[z] | truth).sum() > 0.6, z
        rows, cols = np.nonzero(shown[z])
        tiles.add(grid.tile_at(rows.mean(), cols.mean()))
    assert len(tiles) > 1  # the object moved from tile to tile
