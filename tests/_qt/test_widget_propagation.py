"""Propagate in the widget: an object clicked on one slice carried through a volume, shown as it
comes, committed whole as one undoable step; Cancel, 2-D images, seeds, stops, Propagate all."""

from __future__ import annotations

import numpy as np
import pytest
from widget_helpers import click, gate_session_models, press, wait_for_preview

from napari_segany import Predictor, load_model, segment_volume, track
from napari_segany._qt.keys import KEYS

pytestmark = pytest.mark.gui

SHAPE = (8, 64, 64)
MIDDLE = 4


def sphere_volume(shape=SHAPE, radius: float = 20.0) -> np.ndarray:
    """A bright ball on a dim, slightly textured background, (Z, H, W) uint8."""
    z, r, c = np.mgrid[: shape[0], : shape[1], : shape[2]]
    centre = np.array(shape) / 2.0
    inside = ((z - centre[0]) * 6) ** 2 + (r - centre[1]) ** 2 + (c - centre[2]) ** 2 < radius**2
    rng = np.random.default_rng(0)
    background = 40 + 10 * np.sin(r / 5.0) * np.cos(c / 3.0) + rng.normal(0, 3, shape)
    return np.clip(np.where(inside, 220, background), 0, 255).astype(np.uint8)


def sphere_truth(shape=SHAPE, radius: float = 20.0) -> np.ndarray:
    return sphere_volume(shape, radius) == 220


@pytest.fixture
def object_model_env(monkeypatch, model_env, tmp_path):
    """The widget's model is the volume tests' SAM whose masks are bright compact objects."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "volumes" / "volume_data.py"
    spec = importlib.util.spec_from_file_location("propagation_volume_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    checkpoint = module.object_checkpoint(tmp_path)
    monkeypatch.setenv("NAPARI_SEGANY_MODEL", str(checkpoint))
    return checkpoint


def _messages(notifications) -> str:
    return "\n".join(str(n.message) for n in notifications)


def _on_middle_slice(open_widget, qtbot, volume=None, **kwargs):
    viewer, widget = open_widget(sphere_volume() if volume is None else volume, **kwargs)
    viewer.dims.set_current_step(0, MIDDLE)
    click(viewer, 32, 32)
    wait_for_preview(qtbot, widget)
    return viewer, widget


def _propagation_layer(viewer):
    return next(layer for layer in viewer.layers if layer.name == "img propagation")


def _wait_propagated(qtbot, widget, timeout: int = 60000) -> None:
    qtbot.waitUntil(
        lambda: not widget.propagation.running and not widget.jobs.busy, timeout=timeout
    )


def test_propagate_fills_the_stack_and_equals_segment_volume(open_widget, qtbot, model_env):
    viewer, widget = _on_middle_slice(open_widget, qtbot)
    preview = widget.preview_objects() > 0
    press(viewer, KEYS["propagate"][0])
    _wait_propagated(qtbot, widget)
    result = _propagation_layer(viewer).data
    assert result.shape == SHAPE
    np.testing.assert_array_equal(result[MIDDLE] > 0, preview)  # the seed is the preview
    # What the widget shows is what the API gives for the same seed and settings.
    predictor = Predictor(load_model(model_env, device="cpu"), precision="fp32")
    expected, reached = segment_volume(
        predictor, sphere_volume(), {MIDDLE: preview}, box_extension=0.05,
        contrast_limits=(0.0, 255.0),
    )  # fmt: skip
    np.testing.assert_array_equal(result > 0, expected)
    assert "Propagated through slices" in widget.status_label.text()
    # Nothing is written into the user's labels before Commit, and the preview is no target.
    assert not any(layer.name == "img labels" for layer in viewer.layers)
    assert widget.labels_combo.findText("img propagation") == -1
    assert reached[0] <= MIDDLE <= reached[1]


def test_a_ball_clicked_on_one_slice_is_found_on_the_others(open_widget, qtbot, object_model_env):
    viewer, widget = _on_middle_slice(open_widget, qtbot)
    press(viewer, KEYS["propagate"][0])
    _wait_propagated(qtbot, widget)
    shown = _propagation_layer(viewer).data > 0
    truth = sphere_truth()
    # Slices through the ball, not its caps, where the IoU stop may end it.
    for z in range(SHAPE[0]):
        if truth[z].sum() > 600:
            iou = (shown[z] & truth[z]).sum() / (shown[z] | truth[z]).sum()
            assert iou > 0.8, (z, iou)
    assert not shown[0].any()  # beyond the ball, nothing
    assert "Propagated through slices" in widget.propagate_panel.result_label.text()


class _PlaneGate:
    """Holds the widget's encoder at the start of its ``hold_at``-th image (counted over the
    whole test) until ``release()``: a propagation encodes each plane as it reaches it, so this
    stops it on a chosen plane with the planes before it done."""

    def __init__(self) -> None:
        import threading

        self.started = 0
        self.hold_at: int | None = None
        self.reached = threading.Event()
        self._open = threading.Event()

    def install(self, model) -> None:
        if not getattr(model, "_plane_gated", False):
            model._plane_gated = True
            model.image_encoder.blocks[0].register_forward_pre_hook(self._hold)

    def _hold(self, *_) -> None:
        self.started += 1
        if self.started == self.hold_at:
            self.reached.set()
            self._open.wait(60.0)

    def release(self) -> None:
        self._open.set()


@pytest.fixture
def plane_gate(monkeypatch):
    """A _PlaneGate on every model the widget's session loads."""
    gate = _PlaneGate()
    gate_session_models(monkeypatch, gate)
    yield gate
    gate.release()


