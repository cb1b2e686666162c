"""Committing an object that spans planes: the 2-D commit's ids and modes, all planes at once."""

from __future__ import annotations

import numpy as np
import pytest

from napari_segany.annotation.labels import CommitMode
from napari_segany.annotation.volume_labels import plan_volume_commit


def _apply(labels: np.ndarray, plan) -> np.ndarray:
    out = labels.copy()
    out[plan.indices] = plan.values
    return out


def _scene():
    labels = np.zeros((3, 6, 6), dtype=np.uint8)
    labels[:, 0:2, 0:2] = 5  # an existing object through all planes
    objects = np.zeros((3, 6, 6), dtype=np.int32)
    objects[0:2, 1:4, 1:4] = 1  # a new object over part of it
    return labels, objects


def test_a_new_object_gets_one_new_id_on_every_plane_and_leaves_labels_alone():
    labels, objects = _scene()
    plan = plan_volume_commit(labels, objects)
    out = _apply(labels, plan)
    assert list(plan.ids) == [6]
    np.testing.assert_array_equal(out == 6, (objects == 1) & (labels == 0))
    np.testing.assert_array_equal(out[labels == 5], 5)


def test_overwrite_and_replace_through_the_planes():
    labels, objects = _scene()
    out = _apply(labels, plan_volume_commit(labels, objects, CommitMode.OVERWRITE))
    np.testing.assert_array_equal(out == 6, objects == 1)
    out = _apply(labels, plan_volume_commit(labels, objects, CommitMode.REPLACE, replaced=5))
    np.testing.assert_array_equal(out == 5, objects == 1)  # object 5 is redrawn on all planes
    assert set(np.unique(out)) == {0, 5}


def test_carried_objects_keep_their_ids():
    labels, objects = _scene()
    carried = np.where(objects == 1, 5, 0)
    carried[2, 4:6, 4:6] = 7  # another object, on a plane of its own
    out = _apply(labels, plan_volume_commit(labels, carried, keep_ids=True))
    np.testing.assert_array_equal(out[labels == 5], 5)
    np.testing.assert_array_equal(
        out[(carried > 0) & (labels == 0)], carried[(carried > 0) & (labels == 0)]
    )
    plan = plan_volume_commit(labels, carried, CommitMode.REPLACE, keep_ids=True)
    out = _apply(labels, plan)
    np.testing.assert_array_equal(out == 5, carried == 5)  # its old voxels outside are cleared
    assert list(plan.ids) == [5, 7]


def test_a_volume_of_another_shape_is_refused():
    labels, objects = _scene()
    with pytest.raises(ValueError, match="pick a labels layer made for this image"):
        plan_volume_commit(labels[:, :4], objects)
