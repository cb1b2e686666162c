"""Automatic instance segmentation in the widget: offered for a model with an instance
decoder (AIS by default, APG, segment everything), its objects in a labels layer, the click
embedding reused, Cancel; a model without a decoder offers only segment everything."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt
from widget_helpers import textured_image, wait_idle

from instance_checkpoints import structured_decoder_state, write_with_decoder
from napari_segany import Predictor, load_model, segment_instances

pytestmark = pytest.mark.gui

IMAGE = textured_image(seed=41)
METHODS = ["Instances (AIS)", "Instances from prompts (APG)", "Segment everything"]


@pytest.fixture(scope="module")
def decoder_checkpoint(tmp_path_factory, small_checkpoint):
    """The small SAM with an instance decoder beside it whose maps hold objects on IMAGE."""
    folder = tmp_path_factory.mktemp("microsam-model")
    return write_with_decoder(
        folder, small_checkpoint, structured_decoder_state(small_checkpoint, IMAGE)
    )


@pytest.fixture
def decoder_env(monkeypatch, model_env, decoder_checkpoint):
    monkeypatch.setenv("NAPARI_SEGANY_MODEL", str(decoder_checkpoint))
    return decoder_checkpoint


def _methods(widget) -> list[str]:
    combo = widget.everything.mode_combo
    return [combo.itemText(i) for i in range(combo.count())]


def _layer_names(viewer) -> list[str]:
    return [layer.name for layer in viewer.layers]


def test_ais_is_offered_first_and_writes_the_objects(open_widget, qtbot, decoder_env, monkeypatch):
    viewer, widget = open_widget(IMAGE)
    assert _methods(widget) == METHODS
    assert widget.everything.mode() == "ais"
    assert widget.everything.run_button.text() == "Segment instances"
    assert set(widget.everything.params("ais")) >= {"center_distance_threshold", "min_size"}

    widget.encode_button.click()  # as a first click would
    wait_idle(qtbot, widget)
    predictor = widget.session.predictor
    monkeypatch.setattr(predictor, "set_image", lambda *a, **k: pytest.fail("encoded again"))
    widget.everything.run_button.click()
    qtbot.waitUntil(lambda: "img instances" in _layer_names(viewer), timeout=60000)
    wait_idle(qtbot, widget)

    reference = Predictor(load_model(decoder_env, device="cpu"), precision="fp32")
    expected = segment_instances(reference, IMAGE, contrast_limits=(0.0, 255.0))
    result = viewer.layers["img instances"].data
    assert expected.max() > 3, "the decoder itself found too few objects to compare"
    np.testing.assert_array_equal(result > 0, expected > 0)
    assert len(np.unique(result)) == len(np.unique(expected))
    assert "Instances (AIS)" in widget.status_label.text()


def test_apg_runs_from_the_same_panel(open_widget, qtbot, decoder_env):
    viewer, widget = open_widget(IMAGE)
    widget.everything.mode_combo.setCurrentIndex(1)
    assert widget.everything.mode() == "apg"
    assert "nms_threshold" in widget.everything.params("apg")
    widget.segment_everything()
    qtbot.waitUntil(lambda: "img instances" in _layer_names(viewer), timeout=60000)
    wait_idle(qtbot, widget)
    assert "Instances (APG)" in widget.status_label.text()


def test_cancel_during_ais_changes_no_layer(open_widget, qtbot, decoder_env, encoder_gate):
    viewer, widget = open_widget(IMAGE)
    before = _layer_names(viewer)
    widget.segment_everything()  # AIS encodes the slice first
    encoder_gate.wait_reached(qtbot)
    qtbot.waitUntil(lambda: not widget.cancel_button.isHidden(), timeout=5000)
    widget.cancel_button.click()
    encoder_gate.release()
    wait_idle(qtbot, widget)
    assert _layer_names(viewer) == before
    assert "cancelled" in widget.status_label.text()


def test_a_model_without_a_decoder_offers_only_segment_everything(open_widget, qtbot):
    viewer, widget = open_widget(IMAGE)  # the tiny plain SAM checkpoint
    assert _methods(widget) == ["Segment everything"]
    assert "vit_b_lm" in widget.everything.mode_combo.toolTip()
    assert widget.everything.run_button.text() == "Segment everything"


def test_the_model_picker_groups_models_and_switches_the_methods(open_widget, qtbot):
    viewer, widget = open_widget(IMAGE)
    combo = widget.model_combo
    headings = [combo.itemText(i) for i in range(combo.count()) if not _selectable(combo, i)]
    assert headings[:5] == [
        "General (Segment Anything)", "Light microscopy", "Electron microscopy",
        "Histopathology", "Medical imaging",
    ]  # fmt: skip
    lm = combo.findData("vit_b_lm")
    assert lm > combo.findText("Light microscopy")
    assert "instance decoder" in combo.itemData(lm, Qt.ItemDataRole.ToolTipRole)
    # Choosing a model downloads nothing yet: the registry knows which models have decoders.
    combo.setCurrentIndex(lm)
    combo.activated.emit(lm)
    assert _methods(widget) == METHODS
    vit_t = combo.findData("vit_t")
    combo.setCurrentIndex(vit_t)
    combo.activated.emit(vit_t)
    assert _methods(widget) == ["Segment everything"]


def _selectable(combo, index: int) -> bool:
    return bool(combo.model().item(index).flags() & Qt.ItemFlag.ItemIsSelectable)


def test_ais_into_unlabeled_regions_keeps_existing_objects(open_widget, qtbot, decoder_env):
    viewer, widget = open_widget(IMAGE)
    existing = np.zeros(IMAGE.shape, np.int32)
    existing[:60, :] = 3
    viewer.add_labels(existing.copy(), name="mine")
    viewer.layers.selection.active = viewer.layers["img"]
    widget.labels_combo.setCurrentIndex(widget.labels_combo.findText("mine"))
    widget.labels_combo.activated.emit(widget.labels_combo.currentIndex())
    widget.everything.only_unlabeled_check.setChecked(True)
    widget.segment_everything()
    qtbot.waitUntil(lambda: viewer.layers["mine"].data.max() > 3, timeout=60000)
    wait_idle(qtbot, widget)
    mine = viewer.layers["mine"].data
    np.testing.assert_array_equal(mine[:60], 3)  # existing labels untouched
    assert "img instances" not in _layer_names(viewer)
    viewer.layers["mine"].undo()  # one undoable step
    np.testing.assert_array_equal(viewer.layers["mine"].data, existing)


def test_ais_on_a_large_slice_runs_the_decoder_tile_by_tile(open_widget, qtbot, decoder_env):
    # 600 x 500 is 4 x 3 tiles for the 256-pixel model: each tile decoded, one watershed.
    large = np.tile(IMAGE, (5, 4))[:600, :500]
    viewer, widget = open_widget(large)
    widget.everything.run_button.click()
    qtbot.waitUntil(lambda: "img instances" in _layer_names(viewer), timeout=120000)
    wait_idle(qtbot, widget)

    reference = Predictor(load_model(decoder_env, device="cpu"), precision="fp32")
    expected = segment_instances(reference, large, contrast_limits=(0.0, 255.0), tile_shape="auto")
    assert reference.tiled is not None and reference.tiled.grid.grid_shape == (4, 3)
    assert expected.max() > 10, "the decoder itself found too few objects to compare"
    np.testing.assert_array_equal(viewer.layers["img instances"].data, expected)
    assert "tiled 4 x 3, 12 tiles encoded" in widget.session.tiled_status(
        widget.controller.key_of(widget.controller.current_slice())
    )
