"""The Segment Anything widget driven as a user drives it, in a real napari viewer."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Labels, Points, Shapes
from widget_helpers import click, drag, press, textured_image, wait_for_preview, wait_idle

from napari_segany._qt.keys import KEYS
from napari_segany._qt.prompt_layers import NEGATIVE_COLOR, POSITIVE_COLOR, _rgba

pytestmark = pytest.mark.gui


def test_a_click_on_the_image_makes_the_prompt_layers_and_a_point(open_widget, qtbot):
    viewer, widget = open_widget(textured_image())
    # Nothing is added for an image that is never annotated.
    assert [layer.name for layer in viewer.layers] == ["img"]
    from qtpy.QtWidgets import QAbstractButton, QComboBox, QLabel

    controls = widget.findChildren(QAbstractButton) + widget.findChildren(QComboBox)
    untipped = [c.text() if hasattr(c, "text") else c for c in controls if not c.toolTip()]
    assert not untipped, f"controls without a tooltip: {untipped}"
    key_text = " ".join(label.text() for label in widget.findChildren(QLabel))
    for key, _ in KEYS.values():
        assert key in key_text
    assert not widget.next_candidate_button.isEnabled()  # no image has a prediction yet

    viewer.layers.selection.active = viewer.layers["img"]
    click(viewer, 60, 70)  # on the image layer itself, the first thing a user does
    assert [layer.name for layer in viewer.layers] == [
        "img", "img preview", "img points", "img boxes"
    ]  # fmt: skip
    assert isinstance(viewer.layers["img points"], Points)
    assert isinstance(viewer.layers["img boxes"], Shapes)
    assert isinstance(viewer.layers["img preview"], Labels)
    np.testing.assert_allclose(viewer.layers["img points"].data, [[60, 70]])
    # The user lands in "add points" mode on the points layer: the next click is a point too.
    assert viewer.layers.selection.active.name == "img points"
    assert viewer.layers["img points"].mode == "add"
    wait_for_preview(qtbot, widget)
    click(viewer, 20, 30)
    assert len(viewer.layers["img points"].data) == 2


def test_single_click_shows_sams_best_mask(open_widget, qtbot, reference_predictor):
    image = textured_image()
    viewer, widget = open_widget(image)
    click(viewer, 60, 70)
    preview = wait_for_preview(qtbot, widget)
    masks, scores, _ = reference_predictor(
        image, (0.0, 255.0), points=np.array([[60.0, 70.0]]), labels=np.array([1])
    )
    best = int(np.argmax(scores))
    np.testing.assert_array_equal(preview > 0, masks[best])
    assert widget.displayed_candidate() == best
    assert f"{scores[best]:.2f}" in widget.candidate_label.text()
    assert "encoded" in widget.status_label.text() and "cpu" in widget.status_label.text()
    assert widget.next_candidate_button.isEnabled()


def test_next_candidate_cycles_through_three_masks(open_widget, qtbot, reference_predictor):
    image = textured_image(seed=3)
    viewer, widget = open_widget(image)
    click(viewer, 40, 90)
    wait_for_preview(qtbot, widget)
    masks, scores, _ = reference_predictor(
        image, (0.0, 255.0), points=np.array([[40.0, 90.0]]), labels=np.array([1])
    )
    order = list(np.argsort(-scores, kind="stable"))
    shown = [widget.displayed_candidate()]
    np.testing.assert_array_equal(widget.preview_objects() > 0, masks[order[0]])
    widget.next_candidate_button.click()
    shown.append(widget.displayed_candidate())
    np.testing.assert_array_equal(widget.preview_objects() > 0, masks[order[1]])
    press(viewer, KEYS["next_candidate"][0])
    shown.append(widget.displayed_candidate())
    press(viewer, KEYS["next_candidate"][0])
    shown.append(widget.displayed_candidate())
    assert shown == order + [order[0]]


def test_negative_points_refine_and_are_drawn_differently(open_widget, qtbot, reference_predictor):
    image = textured_image(seed=5)
    viewer, widget = open_widget(image)
    click(viewer, 60, 70)
    wait_for_preview(qtbot, widget)
    press(viewer, KEYS["toggle_point_mode"][0])
    assert widget.negative_radio.isChecked()
    click(viewer, 20, 30)
    wait_idle(qtbot, widget)
    points = widget.prompt_layers.points
    assert list(points.features["positive"]) == [True, False]
    colors = np.asarray(points.face_color)
    np.testing.assert_allclose(colors[0], _rgba(POSITIVE_COLOR))
    np.testing.assert_allclose(colors[1], _rgba(NEGATIVE_COLOR))
    masks, _, _ = reference_predictor(
        image, (0.0, 255.0), points=np.array([[60.0, 70.0], [20.0, 30.0]]),
        labels=np.array([1, 0]), multimask=False,
    )  # fmt: skip
    np.testing.assert_array_equal(widget.preview_objects() > 0, masks[0])
    widget.positive_radio.click()
    click(viewer, 100, 100)
    wait_idle(qtbot, widget)
    assert list(points.features["positive"]) == [True, False, True]


def test_moving_and_deleting_points_redecode(open_widget, qtbot, reference_predictor):
    image = textured_image(seed=6)
    viewer, widget = open_widget(image)
    click(viewer, 60, 70)
    click(viewer, 90, 20)
    wait_for_preview(qtbot, widget)
    points = widget.prompt_layers.points
    points.data = np.array([[60.0, 70.0], [30.0, 120.0]])  # the user drags the second point
    wait_idle(qtbot, widget)
    masks, _, _ = reference_predictor(
        image, (0.0, 255.0), points=np.array([[60.0, 70.0], [30.0, 120.0]]),
        labels=np.array([1, 1]), multimask=False,
    )  # fmt: skip
    np.testing.assert_array_equal(widget.preview_objects() > 0, masks[0])
    points.selected_data = {0, 1}
    points.remove_selected()
    wait_idle(qtbot, widget)
    assert widget.preview_objects() is None


def test_box_tool_boxes_drawn_in_any_direction_decode_as_one_batch(
    open_widget, qtbot, reference_predictor
):
    image = textured_image(seed=7)
    viewer, widget = open_widget(image)
    press(viewer, KEYS["box_tool"][0])  # one key: the next drag draws a box
    assert widget.box_button.isChecked()
    assert viewer.layers.selection.active.name == "img boxes"
    assert viewer.layers["img boxes"].mode == "add_rectangle"
    drag(viewer, (10, 10), (50, 60))
    drag(viewer, (110, 140), (60, 80))  # bottom-right to top-left
    wait_for_preview(qtbot, widget)
    wait_idle(qtbot, widget)
    preview = widget.preview_objects()
    expected_boxes = np.array([[10, 10, 50, 60], [60, 80, 110, 140]], dtype=float)
    masks, _, _ = reference_predictor(image, (0.0, 255.0), box=expected_boxes, multimask=False)
    expected = np.zeros(image.shape, np.int32)
    for k in range(2):
        expected[masks[k, 0]] = k + 1
    np.testing.assert_array_equal(preview, expected)
    assert "2 object(s)" in widget.candidate_label.text()
    widget.point_button.click()  # and back to points, in one step
    assert viewer.layers.selection.active.name == "img points"
    assert viewer.layers["img points"].mode == "add"


def test_commit_into_new_labels_then_undo(open_widget, qtbot):
    viewer, widget = open_widget(textured_image(seed=8))
    click(viewer, 60, 70)
    preview = wait_for_preview(qtbot, widget).copy()
    widget.commit_button.click()
    labels = viewer.layers["img labels"]
    assert labels.data.shape == (120, 150)
    np.testing.assert_array_equal(labels.data, (preview > 0).astype(labels.data.dtype))
    assert len(widget.prompt_layers.points.data) == 0
    assert widget.preview_objects() is None
    # The labels layer went below the prompt layers, which stay on top and active.
    names = [layer.name for layer in viewer.layers]
    assert names.index("img labels") < names.index("img points")
    assert viewer.layers.selection.active.name == "img points"
    # A second object gets the next id.
    click(viewer, 10, 10)
    second = wait_for_preview(qtbot, widget).copy()
    press(viewer, KEYS["commit"][0])
    new_pixels = (second > 0) & (preview == 0)
    assert set(np.unique(labels.data[new_pixels])) == {2}
    assert "id 2" in widget.status_label.text()
    assert widget.undo_button.isEnabled()
    widget.undo_button.click()  # whatever layer is selected
    np.testing.assert_array_equal(labels.data, (preview > 0).astype(labels.data.dtype))
    labels.undo()  # napari's own undo works as well
    assert not labels.data.any()


def test_commit_modes_unlabeled_overwrite_and_replace(open_widget, qtbot):
    image = textured_image(seed=9)
    viewer, widget = open_widget(image)
    existing = np.zeros(image.shape, np.int32)
    existing[:, :75] = 7
    viewer.add_labels(existing.copy(), name="mine")
    viewer.layers.selection.active = viewer.layers["img"]
    widget.labels_combo.setCurrentIndex(widget.labels_combo.findText("mine"))
    widget.labels_combo.activated.emit(widget.labels_combo.currentIndex())
    click(viewer, 60, 70)
    preview = wait_for_preview(qtbot, widget).copy() > 0
    widget.commit()  # the default: new objects only where nothing is labeled
    mine = viewer.layers["mine"].data
    np.testing.assert_array_equal(mine[:, :75], 7)  # existing object untouched
    np.testing.assert_array_equal(mine[:, 75:] == 8, preview[:, 75:])

    modes = widget.commit_mode_combo
    modes.setCurrentIndex(modes.findText("Overwrite existing labels"))
    click(viewer, 60, 70)
    wait_for_preview(qtbot, widget)
    widget.commit()
    assert (mine[preview] == 9).all()

    modes.setCurrentIndex(modes.findText("Replace the object under the first point"))
    before = mine.copy()
    click(viewer, 5, 5)  # on object 7: it is redrawn as the new mask, keeping its id
    new = wait_for_preview(qtbot, widget).copy() > 0
    widget.commit()
    mine = viewer.layers["mine"].data
    assert (mine[new & ((before == 7) | (before == 0))] == 7).all()
    assert not ((mine == 7) & ~new).any()  # its old pixels outside the new mask are gone
    np.testing.assert_array_equal(mine[before == 9], 9)  # other objects stay as they were


def test_clear_discards_prompts_but_never_committed_objects(open_widget, qtbot):
    viewer, widget = open_widget(textured_image(seed=10))
    click(viewer, 60, 70)
    wait_for_preview(qtbot, widget)
    widget.commit()
    committed = viewer.layers["img labels"].data.copy()
    assert committed.any()
    click(viewer, 20, 20)
    widget.set_tool("box")
    drag(viewer, (5, 5), (40, 40))
    wait_for_preview(qtbot, widget)
    press(viewer, KEYS["clear"][0])
    wait_idle(qtbot, widget)
    assert len(widget.prompt_layers.points.data) == 0 and len(widget.prompt_layers.boxes.data) == 0
    assert widget.preview_objects() is None
    np.testing.assert_array_equal(viewer.layers["img labels"].data, committed)


def test_stack_slices_encode_on_demand_and_come_back_instantly(
    open_widget, qtbot, reference_predictor
):
    stack = np.stack([textured_image(seed=s, dtype=np.uint16) * 40 for s in range(3)])
    viewer, widget = open_widget(stack, contrast_limits=(0, 10200))
    viewer.dims.set_current_step(0, 1)
    click(viewer, 60, 70, lead=(1,))
    preview = wait_for_preview(qtbot, widget)
    masks, scores, _ = reference_predictor(
        stack[1], (0.0, 10200.0), points=np.array([[60.0, 70.0]]), labels=np.array([1])
    )
    np.testing.assert_array_equal(preview > 0, masks[np.argmax(scores)])
    assert len(widget.session.cache) == 1

    viewer.dims.set_current_step(0, 2)  # a slice without prompts: nothing to show or encode
    wait_idle(qtbot, widget)
    assert widget.preview_objects() is None and len(widget.session.cache) == 1

    viewer.dims.set_current_step(0, 1)  # back: cached, so no encoding job runs
    qtbot.waitUntil(lambda: widget.preview_objects() is not None, timeout=5000)
    assert len(widget.session.cache) == 1
    widget.commit()
    labels = viewer.layers["img labels"].data
    assert labels.shape == stack.shape
    assert labels[1].any() and not labels[0].any() and not labels[2].any()


def test_encoding_shows_its_progress_block_by_block(open_widget, qtbot, tiny_model):
    _, widget = open_widget(textured_image(seed=4))
    shown = []
    widget.controller.relay.progress.connect(
        lambda stage, done, total: shown.append((stage, done, total, widget.progress_bar.format()))
    )
    widget.encode_button.click()
    wait_idle(qtbot, widget)
    depth = len(tiny_model.image_encoder.blocks)
    steps = [(done, total) for stage, done, total, _ in shown if stage == "Encoding slice"]
    assert steps == [(i, depth) for i in range(depth + 1)]
    # No busy animation while encoding, and the bar is repainted at most once a second.
    formats = [fmt for stage, _, _, fmt in shown if stage == "Encoding slice"]
    assert formats[0] == f"Encoding slice: 0 / {depth}"
    assert formats[-1] == f"Encoding slice: {depth} / {depth}"
    assert widget.progress_bar.isHidden()


def test_rgb_image(open_widget, qtbot, reference_predictor):
    rgb = np.stack([textured_image(seed=s) for s in (1, 2, 3)], axis=-1)
    viewer, widget = open_widget(rgb, rgb=True)
    click(viewer, 50, 50)
    assert widget.prompt_layers.points.ndim == 2
    preview = wait_for_preview(qtbot, widget)
    masks, scores, _ = reference_predictor(
        rgb, (0.0, 255.0), points=np.array([[50.0, 50.0]]), labels=np.array([1])
    )
    np.testing.assert_array_equal(preview > 0, masks[np.argmax(scores)])


def test_changing_contrast_reencodes_what_the_user_sees(open_widget, qtbot, reference_predictor):
    image = textured_image(seed=11).astype(np.float32) * 10.0
    viewer, widget = open_widget(image, contrast_limits=(0.0, 2550.0))
    click(viewer, 60, 70)
    wait_for_preview(qtbot, widget)
    viewer.layers["img"].contrast_limits = (500.0, 1500.0)
    qtbot.waitUntil(lambda: len(widget.session.cache) == 2, timeout=30000)
    wait_idle(qtbot, widget)
    masks, scores, _ = reference_predictor(
        image, (500.0, 1500.0), points=np.array([[60.0, 70.0]]), labels=np.array([1])
    )
    np.testing.assert_array_equal(widget.preview_objects() > 0, masks[np.argmax(scores)])


def test_image_picker_follows_the_active_image_layer(open_widget, qtbot):
    viewer, widget = open_widget(textured_image())
    second = viewer.add_image(textured_image(seed=4), name="second")
    viewer.layers.selection.active = second
    assert widget.image_layer.unique_id == second.unique_id
    assert widget.image_combo.currentText() == "second"
    assert "second points" not in [layer.name for layer in viewer.layers]  # not annotated yet


def test_editing_the_image_drops_its_embeddings(open_widget, qtbot):
    viewer, widget = open_widget(textured_image())
    click(viewer, 60, 70)
    wait_for_preview(qtbot, widget)
    assert len(widget.session.cache) == 1
    viewer.layers["img"].data = textured_image(seed=12)
    wait_idle(qtbot, widget)
    assert len(widget.session.cache) == 1  # re-encoded: the old one is gone, the new one cached
    key = next(iter(widget.session.cache._items))
    np.testing.assert_array_equal(widget.session.cache.get(key).features.shape, (1, 256, 64, 64))


def test_precomputed_embeddings_on_disk_are_used_instead_of_encoding(
    open_widget, qtbot, tiny_checkpoint
):
    from napari_segany import EmbeddingStore, Predictor, load_model
    from napari_segany.embeddings import plane_embedding_key

    image = textured_image(seed=13)
    other = textured_image(seed=14)
    predictor = Predictor(load_model(tiny_checkpoint, device="cpu"), precision="fp32")
    predictor.set_image(other)
    # Stored under this image's key, the other image's embedding proves the disk was read.
    key = plane_embedding_key(image, (0.0, 255.0), str(tiny_checkpoint), "fp32")
    EmbeddingStore().save(key, predictor.get_embedding_state())
    expected, scores, _ = predictor.predict(np.array([[60.0, 70.0]]), np.array([1]))

    viewer, widget = open_widget(image)
    click(viewer, 60, 70)
    preview = wait_for_preview(qtbot, widget)
    np.testing.assert_array_equal(preview > 0, expected[np.argmax(scores)])
    assert "precomputed" in widget.status_label.text()
