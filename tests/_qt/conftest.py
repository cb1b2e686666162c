"""Fixtures for driving the widget in a real napari viewer (under Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest
from widget_helpers import gate_session_models

from napari_segany import Predictor, load_model


@pytest.fixture
def model_env(monkeypatch, tmp_path, tiny_checkpoint):
    """The widget's default model is the tiny random checkpoint; nothing is downloaded."""
    monkeypatch.setenv("NAPARI_SEGANY_MODEL", str(tiny_checkpoint))
    monkeypatch.setenv("NAPARI_SEGANY_CACHE_DIR", str(tmp_path / "cache"))
    return tiny_checkpoint


@pytest.fixture
def small_model_env(monkeypatch, model_env, small_checkpoint):
    """The widget's model is the 256-pixel-input one, for tests that decode many times."""
    monkeypatch.setenv("NAPARI_SEGANY_MODEL", str(small_checkpoint))
    return small_checkpoint


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

    def _open(image: np.ndarray | None = None, precision: str = "fp32", **image_kwargs):
        viewer = make_napari_viewer()
        if image is not None:
            viewer.add_image(image, name="img", **image_kwargs)
        _, widget = viewer.window.add_plugin_dock_widget("napari-segany", "Segment Anything")
        # Tests compare exact masks with a plain predictor in fp32: "auto" would be bf16 on
        # CPUs with AVX-512 BF16.
        widget.precision_combo.setCurrentText(precision)
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
        predictor = Predictor(model, precision="fp32")
        predictor.set_image(image, contrast_limits=contrast_limits)
        return predictor.predict(**prompts)

    return _predict


class EncoderGate:
    """Holds the encoder of the widget's model at the start of its second block until
    ``release()``: a test can act while an encoding is under way, at a known point."""

    def __init__(self) -> None:
        import threading

        self.reached = threading.Event()
        self._open = threading.Event()
        self.blocks_run = 0

    def release(self) -> None:
        self._open.set()

    def wait_reached(self, qtbot, timeout_ms: int = 30000) -> None:
        """Wait, with the event loop running, until the encoder is held at the gate."""
        qtbot.waitUntil(self.reached.is_set, timeout=timeout_ms)

    def install(self, model) -> None:
        blocks = model.image_encoder.blocks
        if getattr(model, "_gated", False):
            return
        model._gated = True

        def count(*_):
            self.blocks_run += 1

        def hold(*_):
            self.reached.set()
            self._open.wait(60.0)

        for block in blocks:
            block.register_forward_hook(count)
        blocks[1].register_forward_pre_hook(hold)


@pytest.fixture
def encoder_gate(monkeypatch):
    """An EncoderGate on every model the widget's session loads."""
    gate = EncoderGate()
    gate_session_models(monkeypatch, gate)
    yield gate
    gate.release()
