"""Fixtures for driving the widget in a real napari viewer (under Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_segany import Predictor, load_model


@pytest.fixture
def model_env(monkeypatch, tmp_path, tiny_checkpoint):
    """The widget's default model is the tiny random checkpoint; nothing is downloaded."""
    monkeypatch.setenv("NAPARI_SEGANY_MODEL", str(tiny_checkpoint))
    monkeypatch.setenv("NAPARI_SEGANY_CACHE_DIR", str(tmp_path / "cache"))
    return tiny_checkpoint


@pytest.fixture
def notifications():
    """Messages napari shows to the user during the test."""
    from napari.utils.notifications import notification_manager

    seen: list = []
    notification_manager.notification_ready.connect(seen.append)
    yield seen
    notification_manager.notification_ready.disconnect(seen.append)


@pytest.fixture
def open_widget(make_napari_viewer, model_env, qtbot):
    """Open napari with ``image`` and the widget docked through the plugin manifest."""
    opened = []

    def _open(image: np.ndarray | None = None, **image_kwargs):
        viewer = make_napari_viewer()
        if image is not None:
            viewer.add_image(image, name="img", **image_kwargs)
        _, widget = viewer.window.add_plugin_dock_widget("napari-segany", "Segment Anything")
        opened.append(widget)
        return viewer, widget

    yield _open
    for widget in opened:
        widget.jobs.wait()


@pytest.fixture
def reference_predictor(tiny_checkpoint):
    """A plain Predictor on the same checkpoint: what the widget must show."""
    model = load_model(tiny_checkpoint, device="cpu")

    def _predict(image, contrast_limits, **prompts):
        predictor = Predictor(model)
        predictor.set_image(image, contrast_limits=contrast_limits)
        return predictor.predict(**prompts)

    return _predict
