"""Prompts as napari layers hold them, for one slice of an n-D image."""

from __future__ import annotations

import numpy as np

from napari_segany.annotation.prompts import on_slice, points_on_slice, rectangles_on_slice


def test_points_of_the_displayed_slice_only():
    coords = np.array([[0, 10, 20], [1, 30, 40], [1.2, 50, 60], [2, 5, 5]])
    points, labels = points_on_slice(coords, np.array([True, True, False, True]), (1,))
    np.testing.assert_array_equal(points, [[30, 40], [50, 60]])
    assert labels.tolist() == [1, 0]
    assert on_slice(coords, ()).all()


def test_rectangles_in_any_direction_become_min_max_boxes():
    upside_down = np.array([[40.0, 60], [40, 10], [10, 10], [10, 60]])
    other_slice = np.array([[3, 0, 0], [3, 5, 0], [3, 5, 5], [3, 0, 5]], float)
    boxes = rectangles_on_slice([upside_down], ())
    np.testing.assert_array_equal(boxes, [[10, 10, 40, 60]])
    assert rectangles_on_slice([other_slice], (2,)).shape == (0, 4)
