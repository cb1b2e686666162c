"""What the oracle tests share: their images, their prompts and how answers are compared."""

from __future__ import annotations

import numpy as np

from napari_segany import Predictor, load_model

# Odd, non-square sizes exercise resizing, padding and the crop in post-processing. The first
# two are resized to the model's input; the third already has its long side and takes the
# post-processing's path without a resize.
IMAGE_SHAPES = [(301, 457), (517, 203), (1024, 683)]


def oracle_image(shape: tuple[int, int], seed: int) -> np.ndarray:
    """A smooth RGB image with structure, so masks are not all-or-nothing."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = 127 + 100 * np.sin(rows / 17.0) * np.cos(cols / 23.0)
    rgb = np.stack([base, base[::-1], base[:, ::-1]], axis=-1) + rng.normal(0, 20, (*shape, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def oracle_prompts(h: int, w: int) -> dict[str, dict]:
    """The prompts the oracle tests ask about, as keyword arguments of ``Predictor.predict``."""
    return {
        "one point": dict(points=np.array([[0.4 * h, 0.6 * w]]), labels=np.array([1])),
        "one point, one mask": dict(
            points=np.array([[0.4 * h, 0.6 * w]]), labels=np.array([1]), multimask=False
        ),
        "positive and negative points": dict(
            points=np.array([[0.3 * h, 0.3 * w], [0.5 * h, 0.7 * w], [0.8 * h, 0.2 * w]]),
            labels=np.array([1, 1, 0]),
        ),
        "box": dict(box=np.array([0.2 * h, 0.1 * w, 0.7 * h, 0.8 * w])),
        "box with points": dict(
            points=np.array([[0.5 * h, 0.4 * w], [0.2 * h, 0.5 * w]]),
            labels=np.array([1, 0]),
            box=np.array([0.1 * h, 0.2 * w, 0.9 * h, 0.6 * w]),
            multimask=False,
        ),
        "corner point": dict(points=np.array([[0.0, 0.0]]), labels=np.array([1])),
    }


def ref_predict(ref, points=None, labels=None, box=None, mask_input=None, multimask=True):
    """The reference ``SamPredictor``'s answer for prompts in our (row, col) convention."""
    xy = None if points is None else np.asarray(points, float)[:, ::-1].copy()
    xyxy = None if box is None else np.asarray(box, float)[[1, 0, 3, 2]]
    return ref.predict(xy, labels, xyxy, mask_input, multimask_output=multimask)


def assert_same_prediction(ours, theirs) -> None:
    masks, scores, logits = ours
    ref_masks, ref_scores, ref_logits = theirs
    assert masks.dtype == np.bool_ and masks.shape == ref_masks.shape
    agreement = (masks == ref_masks).mean()
    assert agreement >= 0.999, f"only {agreement:.5f} of mask pixels agree with the reference"
    np.testing.assert_allclose(scores, ref_scores, atol=1e-3)
    np.testing.assert_allclose(logits, ref_logits, atol=1e-3 * max(1.0, np.abs(ref_logits).max()))
    # Random weights still give non-trivial masks; an all-empty answer would match too easily.
    assert 0.0 < ref_masks.mean() < 1.0


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks; two empty masks agree perfectly."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def reduced_precision_agreement(checkpoint, device: str, precision: str) -> float:
    """Mean IoU between ``precision`` and fp32 masks over the oracle images and prompts."""
    fp32 = Predictor(load_model(checkpoint, device=device), precision="fp32")
    reduced = Predictor(load_model(checkpoint, device=device), precision=precision)
    ious = []
    for shape in IMAGE_SHAPES:
        image = oracle_image(shape, seed=shape[0])
        fp32.set_image(image)
        reduced.set_image(image)
        for prompt in oracle_prompts(*shape).values():
            masks, scores, logits = reduced.predict(**prompt)
            assert masks.dtype == np.bool_
            assert scores.dtype == logits.dtype == np.float32
            assert reduced.get_image_embedding().dtype == np.float32
            expected = fp32.predict(**prompt)[0]
            ious += [mask_iou(a, b) for a, b in zip(masks, expected)]
            # Random weights still give non-trivial masks, so agreement means something.
            assert 0.0 < expected.mean() < 1.0
    return float(np.mean(ious))
