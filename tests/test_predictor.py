"""Predictor at the numpy level: inputs as scientists have them, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from napari_segany import Predictor

POINT = np.array([[30.0, 40.0]])
POSITIVE = np.array([1])


@pytest.fixture
def predictor(tiny_model):
    return Predictor(tiny_model)


@pytest.fixture
def image(rng):
    rows, cols = np.mgrid[0:90, 0:120]
    gray = 128 + 90 * np.sin(rows / 9.0) * np.cos(cols / 13.0) + rng.normal(0, 10, (90, 120))
    return np.clip(gray, 0, 255).astype(np.uint8)


def _masks(predictor, image, contrast_limits=None):
    predictor.set_image(image, contrast_limits=contrast_limits)
    return predictor.predict(POINT, POSITIVE)


def test_outputs_have_documented_shapes_and_types(predictor, image):
    masks, scores, logits = _masks(predictor, image)
    assert masks.shape == (3, 90, 120) and masks.dtype == np.bool_
    assert scores.shape == (3,) and scores.dtype == np.float32
    assert logits.shape == (3, 256, 256) and logits.dtype == np.float32
    single = predictor.predict(POINT, POSITIVE, multimask=False)
    assert single[0].shape == (1, 90, 120)


def test_grayscale_equals_its_rgb_replica(predictor, image):
    gray = _masks(predictor, image)
    rgb = _masks(predictor, np.repeat(image[..., None], 3, axis=2))
    np.testing.assert_array_equal(gray[0], rgb[0])
    np.testing.assert_allclose(gray[1], rgb[1])


def test_rgba_alpha_is_ignored(predictor, image):
    rgb = np.stack([image, image[::-1], image[:, ::-1]], axis=-1)
    rgba = np.concatenate([rgb, np.zeros_like(image)[..., None]], axis=-1)
    np.testing.assert_array_equal(_masks(predictor, rgba)[0], _masks(predictor, rgb)[0])


def test_uint16_with_contrast_limits_matches_the_uint8_view(predictor, image):
    wide = image.astype(np.uint16) * 100 + 1000
    via_limits = _masks(predictor, wide, contrast_limits=(1000, 1000 + 255 * 100))
    np.testing.assert_array_equal(via_limits[0], _masks(predictor, image)[0])


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.int32, np.float32, np.float64, np.bool_])
def test_any_dtype_segments(predictor, image, dtype):
    data = (
        (image > 128) if dtype is np.bool_ else (image.astype(np.float64) * 3 - 200).astype(dtype)
    )
    masks, scores, _ = _masks(predictor, data)
    assert masks.shape == (3, 90, 120) and np.all(np.isfinite(scores))


def test_float_image_in_unit_range_matches_uint8(predictor, image):
    scaled = _masks(predictor, image.astype(np.float32) / 255.0, contrast_limits=(0.0, 1.0))
    np.testing.assert_array_equal(scaled[0], _masks(predictor, image)[0])


def test_constant_and_nan_images_do_not_break(predictor):
    for data in (np.full((50, 60), 3.0), np.full((50, 60), np.nan), np.zeros((50, 60), np.uint8)):
        masks, scores, _ = _masks(predictor, data)
        assert masks.shape == (3, 50, 60) and np.all(np.isfinite(scores))


def test_nan_pixels_are_treated_as_black(predictor, image):
    with_nan = image.astype(np.float32)
    with_nan[:10] = np.nan
    filled = image.astype(np.float32)
    filled[:10] = 0.0
    np.testing.assert_array_equal(
        _masks(predictor, with_nan, (0, 255))[0], _masks(predictor, filled, (0, 255))[0]
    )


def test_box_drawn_in_any_direction_is_the_same_box(predictor, image):
    predictor.set_image(image)
    forward = predictor.predict(box=np.array([10, 20, 60, 100]))
    backward = predictor.predict(box=np.array([60, 100, 10, 20]))
    mixed = predictor.predict(box=np.array([60, 20, 10, 100]))
    np.testing.assert_array_equal(forward[0], backward[0])
    np.testing.assert_array_equal(forward[0], mixed[0])


def test_batched_boxes_gain_a_leading_axis(predictor, image):
    predictor.set_image(image)
    boxes = np.array([[10, 20, 60, 100], [5, 5, 40, 40]])
    masks, scores, logits = predictor.predict(box=boxes)
    assert (
        masks.shape == (2, 3, 90, 120)
        and scores.shape == (2, 3)
        and logits.shape == (2, 3, 256, 256)
    )
    one = predictor.predict(box=boxes[:1])
    assert one[0].shape == (1, 3, 90, 120)
    with_points = predictor.predict(POINT, POSITIVE, box=boxes, multimask=False)
    assert with_points[0].shape == (2, 1, 90, 120)


def test_saved_embedding_gives_the_same_masks_without_encoding(predictor, tiny_model, image):
    predictor.set_image(image)
    expected = predictor.predict(POINT, POSITIVE)
    state = predictor.get_embedding_state()
    fresh = Predictor(tiny_model)
    fresh.set_image_embedding(state.features, state.original_size)
    again = fresh.predict(POINT, POSITIVE)
    np.testing.assert_array_equal(again[0], expected[0])
    np.testing.assert_allclose(again[1], expected[1])


def test_images_of_changing_sizes_each_get_masks_of_their_own_size(tiny_model, image):
    # One predictor going through the planes of a stack, then a smaller image, then back:
    # each answer is what a fresh predictor gives for that image (nothing of the last
    # image's size is kept where it does not fit).
    shared = Predictor(tiny_model, precision="fp32")
    for picture in (image, np.flipud(image), image[:50, :70], image.T, image):
        shared.set_image(picture)
        masks, scores, _ = shared.predict(POINT, POSITIVE)
        fresh = Predictor(tiny_model, precision="fp32")
        fresh.set_image(picture)
        expected, expected_scores, _ = fresh.predict(POINT, POSITIVE)
        assert masks.shape[1:] == picture.shape
        np.testing.assert_array_equal(masks, expected)
        np.testing.assert_array_equal(scores, expected_scores)


def test_embedding_of_another_shape_is_refused(predictor):
    with pytest.raises(ValueError, match="another model"):
        predictor.set_image_embedding(np.zeros((1, 128, 32, 32), np.float32), (100, 100))


def test_predict_before_set_image(predictor):
    with pytest.raises(ValueError, match="set_image"):
        predictor.predict(POINT, POSITIVE)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "No prompt"),
        ({"points": POINT}, "need labels"),
        ({"points": POINT, "labels": np.array([1, 0])}, "one label per point"),
        ({"points": np.array([1.0, 2.0]), "labels": POSITIVE}, r"shape \(N, 2\)"),
        ({"points": POINT, "labels": np.array([2])}, "1 \\(foreground\\) or 0"),
        ({"points": np.array([[100.0, 40.0]]), "labels": POSITIVE}, "outside the 90 x 120 image"),
        ({"points": np.array([[-3.0, 40.0]]), "labels": POSITIVE}, "outside"),
        ({"points": np.array([[np.nan, 40.0]]), "labels": POSITIVE}, "NaN"),
        ({"box": np.array([0, 0, 10])}, "min_row, min_col"),
        ({"box": np.array([0, 0, 95, 10])}, "outside"),
        ({"labels": POSITIVE}, "without points"),
        ({"points": POINT, "labels": POSITIVE, "mask_input": np.zeros((256, 256))}, "mask_input"),
    ],
)
def test_bad_prompts_get_clear_messages(predictor, image, kwargs, message):
    predictor.set_image(image)
    with pytest.raises(ValueError, match=message):
        predictor.predict(**kwargs)


def test_points_on_the_pixel_edge_of_the_border_are_accepted(predictor, image):
    predictor.set_image(image)
    masks, _, _ = predictor.predict(np.array([[-0.5, -0.5], [89.5, 119.5]]), np.array([1, 1]))
    assert masks.shape == (3, 90, 120)


def test_a_mask_prompt_alone_is_a_prompt(predictor, image):
    predictor.set_image(image)
    _, scores, logits = predictor.predict(POINT, POSITIVE)
    masks, _, _ = predictor.predict(mask_input=logits[np.argmax(scores)][None], multimask=False)
    assert masks.shape == (1, 90, 120)


def test_stack_is_refused_with_advice(predictor):
    with pytest.raises(ValueError, match="single slice"):
        predictor.set_image(np.zeros((5, 40, 40), np.uint16))


@pytest.mark.parametrize("shape", [(1, 1), (1, 3000), (3000, 2), (2, 5)])
def test_extreme_aspect_ratios_and_tiny_images(predictor, shape):
    image = np.random.default_rng(1).integers(0, 255, shape, dtype=np.uint8)
    predictor.set_image(image)
    masks, scores, _ = predictor.predict(np.array([[0.0, 0.0]]), np.array([1]))
    assert masks.shape == (3, *shape) and np.all(np.isfinite(scores))


def test_encoding_reports_each_encoder_block(predictor, image):
    steps = []
    predictor.set_image(image, progress=lambda done, total: steps.append((done, total)))
    depth = len(predictor.model.image_encoder.blocks)
    assert steps == [(i, depth) for i in range(depth + 1)]
    predictor.set_image(image)  # the hooks are gone afterwards
    assert len(steps) == depth + 1
