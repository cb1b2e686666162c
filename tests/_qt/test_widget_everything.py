"""The "Segment everything" button: results, semi-automatic mode, slices and Cancel."""

from __future__ import annotations

import numpy as np
import pytest
from widget_helpers import textured_image, wait_idle

from napari_segany import Predictor, generate_masks, load_model, masks_to_labels

pytestmark = pytest.mark.gui

# Random weights give near-global, overlapping masks: open the filters and switch NMS off so
# that many masks survive.
OPEN_FILTERS = {
    "points_per_side": 6,
    "pred_iou_thresh": 0.0,
    "stability_score_thresh": 0.0,
    "box_nms_thresh": 1.0,
    "crop_n_layers": 0,
    "min_mask_region_area": 0,
    "points_per_batch": 16,
}


def _set_params(widget, **values) -> None:
    for name, value in values.items():
        widget.everything.fields[name].value = value


def _expected(checkpoint, image, contrast) -> np.ndarray:
    predictor = Predictor(load_model(checkpoint, device="cpu"), precision="fp32")
    records = generate_masks(predictor, image, contrast_limits=contrast, **OPEN_FILTERS)
    assert len(records) > 3, "the oracle itself found too few masks to compare"
    return masks_to_labels(records, image.shape[:2])


def test_segment_everything_makes_a_new_labels_layer(open_widget, qtbot, tiny_checkpoint):
    image = textured_image(seed=21)
    viewer, widget = open_widget(image)
    _set_params(widget, **OPEN_FILTERS)
    assert widget.everything.preset_combo.currentText() == "Custom"
    widget.everything.run_button.click()
    qtbot.waitUntil(lambda: "img everything" in [lay.name for lay in viewer.layers], timeout=120000)
    wait_idle(qtbot, widget)
    result = viewer.layers["img everything"].data
    np.testing.assert_array_equal(result, _expected(tiny_checkpoint, image, (0.0, 255.0)))
    assert f"{len(np.unique(result)) - 1}" in widget.status_label.text() or "masks" in (
        widget.status_label.text()
    )


def test_only_unlabeled_regions_keeps_existing_objects(open_widget, qtbot, tiny_checkpoint):
    image = textured_image(seed=22)
    viewer, widget = open_widget(image)
    existing = np.zeros(image.shape, np.int32)
    existing[:60, :] = 3
    viewer.add_labels(existing.copy(), name="mine")
    viewer.layers.selection.active = viewer.layers["img"]
    widget.labels_combo.setCurrentIndex(widget.labels_combo.findText("mine"))
    widget.labels_combo.activated.emit(widget.labels_combo.currentIndex())
    _set_params(widget, **OPEN_FILTERS)
    widget.everything.only_unlabeled_check.setChecked(True)
    widget.segment_everything()
    qtbot.waitUntil(lambda: viewer.layers["mine"].data.max() > 3, timeout=120000)
    wait_idle(qtbot, widget)
    mine = viewer.layers["mine"].data
    np.testing.assert_array_equal(mine[:60], 3)  # existing labels untouched
    assert set(np.unique(mine[60:])) - {0} <= set(range(4, 1000))
    assert "img everything" not in [layer.name for layer in viewer.layers]
    viewer.layers["mine"].undo()
    np.testing.assert_array_equal(viewer.layers["mine"].data, existing)


def test_cancel_leaves_every_layer_as_it_was(open_widget, qtbot):
    viewer, widget = open_widget(textured_image(seed=23))
    _set_params(widget, **{**OPEN_FILTERS, "points_per_side": 40, "points_per_batch": 8})
    before = [layer.name for layer in viewer.layers]
    widget.segment_everything()
    stepping = "Segmenting everything: "
    qtbot.waitUntil(lambda: widget.progress_bar.format().startswith(stepping), timeout=60000)
    assert widget.progress_bar.maximum() > 0
    assert "MB" not in widget.progress_bar.format()  # steps, not a download
    widget.cancel_button.click()
    wait_idle(qtbot, widget)
    assert [layer.name for layer in viewer.layers] == before
    assert "cancelled" in widget.status_label.text()


def test_segment_everything_on_the_displayed_slice(open_widget, qtbot, tiny_checkpoint):
    stack = np.stack([textured_image(seed=s) for s in (31, 32)])
    viewer, widget = open_widget(stack)
    viewer.dims.set_current_step(0, 1)
    _set_params(widget, **OPEN_FILTERS)
    widget.segment_everything()
    qtbot.waitUntil(lambda: "img everything" in [lay.name for lay in viewer.layers], timeout=120000)
    result = viewer.layers["img everything"].data
    assert result.shape == stack.shape and not result[0].any()
    np.testing.assert_array_equal(result[1], _expected(tiny_checkpoint, stack[1], (0.0, 255.0)))
