"""Objects into label images: ids that fit the dtype, commit modes, only-unlabeled merging."""

from __future__ import annotations

import numpy as np
import pytest

from napari_segany.annotation.labels import (
    CommitMode,
    new_label_ids,
    new_objects_in_unlabeled,
    plan_commit,
)
from napari_segany.errors import LabelIdsExhausted


def _apply(labels: np.ndarray, plan) -> np.ndarray:
    out = labels.copy()
    out[plan.indices] = plan.values
    return out


def test_a_0_255_uint8_mask_takes_new_ids_that_fit_never_wrapped_ones():
    labels = np.zeros((10, 10), np.uint8)
    labels[:5] = 255  # a thresholded mask, as most are saved
    objects = np.zeros((10, 10), np.int32)
    objects[3:8, 3:8] = 1
    for mode in (CommitMode.UNLABELED, CommitMode.OVERWRITE):
        plan = plan_commit(labels, objects, mode)
        assert plan.ids.tolist() == [1]  # 256 would wrap to 0
        out = _apply(labels, plan)
        assert out.dtype == np.uint8
        assert (out[5:8, 3:8] == 1).all()
        if mode == CommitMode.UNLABELED:
            assert (out[3:5, 3:8] == 255).all()  # existing labels untouched
        else:
            assert (out[3:5, 3:8] == 1).all()
        assert (out[:5][objects[:5] == 0] == 255).all()


def test_no_free_id_is_a_clear_refusal():
    labels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    objects = np.ones((16, 16), np.int32)
    with pytest.raises(LabelIdsExhausted, match="Convert the layer to a larger integer type"):
        plan_commit(labels, objects, CommitMode.OVERWRITE, name="'mask'")
    assert new_label_ids(np.zeros((2, 2), np.uint8), 255).tolist() == list(range(1, 256))
    ids = new_label_ids(np.array([[0, 254]], np.uint8), 2)
    assert ids.tolist() == [1, 2]  # 255 fits, 256 would not: the lowest unused instead


def test_ids_stay_contiguous_when_a_mask_is_empty_or_on_labels():
    labels = np.zeros((8, 8), np.int32)
    labels[:, :4] = 2
    objects = np.zeros((8, 8), np.int32)
    objects[:, :2] = 1  # entirely on existing labels: writes nothing in UNLABELED mode
    objects[:2, 5:] = 3  # object 2 is empty
    objects[5:, 5:] = 4
    plan = plan_commit(labels, objects, CommitMode.UNLABELED)
    assert plan.ids.tolist() == [3, 4]  # objects 3 and 4, as ids 3 and 4 after max 2
    out = _apply(labels, plan)
    assert set(np.unique(out)) == {0, 2, 3, 4}


def test_replace_redraws_the_object_under_the_point_and_spares_the_others():
    labels = np.zeros((8, 8), np.int32)
    labels[:4, :4] = 5
    labels[4:, 4:] = 6
    objects = np.zeros((8, 8), np.int32)
    objects[2:6, 2:6] = 1  # overlaps both objects and unlabeled pixels
    plan = plan_commit(labels, objects, CommitMode.REPLACE, replaced=5)
    out = _apply(labels, plan)
    assert plan.ids.tolist() == [5]
    assert ((out == 5) == ((objects == 1) & (labels != 6))).all()
    assert (out[4:, 4:] == 6).all()  # the other object keeps every pixel


def test_only_unlabeled_keeps_masks_mostly_on_free_pixels():
    labels = np.zeros((6, 6), np.int32)
    labels[:, :3] = 1
    objects = np.zeros((6, 6), np.int32)
    objects[:, 1:4] = 1  # two thirds on labels: dropped
    objects[:, 4:] = 2
    kept = new_objects_in_unlabeled(labels, objects)
    assert set(np.unique(kept)) == {0, 1} and (kept[:, 4:] == 1).all()
