"""Data safety in the widget: label ids that never wrap, the widget's own layers never taken
for the user's, no stale embeddings, no growth over an afternoon of clicks."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from widget_helpers import click, textured_image, wait_for_preview, wait_idle

pytestmark = pytest.mark.gui


def _choose_target(viewer, widget, name: str) -> None:
    viewer.layers.selection.active = viewer.layers["img"]
    widget.labels_combo.setCurrentIndex(widget.labels_combo.findText(name))
    widget.labels_combo.activated.emit(widget.labels_combo.currentIndex())


@pytest.mark.parametrize("mode", ["New objects in unlabeled pixels", "Overwrite existing labels"])
def test_a_0_255_uint8_mask_as_target_gets_ids_that_fit(open_widget, qtbot, mode):
    image = textured_image(seed=1)
    viewer, widget = open_widget(image)
    mask = np.zeros(image.shape, np.uint8)
    mask[:, :75] = 255  # a thresholded mask, loaded as labels
    viewer.add_labels(mask.copy(), name="threshold")
    _choose_target(viewer, widget, "threshold")
    widget.commit_mode_combo.setCurrentIndex(widget.commit_mode_combo.findText(mode))
    click(viewer, 60, 70)
    preview = wait_for_preview(qtbot, widget).copy() > 0
    widget.commit()
    data = viewer.layers["threshold"].data
    assert data.dtype == np.uint8
    assert (data[preview & (mask == 0)] == 1).all()  # id 1, not 256 wrapped to 0
    if mode.startswith("New"):
        assert (data[mask == 255] == 255).all()  # not a pixel of the user's mask erased
    else:
        assert (data[preview] == 1).all()
        assert (data[(mask == 255) & ~preview] == 255).all()
    assert "id 1" in widget.status_label.text()


def test_the_plugin_sees_a_proxy_and_never_offers_its_preview(open_widget, qtbot):
    from napari.utils._proxies import PublicOnlyProxy

    viewer, widget = open_widget(textured_image())
    assert isinstance(widget.viewer, PublicOnlyProxy)  # what napari hands a plugin
    click(viewer, 60, 70)
    wait_for_preview(qtbot, widget)
    offered = [widget.labels_combo.itemText(i) for i in range(widget.labels_combo.count())]
    assert "img preview" not in offered
    widget.commit()
    assert viewer.layers["img labels"].data.any()
    assert not viewer.layers["img preview"].data.any()


def test_new_pixels_during_an_encoding_are_encoded_again(
    open_widget, qtbot, encoder_gate, reference_predictor
):
    first, second = textured_image(seed=2), textured_image(seed=3)
    viewer, widget = open_widget(first)
    click(viewer, 60, 70)
    encoder_gate.wait_reached(qtbot)
    viewer.layers["img"].data = second  # the user replaces the pixels meanwhile
    encoder_gate.release()
    wait_idle(qtbot, widget, timeout=60000)
    qtbot.waitUntil(lambda: widget.preview_objects() is not None, timeout=30000)
    wait_idle(qtbot, widget)
    (embedding,) = widget.session.cache._items.values()
    from napari_segany import Predictor, load_model

    fresh = Predictor(load_model(widget.session.model_name, device="cpu"), precision="fp32")
    fresh.set_image(second)
    np.testing.assert_allclose(embedding.features, fresh.get_image_embedding(), atol=1e-5)
    masks, scores, _ = reference_predictor(
        second, (0.0, 255.0), points=np.array([[60.0, 70.0]]), labels=np.array([1])
    )
    np.testing.assert_array_equal(widget.preview_objects() > 0, masks[np.argmax(scores)])


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_a_thousand_clicks_keep_memory_flat(open_widget, qtbot, small_model_env):
    from napari_segany.annotation.prediction import Prediction

    image = textured_image((512, 512), seed=5)
    viewer, widget = open_widget(image)
    click(viewer, 100, 100)
    wait_for_preview(qtbot, widget)
    points = widget.prompt_layers.points
    rng = np.random.default_rng(0)

    def clicks(n: int) -> None:
        for _ in range(n):
            points.data = rng.uniform(10, 500, (1, 2))  # the point moves: a new click
            widget._decode_timer.stop()
            widget.controller.request_decode()
            qtbot.waitUntil(lambda: not widget.jobs.busy, timeout=10000)

    clicks(100)  # warm up the allocators and caches
    gc.collect()
    before = _rss_mib()
    clicks(1000)
    gc.collect()
    grown = _rss_mib() - before
    alive = sum(isinstance(o, Prediction) for o in gc.get_objects())
    assert alive <= 2, f"{alive} predictions are still alive"
    assert grown < 60, f"memory grew by {grown:.0f} MiB over 1000 clicks"
