"""The distance map propagation puts its points on equals scipy's, bit for bit, on every kind of
boundary: speckled (the fast path), smooth and sparse (scipy's), and the edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_segany.distance import feature_distance


def scipy_distance(features: np.ndarray) -> np.ndarray:
    return ndimage.distance_transform_edt(~features).astype(np.float32)


def assert_same(features: np.ndarray) -> None:
    got = feature_distance(features)
    assert got.dtype == np.float32 and got.shape == features.shape
    np.testing.assert_array_equal(got, scipy_distance(features))


@pytest.mark.parametrize("density", [0.002, 0.01, 0.05, 0.2, 0.5, 0.95])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_features_of_any_density_and_shape(density: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(20):
        h, w = (int(v) for v in rng.integers(1, 90, 2))
        assert_same(rng.random((h, w)) < density)


def test_a_speckled_boundary_at_full_size() -> None:
    """A random-weight SAM mask is pixel noise over the plane: every pixel near the boundary."""
    rng = np.random.default_rng(3)
    mask = ndimage.binary_opening(rng.random((512, 384)) < 0.5)
    grown = ndimage.binary_dilation(mask)
    assert_same(grown & ~mask)


def test_nearest_features_just_beyond_each_reach() -> None:
    """Features spaced so the farthest pixel sits exactly at, and one past, a window's edge."""
    for spacing in range(2, 22):
        features = np.zeros((70, 75), bool)
        features[::spacing, ::spacing] = True
        assert_same(features)
        assert_same(features[:, ::-1])
        assert_same(features.T.copy())


def test_a_disc_boundary_far_from_its_centre() -> None:
    rows, cols = np.mgrid[:200, :160]
    disc = (rows - 100) ** 2 + (cols - 80) ** 2 < 70**2
    grown = ndimage.binary_dilation(disc)
    assert_same(grown & ~disc)


@pytest.mark.parametrize(
    "features",
    [
        np.zeros((5, 7), bool),  # no feature: scipy's virtual border
        np.ones((5, 7), bool),
        np.eye(1, 9, 4, dtype=bool),
        np.eye(9, 1, 4, dtype=bool),
        np.ones((1, 1), bool),
        np.zeros((1, 1), bool),
    ],
    ids=["none", "all", "one-row", "one-column", "one-pixel", "one-empty-pixel"],
)
def test_edge_cases(features: np.ndarray) -> None:
    assert_same(features)


def test_refuses_an_array_that_is_not_2d() -> None:
    with pytest.raises(ValueError, match="2-D"):
        feature_distance(np.zeros((2, 3, 4), bool))
