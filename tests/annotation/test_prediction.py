"""Which candidate the user sees, and how it is described."""

from __future__ import annotations

import numpy as np

from napari_segany.annotation.prediction import Prediction


def _click() -> Prediction:
    masks = np.zeros((1, 3, 4, 5), dtype=bool)
    for m in range(3):
        masks[0, m, m] = True  # candidate m covers row m
    return Prediction(masks=masks, scores=np.array([[0.2, 0.9, 0.5]], np.float32), multimask=True)


def test_a_click_shows_candidates_from_the_best_predicted_iou_down_and_wraps():
    click = _click()
    assert [click.candidate(rank) for rank in range(4)] == [1, 2, 0, 1]
    shown = click.objects(0)
    assert shown.dtype == np.int32 and shown[1].all() and shown.sum() == 5
    assert click.objects(1)[2].all() and click.objects(3)[1].all()
    assert click.describe(0) == "1 of 3 (best) · predicted IoU 0.90"
    assert click.describe(2) == "3 of 3 · predicted IoU 0.20"


def test_boxes_paint_one_id_per_object_and_list_their_ious():
    masks = np.zeros((2, 1, 4, 5), dtype=bool)
    masks[0, 0, :2] = True
    masks[1, 0, 1:] = True  # overlaps the first: the later object wins the shared row
    boxes = Prediction(masks=masks, scores=np.array([[0.7], [0.6]], np.float32), multimask=False)
    painted = boxes.objects(5)
    assert (painted[0] == 1).all() and (painted[1:] == 2).all()
    assert boxes.candidate(1) == 0
    assert boxes.describe(0) == "2 object(s) · predicted IoU 0.70, 0.60"
