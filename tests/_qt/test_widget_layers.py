"""Which layers the widget works on, with several images open, as napari hands them to a
plugin (through its proxy of the viewer)."""

from __future__ import annotations

import numpy as np
import pytest
from widget_helpers import click, textured_image, wait_for_preview, wait_idle

from napari_segany._qt.keys import KEYS

pytestmark = pytest.mark.gui


def _names(viewer) -> list[str]:
    return [layer.name for layer in viewer.layers]


def _select(viewer, name: str) -> None:
    """The user clicks a layer in the layer list."""
    viewer.layers.selection.active = viewer.layers[name]


def _label_objects(viewer, qtbot, widget, name: str, points) -> list:
    """Select the image ``name`` in the layer list, then click and commit each object."""
    _select(viewer, name)
    previews = []
    for row, col in points:
        click(viewer, row, col)
        previews.append(wait_for_preview(qtbot, widget).copy())
        from widget_helpers import press

        press(viewer, KEYS["commit"][0])
    return previews


def test_three_objects_on_each_of_two_images_land_in_their_own_labels(open_widget, qtbot):
    viewer, widget = open_widget(None)
    viewer.add_image(textured_image(seed=1), name="plateA")
    viewer.add_image(textured_image(seed=2), name="plateB")
    a = _label_objects(viewer, qtbot, widget, "plateA", [(20, 20), (60, 75), (100, 130)])
    b = _label_objects(viewer, qtbot, widget, "plateB", [(30, 40), (90, 20), (60, 120)])
    a += _label_objects(viewer, qtbot, widget, "plateA", [(10, 140)])  # back to the first
    labels_a, labels_b = viewer.layers["plateA labels"].data, viewer.layers["plateB labels"].data
    assert labels_a.max() == 4 and labels_b.max() == 3
    # Each object lies where its image's preview showed it, in that image's own labels.
    for labels, previews in ((labels_a, a), (labels_b, b)):
        taken = np.zeros(labels.shape, bool)
        for k, preview in enumerate(previews):
            free = (preview > 0) & ~taken  # objects never paint over earlier ones
            assert (labels[free] == k + 1).all()
            taken |= preview > 0
    # Nothing of plateB's went into plateA's labels, nor the other way round.
    assert "Committed 1 object(s) to 'plateA labels'" in widget.status_label.text()
    _select(viewer, "plateB")
    assert widget.labels_combo.currentText() == "plateB labels"
    _select(viewer, "plateA")
    assert widget.labels_combo.currentText() == "plateA labels"
    # Each image shows only its own prompt layers.
    assert viewer.layers["plateA points"].visible and not viewer.layers["plateB points"].visible
    assert not viewer.layers["plateB preview"].visible


def test_commit_into_offers_only_labels_that_fit_the_image_and_never_a_preview(open_widget, qtbot):
    viewer, widget = open_widget(textured_image())
    viewer.add_labels(np.zeros((120, 150), np.int32), name="fits")
    viewer.add_labels(np.zeros((50, 50), np.int32), name="too small")
    _select(viewer, "img")
    click(viewer, 60, 70)
    wait_for_preview(qtbot, widget)
    offered = [widget.labels_combo.itemText(i) for i in range(widget.labels_combo.count())]
    assert offered == ["New labels layer", "fits"]  # no "img preview", no "too small"


def test_the_widget_opened_before_the_image_still_takes_the_first_click(
    make_napari_viewer, model_env, qtbot
):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-segany", "Segment Anything")
    widget.precision_combo.setCurrentText("fp32")
    viewer.add_image(textured_image(), name="late")  # the image layer is active now
    assert viewer.layers.selection.active.name == "late"
    click(viewer, 60, 70)
    assert wait_for_preview(qtbot, widget).any()
    widget.jobs.wait()


def test_after_segment_everything_clicks_are_prompts_again(open_widget, qtbot):
    viewer, widget = open_widget(textured_image(seed=3))
    click(viewer, 60, 70)
    wait_for_preview(qtbot, widget)
    for name, value in {"points_per_side": 4, "pred_iou_thresh": 0.0,
                        "stability_score_thresh": 0.0}.items():  # fmt: skip
        widget.everything.fields[name].value = value
    widget.segment_everything()
    qtbot.waitUntil(lambda: "img everything" in _names(viewer), timeout=60000)
    wait_idle(qtbot, widget)
    assert viewer.layers.selection.active.name == "img points"
    assert viewer.layers["img points"].mode == "add"


def test_reopening_the_widget_adopts_its_layers(open_widget, qtbot, make_napari_viewer):
    viewer, widget = open_widget(textured_image())
    click(viewer, 60, 70)
    wait_for_preview(qtbot, widget)
    viewer.window.remove_dock_widget(widget)
    widget.jobs.wait()
    _, again = viewer.window.add_plugin_dock_widget("napari-segany", "Segment Anything")
    again.precision_combo.setCurrentText("fp32")
    _select(viewer, "img")
    click(viewer, 60, 70)
    assert not any(name.endswith("[1]") for name in _names(viewer))  # no duplicates
    assert len(viewer.layers["img points"].data) == 2
    assert wait_for_preview(qtbot, again).any()
    again.jobs.wait()


def test_deleting_the_image_while_it_encodes_moves_on(open_widget, qtbot, encoder_gate):
    viewer, widget = open_widget(None)
    viewer.add_image(textured_image(seed=1), name="keep")
    viewer.add_image(textured_image(seed=2), name="doomed")
    _select(viewer, "doomed")
    click(viewer, 60, 70)
    encoder_gate.wait_reached(qtbot)
    viewer.layers.remove("doomed")
    assert widget.image_layer.name == "keep"
    assert "doomed" not in widget.status_label.text()
    assert not any(name.startswith("doomed") for name in _names(viewer))  # prompts went too
    encoder_gate.release()
    wait_idle(qtbot, widget, timeout=120000)
    assert widget.preview_objects() is None
    assert "doomed" not in widget.image_combo.currentText()
    assert len(widget.session.cache) == 0  # its embedding was not kept


def test_the_dock_does_not_widen_as_the_status_grows(open_widget, qtbot):
    viewer, widget = open_widget(textured_image())
    qtbot.wait(50)
    width = widget.sizeHint().width()
    widget.state.set_status("4 object(s) · predicted IoU 0.47, 0.34, 0.27, 0.92 " * 6)
    widget.candidate_label.setText("1 of 3 (best) · predicted IoU 0.91 and a long tail " * 4)
    qtbot.wait(50)
    assert widget.sizeHint().width() <= width


def test_clicks_in_the_3d_view_say_to_switch_to_2d(open_widget, qtbot, notifications):
    stack = np.stack([textured_image(seed=s) for s in range(3)])
    viewer, widget = open_widget(stack)
    click(viewer, 60, 70)
    wait_for_preview(qtbot, widget)
    viewer.dims.ndisplay = 3
    widget.prompt_layers.points.add(np.array([[1.0, 30.0, 30.0]]))
    wait_idle(qtbot, widget)
    assert any("switch the viewer to 2D" in str(n.message) for n in notifications)
    assert widget.preview_objects() is None  # no stale 2-D preview left on screen
