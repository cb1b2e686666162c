"""Bad situations give a clear notification; the viewer keeps working and stays responsive."""

from __future__ import annotations

import time

import numpy as np
import pytest
from widget_helpers import click, textured_image, wait_for_preview, wait_idle

pytestmark = pytest.mark.gui


def _messages(notifications) -> str:
    return "\n".join(str(n.message) for n in notifications)


def test_no_image_layer(open_widget, qtbot, notifications):
    viewer, widget = open_widget(None)
    widget.encode_button.click()
    widget.commit_button.click()
    assert "No image layer" in _messages(notifications)
    assert widget.prompt_layers is None
    # Opening an image afterwards attaches to it, and a click on it is a prompt.
    viewer.add_image(textured_image(), name="late")
    assert widget.image_layer is not None and widget.image_layer.name == "late"
    click(viewer, 60, 70)
    assert "late points" in [layer.name for layer in viewer.layers]
    wait_for_preview(qtbot, widget)


def test_commit_without_a_preview_says_what_to_do(open_widget, notifications):
    viewer, widget = open_widget(textured_image())
    widget.commit()
    assert "Nothing to commit" in _messages(notifications)
    assert "img labels" not in [layer.name for layer in viewer.layers]


def test_3d_view_is_refused_with_advice(open_widget, qtbot, notifications):
    viewer, widget = open_widget(np.stack([textured_image(seed=s) for s in range(3)]))
    viewer.dims.ndisplay = 3
    widget.encode_button.click()
    assert "switch the viewer to 2D" in _messages(notifications)
    assert len(widget.session.cache) == 0


def test_points_outside_the_image_are_ignored(open_widget, qtbot, notifications):
    viewer, widget = open_widget(textured_image())
    click(viewer, 60, 70)
    widget.prompt_layers.points.add(np.array([[500.0, 500.0]]))
    wait_for_preview(qtbot, widget)
    assert "outside the image are ignored" in _messages(notifications)
    assert "1 of 3" in widget.candidate_label.text()  # decoded as a single click


def test_broken_checkpoint_is_reported_and_a_good_one_can_be_imported(
    open_widget, qtbot, notifications, tmp_path, monkeypatch, tiny_checkpoint
):
    broken = tmp_path / "broken.pth"
    broken.write_bytes(tiny_checkpoint.read_bytes()[:5000])
    monkeypatch.setenv("NAPARI_SEGANY_MODEL", str(broken))
    viewer, widget = open_widget(textured_image())
    click(viewer, 60, 70)
    qtbot.waitUntil(lambda: "could not be loaded" in _messages(notifications), timeout=30000)
    text = _messages(notifications)
    assert "broken.pth" in text and "truncated" in text
    assert "failed" in widget.status_label.text()
    assert widget.preview_objects() is None

    name = widget.import_checkpoint(str(tiny_checkpoint))
    assert name is not None and widget.model_name == name
    preview = wait_for_preview(qtbot, widget)
    assert preview.any()


def test_download_failure_says_where_to_put_the_file(
    open_widget, qtbot, notifications, tmp_path, monkeypatch
):
    from dataclasses import replace

    from napari_segany.weights import registry

    unreachable = replace(registry.REGISTRY["vit_t"], url="http://127.0.0.1:9/mobile_sam.pt")
    monkeypatch.setitem(registry.REGISTRY, "vit_t", unreachable)
    monkeypatch.setenv("NAPARI_SEGANY_MODEL", "vit_t")
    viewer, widget = open_widget(textured_image())
    assert widget.model_name == "vit_t"
    assert "download 41 MB" in widget.model_combo.currentText()  # it is not on this computer
    click(viewer, 60, 70)
    qtbot.waitUntil(lambda: "could not be downloaded" in _messages(notifications), timeout=30000)
    text = _messages(notifications)
    assert "Import checkpoint…" in text and len(text) < 250  # fits the notification
    assert "127.0.0.1:9" in widget.status_label.text()  # the detail is in the status line
    wait_idle(qtbot, widget)
    assert viewer.layers["img"].data.shape == (120, 150)


@pytest.mark.slow
def test_viewer_stays_responsive_while_a_vit_b_sized_model_encodes(
    open_widget, qtbot, tmp_path, monkeypatch
):
    from qtpy.QtCore import QTimer

    from reference_models import VIT_B_SPEC, build_reference_vit, save_checkpoint

    checkpoint = save_checkpoint(build_reference_vit(VIT_B_SPEC, seed=1), tmp_path / "vit_b.pth")
    monkeypatch.setenv("NAPARI_SEGANY_MODEL", str(checkpoint))
    viewer, widget = open_widget(textured_image((400, 500)))

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    widget.encode_button.click()
    qtbot.waitUntil(lambda: widget.jobs.busy, timeout=5000)
    qtbot.waitUntil(lambda: not widget.jobs.busy, timeout=300000)
    timer.stop()

    assert "encoded" in widget.status_label.text()
    assert len(widget.session.cache) == 1
    gaps = np.diff(ticks)
    assert len(ticks) > 50, "the event loop barely ran while encoding"
    assert gaps.max() < 0.5, f"the event loop was blocked for {gaps.max():.2f} s"
