"""Our SAM against Meta's reference ``segment_anything`` with the same random weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

from napari_segany import Predictor, load_model
from napari_segany.decoding import DECODERS
from oracle import IMAGE_SHAPES, assert_same_prediction, oracle_image, ref_predict
from reference_models import VIT_B_SPEC, build_reference_vit, save_checkpoint


@pytest.fixture(
    scope="module",
    params=[(shape, decoder) for shape in IMAGE_SHAPES for decoder in DECODERS],
    ids=lambda p: f"{p[0][0]}x{p[0][1]}-{p[1]}",
)
def pair(request, tiny_reference):
    """(our predictor, reference predictor, image), both with the same image set; ours with
    each of its decoders in turn."""
    shape, decoder = request.param
    reference, checkpoint = tiny_reference
    image = oracle_image(shape, seed=shape[0])
    ours = Predictor(load_model(checkpoint, device="cpu"), precision="fp32", decoder=decoder)
    ours.set_image(image)
    ref = SamPredictor(reference)
    ref.set_image(image)
    return ours, ref, image


def test_embedding_matches_reference(pair):
    ours, ref, _ = pair
    mine = ours.get_image_embedding()
    theirs = ref.get_image_embedding().numpy()
    assert mine.shape == theirs.shape == (1, 256, 64, 64)
    assert np.abs(mine - theirs).max() <= 1e-3 * np.abs(theirs).max()


@pytest.mark.parametrize("multimask", [True, False])
def test_one_point(pair, multimask):
    ours, ref, image = pair
    point = np.array([[image.shape[0] * 0.4, image.shape[1] * 0.6]])
    label = np.array([1])
    assert_same_prediction(
        ours.predict(point, label, multimask=multimask),
        ref_predict(ref, point, label, multimask=multimask),
    )


def test_positive_and_negative_points(pair):
    ours, ref, image = pair
    h, w = image.shape[:2]
    points = np.array([[0.3 * h, 0.3 * w], [0.5 * h, 0.7 * w], [0.8 * h, 0.2 * w], [10.5, 7.25]])
    labels = np.array([1, 1, 0, 0])
    assert_same_prediction(ours.predict(points, labels), ref_predict(ref, points, labels))


def test_box(pair):
    ours, ref, image = pair
    h, w = image.shape[:2]
    box = np.array([0.2 * h, 0.1 * w, 0.7 * h, 0.8 * w])
    assert_same_prediction(ours.predict(box=box), ref_predict(ref, box=box))


def test_box_with_points(pair):
    ours, ref, image = pair
    h, w = image.shape[:2]
    box = np.array([0.1 * h, 0.2 * w, 0.9 * h, 0.6 * w])
    points = np.array([[0.5 * h, 0.4 * w], [0.2 * h, 0.5 * w]])
    labels = np.array([1, 0])
    assert_same_prediction(
        ours.predict(points, labels, box=box, multimask=False),
        ref_predict(ref, points, labels, box=box, multimask=False),
    )


def test_previous_round_logits(pair):
    ours, ref, image = pair
    h, w = image.shape[:2]
    first = np.array([[0.5 * h, 0.5 * w]])
    _, scores, logits = ours.predict(first, np.array([1]))
    previous = logits[np.argmax(scores)][None]  # (1, 256, 256)
    points = np.array([[0.5 * h, 0.5 * w], [0.1 * h, 0.9 * w]])
    labels = np.array([1, 0])
    assert_same_prediction(
        ours.predict(points, labels, mask_input=previous, multimask=False),
        ref_predict(ref, points, labels, mask_input=previous, multimask=False),
    )


def test_several_boxes_in_one_batch(pair):
    ours, ref, image = pair
    h, w = image.shape[:2]
    boxes = np.array(
        [
            [0.1 * h, 0.1 * w, 0.4 * h, 0.5 * w],
            [0.5 * h, 0.3 * w, 0.9 * h, 0.9 * w],
            [0, 0, h - 1, w - 1],
        ]
    )
    masks, scores, logits = ours.predict(box=boxes, multimask=False)
    assert (
        masks.shape == (3, 1, h, w) and scores.shape == (3, 1) and logits.shape == (3, 1, 256, 256)
    )

    xyxy = torch.as_tensor(boxes[:, [1, 0, 3, 2]], dtype=torch.float)
    with torch.no_grad():
        ref_masks, ref_scores, ref_logits = ref.predict_torch(
            None,
            None,
            ref.transform.apply_boxes_torch(xyxy, ref.original_size),
            multimask_output=False,
        )
    assert_same_prediction(
        (masks, scores, logits), (ref_masks.numpy(), ref_scores.numpy(), ref_logits.numpy())
    )
    # Each object of the batch is what it would be on its own.
    alone = ours.predict(box=boxes[1], multimask=False)
    assert (alone[0] == masks[1]).mean() >= 0.999


@pytest.mark.parametrize("where", ["top-left", "bottom-right", "left-edge"])
def test_point_on_image_border(pair, where):
    ours, ref, image = pair
    h, w = image.shape[:2]
    point = {"top-left": [0, 0], "bottom-right": [h - 1, w - 1], "left-edge": [h / 2, 0]}[where]
    points = np.array([point], float)
    assert_same_prediction(
        ours.predict(points, np.array([1])), ref_predict(ref, points, np.array([1]))
    )


@pytest.mark.slow
def test_real_size_vit_b_matches_reference(tmp_path):
    """The real vit_b geometry (768 wide, 12 blocks, 4 global), one image end to end."""
    reference = build_reference_vit(VIT_B_SPEC, seed=3)
    checkpoint = save_checkpoint(reference, tmp_path / "sam_vit_b_random.pth")
    model = load_model(checkpoint, device="cpu")
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in reference.parameters()
    )
    image = oracle_image((383, 512), seed=7)
    ours = Predictor(model, precision="fp32")
    ours.set_image(image)
    literal = Predictor(model, precision="fp32", decoder="reference")
    literal.set_image_embedding(ours.get_image_embedding(), ours.original_size)
    ref = SamPredictor(reference)
    ref.set_image(image)
    del reference
    theirs = ref.get_image_embedding().numpy()
    assert np.abs(ours.get_image_embedding() - theirs).max() <= 1e-3 * np.abs(theirs).max()
    points = np.array([[150.0, 260.0], [300.0, 40.0]])
    labels = np.array([1, 0])
    expected = ref_predict(ref, points, labels)
    assert_same_prediction(ours.predict(points, labels), expected)
    assert_same_prediction(literal.predict(points, labels), expected)
