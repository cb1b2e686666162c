"""Clicks on tiled images against the oracle: Meta's ``SamPredictor`` given the same uint8 crop.

A prompt decoded in a tile (or a window) must give exactly what the reference SAM gives for
that block of the image, pasted back at its place. The images are not square and their sides
are not multiples of the tile, so edge tiles are smaller than the others.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_segany import Predictor
from napari_segany.tiling import TiledPredictor
from oracle import oracle_image, ref_predict

# (image shape, tile_shape, halo): 3 x 3 tiles whose last row is no thicker than the halo;
# 3 x 4 small tiles.
TILINGS = [((1100, 1500), (500, 600), (100, 120)), ((917, 1333), (384, 384), (64, 64))]


@pytest.fixture(scope="module")
def reference_predictor(tiny_reference):
    from segment_anything import SamPredictor

    predictor = SamPredictor(tiny_reference[0])
    predictor.block = None
    return predictor


def answering_tile(grid, index: int) -> int:
    """The tile that answers clicks in ``index``'s inner block: itself, or the one before it
    along an axis where it is the last tile and no thicker than the halo (that one reaches the
    image's edge and holds this inner block with more room; see ``routing.choose_tile``)."""
    (row, col), (rows, cols) = grid.tile(index).position, grid.grid_shape
    r0, c0, r1, c1 = grid.tile(index).inner
    if row == rows - 1 and row > 0 and r1 - r0 <= grid.halo[0]:
        row -= 1
    if col == cols - 1 and col > 0 and c1 - c0 <= grid.halo[1]:
        col -= 1
    return row * cols + col


def tiled(tiny_model, image, tile_shape, halo, follow=False) -> TiledPredictor:
    tp = TiledPredictor(Predictor(tiny_model, precision="fp32"), follow_cut_objects=follow)
    tp.set_image(image, tile_shape=tile_shape, halo=halo)
    return tp


def reference_on(ref, image, box, prompt):
    """The reference's masks, scores, low-res logits and full-size logits for ``prompt`` (in
    whole-image pixels) on the block ``box`` of ``image``."""
    r0, c0, r1, c1 = box
    if getattr(ref, "block", None) != box:  # encoding is the slow part: once per block
        ref.set_image(image[r0:r1, c0:c1])
        ref.block = box
    local = dict(prompt)
    if local.get("points") is not None:
        local["points"] = local["points"] - [r0, c0]
    if local.get("box") is not None:
        local["box"] = local["box"] - [r0, c0, r0, c0]
    masks, scores, low_res = ref_predict(ref, **local)
    xy = None if local.get("points") is None else local["points"][:, ::-1].copy()
    xyxy = None if local.get("box") is None else local["box"][[1, 0, 3, 2]]
    logits, _, _ = ref.predict(
        xy, local.get("labels"), xyxy, local.get("mask_input"),
        multimask_output=local.get("multimask", True), return_logits=True,
    )  # fmt: skip
    return masks, scores, low_res, logits


def assert_same_as_reference(result, reference, image_shape):
    """Same masks (a pixel may differ only where the reference's logit is within float
    rounding of the threshold), same scores and logits, pasted at the frame's place."""
    masks, scores, low_res, logits = reference
    assert result.masks.dtype == np.bool_ and result.masks.shape == masks.shape
    differ = result.masks != masks
    assert np.all(np.abs(logits[differ]) < 1e-3), f"{differ.sum()} pixels differ"
    np.testing.assert_allclose(result.scores, scores, atol=1e-5)
    np.testing.assert_allclose(result.low_res_logits, low_res, atol=1e-4)
    assert 0.0 < masks.mean() < 1.0  # random weights still give non-trivial masks
    full = result.full_masks()
    r0, c0, r1, c1 = result.box
    assert full.shape == (masks.shape[0], *image_shape)
    np.testing.assert_array_equal(full[:, r0:r1, c0:c1], result.masks)
    assert not full[:, :r0].any() and not full[:, r1:].any()
    assert not full[:, :, :c0].any() and not full[:, :, c1:].any()


def inner_prompts(tile):
    """Prompts of every kind inside ``tile``'s inner block."""
    r0, c0, r1, c1 = tile.inner
    h, w = r1 - r0, c1 - c0

    def at(fr, fc):
        return [r0 + fr * h, c0 + fc * w]

    return {
        "point": dict(points=np.array([at(0.4, 0.6)]), labels=np.array([1])),
        "points": dict(points=np.array([at(0.2, 0.3), at(0.7, 0.8)]), labels=np.array([1, 0])),
        "box": dict(box=np.array([*at(0.1, 0.2), *at(0.8, 0.9)])),
        "box and points": dict(
            box=np.array([*at(0.15, 0.1), *at(0.9, 0.7)]),
            points=np.array([at(0.5, 0.4), at(0.3, 0.6)]),
            labels=np.array([1, 0]),
            multimask=False,
        ),
    }


@pytest.mark.parametrize("shape, tile_shape, halo", TILINGS)
def test_prompts_in_an_inner_block_give_the_reference_on_that_outer_tile(
    tiny_model, reference_predictor, shape, tile_shape, halo
):
    image = oracle_image(shape, seed=shape[0])
    tp = tiled(tiny_model, image, tile_shape, halo)
    rows, cols = tp.grid.grid_shape
    # A corner tile, an edge tile (clipped, smaller) and an interior one.
    for index in (0, cols * rows - 1, cols + 1):
        answering = tp.grid.tile(answering_tile(tp.grid, index))
        for name, prompt in inner_prompts(tp.grid.tile(index)).items():
            result = tp.predict(**prompt)
            assert result.tile == answering.index and result.box == answering.outer, name
            reference = reference_on(reference_predictor, image, answering.outer, prompt)
            assert_same_as_reference(result, reference, shape)


def test_previous_logits_refine_in_the_same_frame(tiny_model, reference_predictor):
    shape, tile_shape, halo = TILINGS[0]
    image = oracle_image(shape, seed=5)
    tp = tiled(tiny_model, image, tile_shape, halo)
    tile = tp.grid.tile(4)
    first = tp.predict(**inner_prompts(tile)["point"])
    logits = first.low_res_logits[first.best][None]
    prompt = dict(
        points=np.array([[tile.inner[0] + 100.0, tile.inner[1] + 150.0]]),
        labels=np.array([1]),
        mask_input=logits,
        multimask=False,
    )
    again = tp.predict(**prompt, frame=first.box)
    assert again.box == first.box
    assert_same_as_reference(
        again, reference_on(reference_predictor, image, first.box, prompt), shape
    )
    with pytest.raises(ValueError, match="frame=previous.box"):
        tp.predict(**prompt)


def test_a_cut_mask_is_decoded_again_in_a_window_matching_the_reference(
    tiny_model, reference_predictor
):
    # Random weights give masks that spread to the tile's edges: every such click is followed
    # into a window, and whatever frame answers, the answer is the reference's on that frame.
    shape, tile_shape, halo = TILINGS[1]
    image = oracle_image(shape, seed=11)
    tp = tiled(tiny_model, image, tile_shape, halo, follow=True)
    prompt = dict(points=np.array([[400.0, 700.0]]), labels=np.array([1]))
    result = tp.predict(**prompt)
    assert result.tile is None  # a window, not the tile
    r0, c0, r1, c1 = result.box
    # At least the model's input size a side (or the image's side), more than the tile's.
    assert r1 - r0 >= min(1024, shape[0]) and c1 - c0 >= min(1024, shape[1])
    assert_same_as_reference(
        result, reference_on(reference_predictor, image, result.box, prompt), shape
    )


def test_untiled_and_auto_on_a_small_image_are_the_plain_predictor(tiny_model):
    image = oracle_image((517, 203), seed=2)
    plain = Predictor(tiny_model, precision="fp32")
    plain.set_image(image)
    expected = plain.predict(np.array([[200.0, 100.0]]), np.array([1]))
    for tile_shape in (None, "auto"):
        tp = TiledPredictor(Predictor(tiny_model, precision="fp32"))
        tp.set_image(image, tile_shape=tile_shape)
        assert not tp.grid.is_tiled
        result = tp.predict(np.array([[200.0, 100.0]]), np.array([1]))
        assert result.box == (0, 0, 517, 203) and result.tile == 0
        np.testing.assert_array_equal(result.masks, expected[0])
        np.testing.assert_array_equal(result.scores, expected[1])
        np.testing.assert_array_equal(result.low_res_logits, expected[2])
