"""Objects that cross tile borders come back whole; tiles are encoded when needed, once.

The model here segments bright regions whatever the prompt (``tiling_models``), so what a mask
should be is known: the bright object drawn in the image.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_segany import Predictor
from napari_segany.tiling import TiledPredictor

SHAPE = (700, 900)
TILE, HALO = (200, 200), (32, 32)  # outer tiles of 264 pixels for a 256-pixel model


def ellipse(shape, centre, radii) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return ((rows - centre[0]) / radii[0]) ** 2 + ((cols - centre[1]) / radii[1]) ** 2 < 1


def picture(obj: np.ndarray) -> np.ndarray:
    image = np.full(obj.shape, 30, np.uint8)
    image[obj] = 220
    return image


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def tiled(model, image, follow=True, **kwargs) -> TiledPredictor:
    tp = TiledPredictor(Predictor(model, precision="fp32"), follow_cut_objects=follow)
    tp.set_image(image, tile_shape=TILE, halo=HALO, **kwargs)
    return tp


def best_full(result) -> np.ndarray:
    return result.full_masks()[result.best]


def touches_cutting_edge(result, grid) -> bool:
    from napari_segany.tiling.routing import touched_cut_sides

    return any(touched_cut_sides(result.masks[result.best], result.box, grid))


# An object of 200 x 230 pixels astride the corner of four tiles (rows and cols 400).
OBJECT = ellipse(SHAPE, (400, 400), (100, 115))


def test_an_object_across_tile_borders_comes_back_whole(bright_model):
    image = picture(OBJECT)
    click = dict(points=np.array([[430.0, 440.0]]), labels=np.array([1]))
    cut = tiled(bright_model, image, follow=False).predict(**click)
    assert touches_cutting_edge(cut, tiled(bright_model, image).grid)
    assert iou(best_full(cut), OBJECT) < 0.7  # the tile alone cuts it (micro-sam's answer)
    tp = tiled(bright_model, image)
    whole = tp.predict(**click)
    assert whole.tile is None and not touches_cutting_edge(whole, tp.grid)
    assert iou(best_full(whole), OBJECT) > 0.9


def test_boxes_and_spread_points_use_their_whole_extent(bright_model):
    image = picture(OBJECT)
    tp = tiled(bright_model, image)
    box = tp.predict(box=np.array([300.0, 285.0, 500.0, 515.0]))
    points = tp.predict(points=np.array([[320.0, 330.0], [480.0, 470.0]]), labels=np.array([1, 1]))
    for result in (box, points):
        r0, c0, r1, c1 = result.box
        assert r0 <= 300 and c0 <= 285 and r1 > 500 and c1 > 515  # holds the whole prompt
        assert iou(best_full(result), OBJECT) > 0.9


def test_an_object_as_large_as_the_input_is_not_cut(bright_model):
    # 240 pixels across (the input is 256), cut by the left edge of tile 7 (which holds the click).
    obj = ellipse(SHAPE, (300, 500), (80, 120))
    tp = tiled(bright_model, picture(obj))
    result = tp.predict(points=np.array([[300.0, 420.0]]), labels=np.array([1]))
    assert iou(best_full(result), obj) > 0.9
    assert not touches_cutting_edge(result, tp.grid)


def test_an_object_inside_its_tile_stays_in_the_tile(bright_model):
    obj = ellipse(SHAPE, (300, 300), (40, 50))  # well inside tile 6's outer block
    tp = tiled(bright_model, picture(obj))
    result = tp.predict(points=np.array([[300.0, 300.0]]), labels=np.array([1]))
    assert result.tile == 6 and result.box == tp.grid.tile(6).outer
    assert iou(best_full(result), obj) > 0.85


def test_a_prompt_larger_than_any_window_is_refused(bright_model):
    image = picture(OBJECT)
    tp = tiled(bright_model, np.tile(image, (2, 2)))
    with pytest.raises(ValueError, match="largest window"):
        tp.predict(box=np.array([10.0, 10.0, 1300.0, 1700.0]))


def test_tiles_are_encoded_on_demand_once(bright_model):
    image = picture(ellipse(SHAPE, (300, 300), (40, 50)))
    tp = tiled(bright_model, image)
    assert tp.status() == "tiled 4 x 5, 0 tiles encoded"
    click = dict(points=np.array([[300.0, 300.0]]), labels=np.array([1]))
    assert list(_steps(tp.iter_predict(**click))) == [(0, 1), (1, 1)]
    assert tp.status() == "tiled 4 x 5, 1 tile encoded"
    assert list(_steps(tp.iter_predict(**click))) == []  # encoded: no work but the decoder
    far = dict(points=np.array([[650.0, 850.0]]), labels=np.array([1]))
    assert list(_steps(tp.iter_predict(**far))) == [(0, 1), (1, 1)]
    assert len(tp.encoded_tiles()) == 2


def test_encode_all_reports_progress_and_can_be_cancelled(bright_model):
    tp = tiled(bright_model, picture(OBJECT))
    steps = tp.iter_encode_tiles()
    assert next(steps) == (0, 20)
    assert next(steps) == (1, 20)
    assert next(steps) == (2, 20)
    steps.close()  # cancel between two tiles
    assert tp.encoded_tiles() == [0, 1]
    seen = []
    assert tp.encode_tiles(progress=lambda done, total: seen.append((done, total))) == 18
    assert seen[0] == (0, 18) and seen[-1] == (18, 18)
    assert tp.status() == "tiled 4 x 5, 20 tiles encoded"
    click = dict(points=np.array([[430.0, 440.0]]), labels=np.array([1]))
    assert list(_steps(tp.iter_predict(**click, frame=tp.grid.tile(7).outer))) == []


def test_saved_tile_embeddings_are_used_without_encoding(bright_model):
    image = picture(OBJECT)
    first = tiled(bright_model, image, follow=False)
    first.encode_tiles([6, 7])
    saved = {i: first.tile_embedding(i) for i in first.encoded_tiles()}
    second = tiled(bright_model, image, follow=False, embeddings=dict(saved))
    click = dict(points=np.array([[300.0, 300.0]]), labels=np.array([1]))
    assert list(_steps(second.iter_predict(**click))) == []
    np.testing.assert_array_equal(second.predict(**click).masks, first.predict(**click).masks)
    third = tiled(bright_model, image, follow=False)
    third.set_tile_embedding(6, saved[6])
    assert third.encoded_tiles() == [6]
    with pytest.raises(ValueError, match="another image or tiling"):
        third.set_tile_embedding(0, saved[6])  # tile 0 is a smaller, clipped corner tile


def test_k_boxes_give_one_prediction_each_in_its_own_frame(bright_model):
    objects = ellipse(SHAPE, (100, 100), (40, 40)) | ellipse(SHAPE, (600, 800), (40, 40))
    tp = tiled(bright_model, picture(objects))
    results = tp.predict(box=np.array([[60.0, 60, 140, 140], [560, 760, 640, 840]]))
    assert isinstance(results, list) and len(results) == 2
    assert results[0].box != results[1].box
    for result, centre in zip(results, [(100, 100), (600, 800)]):
        assert iou(best_full(result), ellipse(SHAPE, centre, (40, 40))) > 0.8


def test_bad_prompts_are_refused_clearly(bright_model):
    tp = tiled(bright_model, picture(OBJECT))
    with pytest.raises(ValueError, match="outside the 700 x 900 image"):
        tp.predict(points=np.array([[800.0, 10.0]]), labels=np.array([1]))
    with pytest.raises(ValueError, match="No prompt"):
        tp.predict()
    with pytest.raises(ValueError, match="one label per point"):
        tp.predict(points=np.array([[8.0, 10.0]]), labels=np.array([1, 0]))
    with pytest.raises(ValueError, match="not a block of the"):
        tp.predict(points=np.array([[8.0, 10.0]]), labels=np.array([1]), frame=(0, 0, 800, 10))
    with pytest.raises(ValueError, match="reach outside the frame"):
        tp.predict(points=np.array([[300.0, 10.0]]), labels=np.array([1]), frame=(0, 0, 200, 200))
    logits = np.zeros((1, 64, 64), np.float32)
    with pytest.raises(ValueError, match="one object at a time"):
        tp.predict(
            box=np.array([[0.0, 0, 9, 9], [1, 1, 8, 8]]), mask_input=logits, frame=(0, 0, 232, 232)
        )
    with pytest.raises(ValueError, match="No image"):
        TiledPredictor(tp.predictor).predict(points=np.array([[1.0, 1.0]]), labels=np.array([1]))


def _steps(generator):
    """The (done, total) steps a generator yields before it returns."""
    yield from generator