def test_the_preview_fills_in_slice_by_slice_while_propagating(open_widget, qtbot, plane_gate):
    viewer, widget = _on_middle_slice(open_widget, qtbot)
    widget.propagate_panel.iou_spin.setValue(0.0)  # never stop: every slice gets the object
    # Upwards first: the propagation encodes MIDDLE + 1, then is held encoding MIDDLE + 2.
    plane_gate.hold_at = plane_gate.started + 2
    widget.propagate_panel.propagate_button.click()
    qtbot.waitUntil(plane_gate.reached.is_set, timeout=60000)
    assert widget.propagation.running
    layer = _propagation_layer(viewer)
    done = layer.data[MIDDLE + 1] > 0
    assert done.any()  # the slice propagated so far is there already ...
    assert not layer.data[MIDDLE + 2 :].any()  # ... the later ones not yet,
    assert not layer.data[:MIDDLE].any()  # nor those below, which come after
    viewer.dims.set_current_step(0, MIDDLE + 1)  # and scrolling there shows it
    np.testing.assert_array_equal(layer._slice.image.raw > 0, done)
    plane_gate.release()
    _wait_propagated(qtbot, widget)
    assert (layer.data > 0).any(axis=(1, 2)).all()  # in the end, every slice
    np.testing.assert_array_equal(layer.data[MIDDLE + 1] > 0, done)  # as it was shown


def test_commit_writes_the_whole_object_in_one_undo_step(open_widget, qtbot):
    viewer, widget = _on_middle_slice(open_widget, qtbot)
    widget.propagate_panel.iou_spin.setValue(0.0)  # never stop: every slice
    widget.propagate_panel.propagate_button.click()
    _wait_propagated(qtbot, widget)
    shown = _propagation_layer(viewer).data > 0
    assert all(shown[z].any() for z in range(SHAPE[0]))  # on every slice
    press(viewer, KEYS["commit"][0])
    labels = viewer.layers["img labels"]
    np.testing.assert_array_equal(labels.data > 0, shown)
    assert set(np.unique(labels.data)) == {0, 1}  # one object, one new id
    assert not _propagation_layer(viewer).data.any()  # the preview is used up
    assert len(widget.prompt_layers.points.data) == 0
    assert "through slices 0–7" in widget.status_label.text()
    widget.undo_button.click()  # one undo takes all of it back
    assert not labels.data.any()


def test_commit_never_paints_over_existing_labels(open_widget, qtbot):
    viewer, widget = open_widget(sphere_volume())
    existing = np.zeros(SHAPE, dtype=np.int32)
    existing[:, 28:36, 28:36] = 7
    viewer.add_labels(existing.copy(), name="img labels")
    viewer.layers.selection.active = viewer.layers["img"]
    viewer.dims.set_current_step(0, MIDDLE)
    click(viewer, 32, 32)
    wait_for_preview(qtbot, widget)
    widget.propagate_panel.iou_spin.setValue(0.0)
    widget.propagate_panel.propagate_button.click()
    _wait_propagated(qtbot, widget)
    shown = _propagation_layer(viewer).data > 0
    widget.commit_button.click()
    data = viewer.layers["img labels"].data
    np.testing.assert_array_equal(data[existing == 7], 7)  # object 7 is as it was
    np.testing.assert_array_equal(data == 8, shown & (existing == 0))  # the new id, around it


