"""Every tile is mapped to uint8 with the whole image's mapping, as the untiled image is."""

from __future__ import annotations

import numpy as np
import pytest

from napari_segany.imaging import to_uint8_rgb
from napari_segany.tiling import SourceImage, TiledPredictor, whole_image_range


def images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    with_nan = rng.normal(size=(120, 90))
    with_nan[rng.random(with_nan.shape) < 0.3] = np.nan
    with_nan[0, :3] = [np.inf, -np.inf, np.inf]
    return [
        rng.normal(100, 30, (301, 457)).astype(np.float32),
        rng.integers(0, 4000, (151, 203)).astype(np.uint16),
        rng.integers(-5000, 4000, (151, 203, 3)).astype(np.int32),
        rng.normal(0, 1, (97, 89, 4)),
        rng.integers(-100, 100, (50, 60, 1)).astype(np.int16),
        with_nan,
    ]


def test_blocks_are_mapped_as_the_whole_image_is():
    for image in images():
        source = SourceImage(image)
        whole = to_uint8_rgb(image)
        np.testing.assert_array_equal(source.rgb((0, 0, *image.shape[:2])), whole)
        np.testing.assert_array_equal(source.rgb((10, 20, 40, 70)), whole[10:40, 20:70])


def test_arrays_that_are_not_numpy_are_read_as_a_sample():
    class Lazy:  # an array-like in the manner of zarr or dask: shape, dtype and slicing
        def __init__(self, data):
            self.data, self.shape, self.dtype = data, data.shape, data.dtype

        def __getitem__(self, key):
            return np.array(self.data[key])

        @property
        def ndim(self):
            return self.data.ndim

    image = np.random.default_rng(3).normal(0, 1, (300, 200)).astype(np.float32)
    assert whole_image_range(Lazy(image)) == whole_image_range(image)


def test_uint8_and_bool_pass_through_and_contrast_limits_win():
    assert whole_image_range(np.zeros((5, 5), np.uint8)) is None
    assert whole_image_range(np.zeros((5, 5), bool)) is None
    assert whole_image_range(np.zeros((5, 5), np.uint8), (10, 20)) == (10.0, 20.0)
    with pytest.raises(ValueError, match="finite"):
        whole_image_range(np.zeros((5, 5), np.uint16), (0, np.nan))
    assert whole_image_range(np.full((4, 4), np.nan)) == (0.0, 0.0)


def test_a_tile_looks_as_it_does_in_the_whole_image(tiny_model):
    from napari_segany import Predictor

    # A dark half and a bright half: each tile normalised on its own (as micro-sam does)
    # would stretch both to the full range, and one cell would look different in two tiles.
    rng = np.random.default_rng(1)
    image = rng.integers(1000, 2000, (700, 900)).astype(np.uint16)
    image[:, 450:] += 20000
    tp = TiledPredictor(Predictor(tiny_model, precision="fp32"))
    for limits in (None, (500, 30000)):
        tp.set_image(image, contrast_limits=limits, tile_shape=(350, 450), halo=(50, 50))
        whole = to_uint8_rgb(image, limits)
        for tile in tp.grid:
            r0, c0, r1, c1 = tile.outer
            np.testing.assert_array_equal(tp.tile_rgb(tile.index), whole[r0:r1, c0:c1])


def test_bad_images_are_refused_clearly():
    with pytest.raises(ValueError, match="one 2-D plane"):
        SourceImage(np.zeros((4, 5, 6, 7)))
    with pytest.raises(ValueError, match="dtype"):
        SourceImage(np.zeros((4, 5), dtype=complex))
    with pytest.raises(ValueError, match="empty"):
        SourceImage(np.zeros((0, 5)))
