"""From a widget's prompts to a propagation's seeds: prompted planes, stop marks, and the
embeddings a propagation shares with the session's cache."""

from __future__ import annotations

import numpy as np

from napari_segany import Predictor, segment_volume
from napari_segany.embeddings import EmbeddingCache
from napari_segany.volumes.plane_cache import CachedPlanes
from napari_segany.volumes.seeding import (
    is_stop,
    planes_of,
    prompted_planes,
    seeds_with_stops,
    stack_key,
    stop_marks,
)


def test_prompted_planes_are_those_of_the_displayed_stack_only():
    # (t, z, row, col) points: two on the stack t=1, one on another time point.
    points = np.array([[1, 3, 10, 10], [1, 5.2, 4, 4], [0, 7, 1, 1]], dtype=float)
    on_t1 = [[1, 2, 0, 0], [1, 2, 0, 9], [1, 2, 9, 9], [1, 2, 9, 0]]
    on_t0 = [[0, 6, 0, 0], [0, 6, 0, 9], [0, 6, 9, 9], [0, 6, 9, 0]]
    rectangles = [np.array(on_t1, float), np.array(on_t0, float)]
    assert prompted_planes(points, rectangles, (1, 4), axis=1) == [2, 3, 5]
    assert list(planes_of(points, (1, 4), axis=1)) == [3, 5, -1]
    # Through t instead, at z = 7: only the point on (0, 7).
    assert prompted_planes(points, rectangles, (1, 7), axis=0) == [0]
    assert stack_key((1, 4), 1, 6) == (1, 6)


def test_stop_marks_end_the_object_beyond_its_seeds_and_are_ignored_between():
    marks = stop_marks([4, 6], [1, 2, 5, 9, 8])
    assert (marks.seeds, marks.lower, marks.upper, marks.ignored) == ((4, 6), 2, 8, (5,))
    assert stop_marks([4], []).lower is None
    assert is_stop(np.array([0]), 0) and is_stop(np.array([0, 0]), 0)
    assert not is_stop(np.array([0, 1]), 0) and not is_stop(np.array([0]), 1)
    assert not is_stop(np.zeros(0), 0)


def test_stop_planes_become_empty_seeds_and_flags():
    mask = np.ones((4, 5), dtype=bool)
    seeds, lower, upper = seeds_with_stops({3: mask}, stop_marks([3], [6]), (4, 5))
    assert set(seeds) == {3, 6} and not seeds[6].any() and (lower, upper) == (False, True)


def test_a_propagation_through_the_cache_encodes_each_plane_once(tiny_model):
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 255, (4, 40, 48), dtype=np.uint8)
    predictor = Predictor(tiny_model, precision="fp32")
    encoded = []
    original = predictor.set_image

    def counting(image, *args, **kwargs):
        encoded.append(image.copy())
        return original(image, *args, **kwargs)

    predictor.set_image = counting
    cache = EmbeddingCache()
    planes = CachedPlanes(cache, lambda z: ("volume", z))
    seed = np.zeros((40, 48), dtype=bool)
    seed[10:30, 12:36] = True
    first, _ = segment_volume(predictor, volume, {1: seed}, iou_threshold=0.0, embeddings=planes)
    # The planes it segmented went into the cache (the seed's plane is never decoded).
    assert len(encoded) == len(cache) == 3 and sorted(planes) == [0, 2, 3]
    again, _ = segment_volume(
        predictor, volume, {1: seed}, iou_threshold=0.0,
        embeddings=CachedPlanes(cache, lambda z: ("volume", z)),
    )  # fmt: skip
    assert len(encoded) == 3  # the second run found every plane in the cache
    np.testing.assert_array_equal(again, first)