def test_cancel_mid_propagation_keeps_nothing_and_says_so(open_widget, qtbot, encoder_gate):
    viewer, widget = open_widget(sphere_volume())
    viewer.dims.set_current_step(0, MIDDLE)
    click(viewer, 32, 32)
    encoder_gate.wait_reached(qtbot)
    encoder_gate.release()
    seed = wait_for_preview(qtbot, widget) > 0
    encoder_gate.reached.clear()  # close the gate again: the next slice's encoding holds
    encoder_gate._open.clear()
    widget.propagate_panel.propagate_button.click()
    encoder_gate.wait_reached(qtbot)
    assert widget.propagation.running and not widget.cancel_button.isHidden()
    # The viewer is free meanwhile: the user scrolls, and the seed shows in the preview.
    viewer.dims.set_current_step(0, 1)
    assert viewer.dims.current_step[0] == 1
    np.testing.assert_array_equal(_propagation_layer(viewer).data[MIDDLE] > 0, seed)
    widget.cancel_button.click()
    encoder_gate.release()
    _wait_propagated(qtbot, widget)
    assert "propagation cancelled" in widget.status_label.text()
    assert widget.propagate_panel.result_label.text() == "Propagation cancelled"
    assert not _propagation_layer(viewer).data.any()
    viewer.dims.set_current_step(0, MIDDLE)
    wait_for_preview(qtbot, widget)
    press(viewer, KEYS["commit"][0])  # Commit now commits the 2-D preview, not half a volume
    labels = viewer.layers["img labels"].data
    assert labels[MIDDLE].any() and not labels[MIDDLE + 1].any()


def test_propagate_on_a_2d_image_says_what_to_do(open_widget, qtbot, notifications):
    viewer, widget = open_widget(sphere_volume()[MIDDLE])
    click(viewer, 32, 32)
    wait_for_preview(qtbot, widget)
    assert widget.propagate_panel.isHidden()  # nothing to propagate through
    press(viewer, KEYS["propagate"][0])
    text = _messages(notifications)
    assert "this image is 2-D" in text and "commit the preview" in text
    assert not widget.propagation.running


def test_propagate_without_a_preview_says_click_first(open_widget, qtbot, notifications):
    viewer, widget = open_widget(sphere_volume())
    press(viewer, KEYS["propagate"][0])
    assert "click on the object in this slice first" in _messages(notifications)


def test_a_stop_slice_ends_the_object_there(open_widget, qtbot):
    viewer, widget = _on_middle_slice(open_widget, qtbot)
    widget.propagate_panel.iou_spin.setValue(0.0)
    widget.toggle_point_mode()  # negative
    viewer.dims.set_current_step(0, 6)
    click(viewer, 32, 32)  # slice 6: one negative point, a stop mark
    viewer.dims.set_current_step(0, MIDDLE)
    wait_for_preview(qtbot, widget)
    widget.propagate_panel.propagate_button.click()
    _wait_propagated(qtbot, widget)
    shown = _propagation_layer(viewer).data > 0
    assert shown[: MIDDLE + 1].any(axis=(1, 2)).all()  # down to the bottom, as before
    assert not shown[6:].any()  # nothing from the stop slice up
    assert shown[5].any()


def test_a_seed_on_another_slice_is_kept_there(open_widget, qtbot, model_env):
    viewer, widget = _on_middle_slice(open_widget, qtbot)
    middle = widget.preview_objects() > 0
    viewer.dims.set_current_step(0, 1)
    click(viewer, 30, 34)  # a second seed, on slice 1
    seed = wait_for_preview(qtbot, widget) > 0
    viewer.dims.set_current_step(0, MIDDLE)
    wait_for_preview(qtbot, widget)
    widget.propagate_panel.propagate_button.click()
    _wait_propagated(qtbot, widget)
    shown = _propagation_layer(viewer).data > 0
    np.testing.assert_array_equal(shown[1], seed)
    predictor = Predictor(load_model(model_env, device="cpu"), precision="fp32")
    expected, _ = segment_volume(
        predictor, sphere_volume(), {MIDDLE: middle, 1: seed}, box_extension=0.05,
        contrast_limits=(0.0, 255.0),
    )  # fmt: skip
    np.testing.assert_array_equal(shown, expected)


