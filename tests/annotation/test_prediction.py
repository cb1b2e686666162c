"""Which candidate the user sees, how it is described, and the window masks are kept in."""

from __future__ import annotations

import numpy as np

from napari_segany.annotation.prediction import Prediction


def _click() -> Prediction:
    masks = np.zeros((1, 3, 4, 5), dtype=bool)
    for m in range(3):
        masks[0, m, m] = True  # candidate m covers row m
    return Prediction.from_masks(masks, np.array([[0.2, 0.9, 0.5]], np.float32), True)


def test_a_click_shows_candidates_from_the_best_predicted_iou_down_and_wraps():
    click = _click()
    assert [click.candidate(rank) for rank in range(4)] == [1, 2, 0, 1]
    assert click.window == (0, 0, 3, 5)  # rows 0-2 hold every candidate
    shown = click.objects(0)
    assert shown.dtype == np.int32 and shown[1].all() and shown.sum() == 5
    assert click.objects(1)[2].all() and click.objects(3)[1].all()
    assert click.describe(0) == "1 of 3 (best) · predicted IoU 0.90"
    assert click.describe(2) == "3 of 3 · predicted IoU 0.20"


def test_boxes_paint_one_id_per_object_and_list_their_ious():
    masks = np.zeros((2, 1, 4, 5), dtype=bool)
    masks[0, 0, :2] = True
    masks[1, 0, 1:] = True  # overlaps the first: the later object wins the shared row
    boxes = Prediction.from_masks(masks, np.array([[0.7], [0.6]], np.float32), False)
    painted = boxes.objects(5)
    assert (painted[0] == 1).all() and (painted[1:] == 2).all()
    assert boxes.candidate(1) == 0
    assert boxes.describe(0) == "2 object(s) · predicted IoU 0.70, 0.60"


def test_masks_are_kept_in_their_window_of_the_image():
    masks = np.zeros((1, 1, 1000, 2000), dtype=bool)
    masks[0, 0, 500:520, 1500:1530] = True
    p = Prediction.from_masks(masks, np.array([[0.8]]), False, offset=(3000, 4000),
                              image_shape=(20000, 20000))  # fmt: skip
    assert p.masks.shape == (1, 1, 20, 30)
    assert p.window == (3500, 5500, 3520, 5530) and p.image_shape == (20000, 20000)


def test_empty_masks_are_said_and_not_counted():
    masks = np.zeros((3, 1, 6, 6), dtype=bool)
    masks[0, 0, :2, :2] = True
    masks[2, 0, 3:, 3:] = True
    p = Prediction.from_masks(masks, np.array([[0.5], [0.47], [0.9]]), False)
    assert p.empty(0) == [1]
    assert p.describe(0) == "2 object(s) · predicted IoU 0.50, 0.90 · 1 box(es) gave an empty mask"
    nothing = Prediction.from_masks(np.zeros((1, 1, 6, 6), bool), np.array([[0.47]]), False)
    assert nothing.describe(0).startswith("SAM found no object here")
    assert nothing.objects(0).shape == (1, 1) and not nothing.objects(0).any()
