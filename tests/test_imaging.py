"""The rule that turns any image into SAM's uint8 RGB."""

from __future__ import annotations

import numpy as np
import pytest

from napari_segany import to_uint8_rgb


def test_uint8_rgb_passes_through_bit_for_bit(rng):
    image = rng.integers(0, 256, (31, 17, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8_rgb(image), image)


def test_grayscale_is_replicated_to_three_channels(rng):
    image = rng.integers(0, 256, (12, 9), dtype=np.uint8)
    out = to_uint8_rgb(image)
    assert out.shape == (12, 9, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], image)
    np.testing.assert_array_equal(to_uint8_rgb(image[..., None]), out)


def test_alpha_is_dropped(rng):
    rgba = rng.integers(0, 256, (10, 11, 4), dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8_rgb(rgba), rgba[..., :3])


def test_contrast_limits_map_to_the_full_range():
    image = np.array([[100, 200], [300, 400]], dtype=np.uint16)
    out = to_uint8_rgb(image, contrast_limits=(200, 300))[..., 0]
    np.testing.assert_array_equal(out, [[0, 0], [255, 255]])
    mid = to_uint8_rgb(np.array([[250]], dtype=np.uint16), contrast_limits=(200, 300))
    assert mid[0, 0, 0] in (127, 128)


def test_contrast_limits_also_apply_to_uint8():
    image = np.array([[10, 20, 30]], dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8_rgb(image, (10, 30))[..., 0], [[0, 128, 255]])


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.int32, np.float32, np.float64])
def test_other_dtypes_are_stretched_between_robust_percentiles(dtype, rng):
    image = rng.normal(1000, 100, (64, 64)).astype(dtype)
    image[0, 0] = (
        30000 if np.issubdtype(dtype, np.integer) or dtype in (np.float32, np.float64) else 0
    )
    out = to_uint8_rgb(image)
    assert out.dtype == np.uint8
    # One hot pixel must not squash everything else into a few grey levels.
    assert len(np.unique(out)) > 200
    assert out[0, 0, 0] == 255


def test_signed_and_negative_values():
    image = np.linspace(-500, 500, 101).reshape(1, -1).astype(np.int16)
    out = to_uint8_rgb(image, contrast_limits=(-500, 500))[0, :, 0]
    assert out[0] == 0 and out[-1] == 255 and out[50] in (127, 128)


def test_bool_is_black_and_white():
    image = np.array([[True, False]])
    np.testing.assert_array_equal(to_uint8_rgb(image)[..., 0], [[255, 0]])


def test_constant_image_becomes_black():
    assert not to_uint8_rgb(np.full((5, 5), 7.5, dtype=np.float32)).any()


def test_nan_and_inf_are_handled():
    image = np.array([[np.nan, np.inf, -np.inf, 0.0, 1.0]], dtype=np.float32)
    out = to_uint8_rgb(image, contrast_limits=(0.0, 1.0))[0, :, 0]
    np.testing.assert_array_equal(out, [0, 255, 0, 0, 255])
    # Without limits, the percentiles ignore non-finite pixels.
    out = to_uint8_rgb(np.array([[np.nan, 0.0, 0.5, 1.0]]))[0, :, 0]
    assert out[0] == 0 and out[-1] == 255


def test_all_nan_image_becomes_black():
    assert not to_uint8_rgb(np.full((3, 3), np.nan)).any()


@pytest.mark.parametrize("shape", [(4, 5, 2), (3, 4, 5, 3), (7,), (4, 5, 6)])
def test_unsupported_layouts_say_what_to_do(shape):
    with pytest.raises(ValueError, match=r"(single slice|empty|grayscale)"):
        to_uint8_rgb(np.zeros(shape, np.uint8))


def test_empty_image():
    with pytest.raises(ValueError, match="empty"):
        to_uint8_rgb(np.zeros((0, 5), np.uint8))


def test_complex_pixels_are_refused():
    with pytest.raises(ValueError, match="dtype complex"):
        to_uint8_rgb(np.zeros((3, 3), np.complex64))


def test_non_finite_contrast_limits_are_refused():
    with pytest.raises(ValueError, match="contrast_limits"):
        to_uint8_rgb(np.zeros((3, 3), np.float32), contrast_limits=(0, np.nan))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32])
def test_lookup_and_block_paths_follow_the_float_rule(dtype):
    """Every dtype maps as the rule's formula says, value for value."""
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    lo_v, hi_v = (info.min, info.max) if info else (-1e4, 1e4)
    values = np.linspace(lo_v, hi_v, 3000).astype(dtype).reshape(3, 1000)
    limits = (float(lo_v) * 0.3 + 5, float(hi_v) * 0.6)
    scale = 255.0 / (limits[1] - limits[0])
    expected = np.clip(np.round((values.astype(np.float64) - limits[0]) * scale), 0, 255)
    expected = expected.astype(np.uint8)
    np.testing.assert_array_equal(to_uint8_rgb(values, limits)[..., 0], expected)


def test_a_huge_uint8_plane_costs_its_output_only():
    """Memory stays bounded: no float copies, grayscale kept as one channel until resized."""
    import tracemalloc

    from napari_segany.imaging import to_uint8

    plane = np.full((6000, 6000), 90, np.uint8)
    assert to_uint8(plane, (0.0, 255.0)) is plane  # the layer's default limits: a view
    tracemalloc.start()
    out = to_uint8(plane, (10.0, 200.0))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.shape == plane.shape and out[0, 0] == round(80 * 255 / 190)
    assert peak < 1.2 * plane.nbytes, f"peak {peak >> 20} MiB for a {plane.nbytes >> 20} MiB plane"
    from napari_segany.imaging import intensity_range

    floats = plane.astype(np.float32)
    tracemalloc.start()
    low, high = intensity_range(floats)  # percentiles of a subsample, not of a sorted copy
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert low == high == 90.0
    assert peak < 0.75 * floats.nbytes  # a quarter of the values, copied twice at most