def test_propagate_all_extends_each_object_under_its_id(open_widget, qtbot):
    viewer, widget = open_widget(sphere_volume())
    seeds = np.zeros(SHAPE, dtype=np.int32)
    seeds[MIDDLE, 20:30, 20:30] = 3
    seeds[MIDDLE, 36:46, 36:46] = 9
    viewer.add_labels(seeds.copy(), name="img labels")
    viewer.layers.selection.active = viewer.layers["img"]
    viewer.dims.set_current_step(0, MIDDLE)
    widget.propagate_panel.iou_spin.setValue(0.0)
    widget.propagate_panel.propagate_all_button.click()
    _wait_propagated(qtbot, widget)
    shown = _propagation_layer(viewer).data
    assert set(np.unique(shown)) <= {0, 3, 9} and {3, 9} <= set(np.unique(shown))
    assert (shown == 3).any(axis=(1, 2)).sum() > 1  # carried beyond its slice
    widget.commit_button.click()
    data = viewer.layers["img labels"].data
    assert set(np.unique(data)) <= {0, 3, 9}  # no new ids: the same objects, further
    np.testing.assert_array_equal(data[MIDDLE][seeds[MIDDLE] > 0], seeds[MIDDLE][seeds[MIDDLE] > 0])
    assert (data == 3).sum() > (seeds == 3).sum()


def test_the_3d_view_shows_the_propagated_object(open_widget, qtbot):
    viewer, widget = _on_middle_slice(open_widget, qtbot)
    widget.propagate_panel.iou_spin.setValue(0.0)
    widget.propagate_panel.propagate_button.click()
    _wait_propagated(qtbot, widget)
    viewer.dims.ndisplay = 3
    layer = _propagation_layer(viewer)
    assert layer.visible
    # napari draws it as one volume: the whole object, not the displayed slice.
    sliced = layer._slice.image
    assert sliced.view.shape == SHAPE
    np.testing.assert_array_equal(sliced.raw, layer.data)
    visual = viewer.window._qt_viewer.canvas.layer_to_visual[layer]
    assert type(visual.node).__name__ == "Volume"
    press(viewer, KEYS["commit"][0])  # and commits from the 3-D view
    assert viewer.layers["img labels"].data.any(axis=(1, 2)).all()


def test_time_lapse_mode_tracks_forward_as_track_does(open_widget, qtbot, model_env):
    viewer, widget = open_widget(sphere_volume())
    widget.propagate_panel.mode_combo.setCurrentIndex(1)  # time-lapse
    assert widget.propagate_panel.motion_spin.isEnabled()
    widget.propagate_panel.motion_spin.setValue(0.3)
    viewer.dims.set_current_step(0, 2)
    click(viewer, 32, 32)
    seed = wait_for_preview(qtbot, widget) > 0
    widget.propagate_panel.propagate_button.click()
    _wait_propagated(qtbot, widget)
    shown = _propagation_layer(viewer).data > 0
    assert not shown[:2].any()  # a track never goes back in time
    predictor = Predictor(load_model(model_env, device="cpu"), precision="fp32")
    expected, _ = track(
        predictor, sphere_volume(), {2: seed}, box_extension=0.05, motion_smoothing=0.3,
        contrast_limits=(0.0, 255.0),
    )  # fmt: skip
    np.testing.assert_array_equal(shown, expected)


def test_a_4d_image_propagates_through_z_at_the_displayed_time(open_widget, qtbot):
    movie = np.stack([sphere_volume(), sphere_volume()[:, ::-1]])  # (T, Z, H, W)
    viewer, widget = open_widget(movie)
    viewer.dims.set_current_step(0, 1)
    viewer.dims.set_current_step(1, MIDDLE)
    click(viewer, 30, 32)
    wait_for_preview(qtbot, widget)
    widget.propagate_panel.iou_spin.setValue(0.0)
    press(viewer, KEYS["propagate"][0])
    _wait_propagated(qtbot, widget)
    shown = _propagation_layer(viewer).data > 0
    assert shown.shape == movie.shape
    assert not shown[0].any()  # the other time point is untouched
    assert shown[1].any(axis=(1, 2)).all()  # every z of this one
    press(viewer, KEYS["commit"][0])
    labels = viewer.layers["img labels"].data
    np.testing.assert_array_equal(labels > 0, shown)
