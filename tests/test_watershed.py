"""The seeded watershed micro-sam's AIS grows its seeds with, pixel for pixel: bioimage-cpp's
``segmentation.watershed`` is the oracle."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from microsam_bridge import run_task
from napari_segany.watershed import quantised_levels, seeded_watershed


def _case(shape, seed, steps=None):
    rng = np.random.default_rng(seed)
    heights = ndi.gaussian_filter(rng.random(shape), 2.0)
    if steps:  # coarse heights: whole plateaus of ties for the flood order to decide
        heights = np.round(heights * steps) / steps
    mask = ndi.gaussian_filter(rng.random(shape), 3.0) > 0.49
    markers, _ = ndi.label(rng.random(shape) < 0.003)
    return heights.astype(np.float32), markers.astype(np.int64), mask


@pytest.mark.parametrize(
    "shape, seed, steps",
    [((64, 80), 0, None), ((300, 257), 1, 50), ((512, 512), 2, 20), ((7, 40, 50), 3, 30)],
)
def test_flood_equals_bioimage_cpps(shape, seed, steps):
    heights, markers, mask = _case(shape, seed, steps)
    theirs = run_task("watershed", {"heights": heights, "markers": markers, "mask": mask})
    ours = seeded_watershed(heights, markers, mask)
    assert ours.dtype == markers.dtype and ours.shape == shape
    assert (ours > 0).sum() > 0.3 * mask.sum()  # the seeds grew
    np.testing.assert_array_equal(ours, theirs["labels"])


def test_seeds_outside_the_mask_and_flat_heights_as_bioimage_cpp():
    heights, markers, mask = _case((90, 70), 4)
    markers[0:5, 0:5] = 99  # some of it outside the mask: ignored there
    flat = np.full(heights.shape, 0.25, np.float32)  # one level: the order alone decides
    for h in (heights, flat):
        theirs = run_task("watershed", {"heights": h, "markers": markers, "mask": mask})
        np.testing.assert_array_equal(seeded_watershed(h, markers, mask), theirs["labels"])
    assert not seeded_watershed(heights, markers, np.zeros_like(mask)).any()


def test_levels_are_the_quantised_heights_inside_the_mask():
    heights = np.array([[0.0, 1.0], [0.5, 7.0]], np.float32)
    mask = np.array([[True, True], [True, False]])
    levels = quantised_levels(heights, mask)
    np.testing.assert_array_equal(levels, [[0, 65535], [32767, 0]])


def test_bad_shapes_are_refused_with_a_message():
    with pytest.raises(ValueError, match="2-D or 3-D"):
        seeded_watershed(np.zeros(5), np.zeros(5, np.int64), np.ones(5, bool))
    with pytest.raises(ValueError, match="one shape"):
        seeded_watershed(np.zeros((4, 4)), np.zeros((4, 5), np.int64), np.ones((4, 4), bool))
