"""``Predictor.set_image(image, tile_shape=..., halo=...)``: the public way in to tiling.

The model segments bright regions (``tiling_models``), so the object a click should give is
the one drawn; its input is 256 pixels, so a 700 x 900 image is "large" for it.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_segany import Predictor
from napari_segany.tiling import TiledPrediction, TiledPredictor
from napari_segany.tiling.whole_image import FULL_MASKS_MAX_PIXELS

SHAPE = (700, 900)


def picture(shape=SHAPE, centre=(400, 400), radii=(100, 115)) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    obj = ((rows - centre[0]) / radii[0]) ** 2 + ((cols - centre[1]) / radii[1]) ** 2 < 1
    image = np.full(shape, 30, np.uint8)
    image[obj] = 220
    return image, obj


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


CLICK = dict(points=np.array([[430.0, 440.0]]), labels=np.array([1]))


def test_auto_tiles_a_large_image_and_predict_gives_whole_image_masks(bright_model):
    image, obj = picture()
    predictor = Predictor(bright_model, precision="fp32")
    predictor.set_image(image, tile_shape="auto")
    assert predictor.is_image_set and predictor.original_size == SHAPE
    assert predictor.tiled.status() == "tiled 4 x 5, 0 tiles encoded"  # nothing encoded yet
    masks, scores, logits = predictor.predict(**CLICK)
    low_res = bright_model.prompt_encoder.mask_input_size
    assert masks.shape == (3, *SHAPE) and scores.shape == (3,) and logits.shape == (3, *low_res)
    # The object lies across four tiles and comes back whole, at its place in the image.
    assert iou(masks[np.argmax(scores)], obj) > 0.9
    # The same answer as the tiled predictor's own, pasted into the whole image.
    alone = TiledPredictor(Predictor(bright_model, precision="fp32"))
    alone.set_image(image)
    expected = alone.predict(**CLICK)
    np.testing.assert_array_equal(masks, expected.full_masks())
    np.testing.assert_array_equal(scores, expected.scores)


def test_explicit_tile_shape_and_halo_are_micro_sams_and_boxes_batch(bright_model):
    image, obj = picture()
    predictor = Predictor(bright_model, precision="fp32")
    predictor.set_image(image, tile_shape=(200, 200), halo=(32, 32))
    grid = predictor.tiled.grid
    assert grid.grid_shape == (4, 5) and grid.tile(6).outer == (168, 168, 432, 432)
    boxes = np.array([[300.0, 285.0, 500.0, 515.0], [20.0, 20.0, 60.0, 60.0]])
    masks, scores, logits = predictor.predict(box=boxes, multimask=False)
    assert masks.shape == (2, 1, *SHAPE) and scores.shape == (2, 1)
    assert iou(masks[0, 0], obj) > 0.9
    assert not masks[1, 0].any()  # a box on the dark background finds nothing bright


def test_previous_logits_are_decoded_in_their_own_window(bright_model):
    image, _ = picture()
    predictor = Predictor(bright_model, precision="fp32")
    predictor.set_image(image, tile_shape="auto")
    masks, scores, logits = predictor.predict(**CLICK)
    best = int(np.argmax(scores))
    again, _, _ = predictor.predict(**CLICK, mask_input=logits[best][None], multimask=False)
    alone = TiledPredictor(Predictor(bright_model, precision="fp32"))
    alone.set_image(image)
    first = alone.predict(**CLICK)
    second = alone.predict(
        **CLICK, mask_input=first.low_res_logits[first.best][None], multimask=False,
        frame=first.box,
    )  # fmt: skip
    np.testing.assert_array_equal(again, second.full_masks())


def test_images_that_fit_one_tile_are_encoded_whole_as_before(bright_model):
    image, _ = picture(shape=(300, 380), centre=(150, 190), radii=(60, 60))
    untiled = Predictor(bright_model, precision="fp32")
    untiled.set_image(image)
    auto = Predictor(bright_model, precision="fp32")
    auto.set_image(image, tile_shape="auto")  # 380 <= 1.5 x 256: not tiled
    assert auto.tiled is None
    np.testing.assert_array_equal(auto.get_image_embedding(), untiled.get_image_embedding())
    click = dict(points=np.array([[150.0, 190.0]]), labels=np.array([1]))
    for got, want in zip(auto.predict(**click), untiled.predict(**click)):
        np.testing.assert_array_equal(got, want)


def test_images_above_the_full_mask_size_answer_with_windows(bright_model):
    side = int(np.sqrt(FULL_MASKS_MAX_PIXELS)) + 4
    image = np.full((side, side), 30, np.uint8)
    image[2000:2100, 3000:3120] = 220
    predictor = Predictor(bright_model, precision="fp32")
    predictor.set_image(image, tile_shape="auto")
    result = predictor.predict(points=np.array([[2050.0, 3060.0]]), labels=np.array([1]))
    assert isinstance(result, TiledPrediction)
    assert result.masks.shape[1:] != (side, side)  # a window, not the whole image
    r0, c0, r1, c1 = result.box
    drawn = image[r0:r1, c0:c1] > 128
    assert iou(result.masks[result.best], drawn) > 0.9
    assert predictor.tiled.status().endswith("1 tile encoded")


def test_a_tiled_image_is_replaced_by_an_untiled_one(bright_model):
    image, _ = picture()
    predictor = Predictor(bright_model, precision="fp32")
    predictor.set_image(image, tile_shape="auto")
    small, _ = picture(shape=(200, 200), centre=(100, 100), radii=(40, 40))
    predictor.set_image(small)
    assert predictor.tiled is None and predictor.original_size == (200, 200)
    masks, _, _ = predictor.predict(points=np.array([[100.0, 100.0]]), labels=np.array([1]))
    assert masks.shape == (3, 200, 200)


def test_bad_tiling_requests_say_what_to_do(bright_model):
    image, _ = picture()
    predictor = Predictor(bright_model, precision="fp32")
    with pytest.raises(ValueError, match="without a tile_shape"):
        predictor.set_image(image, halo=32)
    with pytest.raises(ValueError, match="needs a halo"):
        predictor.set_image(image, tile_shape=200)
    with pytest.raises(ValueError, match="smaller than tile_shape"):
        predictor.set_image(image, tile_shape=200, halo=200)
    predictor.set_image(image, tile_shape="auto")
    with pytest.raises(ValueError, match="nothing was predicted"):
        predictor.predict(**CLICK, mask_input=np.zeros((1, 256, 256), np.float32))
    with pytest.raises(ValueError, match="This image is tiled"):
        predictor.get_image_embedding()
