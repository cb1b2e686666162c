"""Many objects carried through a volume at once: each gets what it would get alone.

All objects due on a plane are decoded in one batch (grouped by prompt shape, since padding
prompts would change SAM's answer); each batch row is computed on its own, so batching must not
change any object's mask. Where objects overlap in the labels, a seed keeps its pixels and
the lower id wins.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from volume_data import blob_centre, click_mask, overlay

from napari_segany.volumes import iter_segment_volume, segment_volume
from napari_segany.volumes.decoding import decode_masks
from napari_segany.volumes.projection import projection_named
from napari_segany.volumes.prompts import MaskPrompts, prompts_from_mask


@pytest.mark.parametrize("projection", ["single_point", "mask"])
def test_objects_carried_together_get_what_each_gets_alone(predictor, stack_embeddings, projection):
    stack, embeddings = stack_embeddings
    shape = stack.shape[1:]
    blob = {z: click_mask(predictor, embeddings[z], blob_centre(z)) for z in (2, 5, 8)}
    corner = click_mask(predictor, embeddings[4], (0.8 * shape[0], 0.2 * shape[1]))
    top_half = blob[5].copy()
    top_half[: shape[0] // 2] = False
    seeds = {
        1: {5: top_half},  # one seed
        2: {2: blob[2], 8: blob[8]},  # a gap to fill
        4: {4: corner},  # an object elsewhere, which stops somewhere else
    }
    labels, ranges = segment_volume(
        predictor, stack, seeds, projection=projection, embeddings=embeddings
    )
    singles, alone = {}, {}
    for k, object_seeds in seeds.items():
        singles[k], alone[k] = segment_volume(
            predictor, stack, object_seeds, projection=projection, embeddings=embeddings
        )
    assert ranges == alone
    assert len(set(ranges.values())) > 1  # each stopped on its own
    np.testing.assert_array_equal(labels, overlay(singles, seeds))
    assert labels.dtype == np.int32 and set(np.unique(labels)) == {0, 1, 2, 4}


def test_labels_seeds_give_labels_of_their_dtype(predictor, stack_embeddings):
    stack, embeddings = stack_embeddings
    seeds = np.zeros(stack.shape, np.uint16)
    seeds[4][click_mask(predictor, embeddings[4], blob_centre(4))] = 7
    labels, ranges = segment_volume(predictor, stack, seeds, embeddings=embeddings)
    single, reached = segment_volume(predictor, stack, {4: seeds[4] == 7}, embeddings=embeddings)
    assert labels.dtype == np.uint16 and ranges == {7: reached}
    np.testing.assert_array_equal(labels == 7, single)


def test_a_plane_decodes_all_its_objects_in_one_pass(predictor, stack_embeddings):
    """The planes are visited once per direction, whatever the number of objects: ten objects
    seeded on one plane cost as many plane visits as one."""
    stack, embeddings = stack_embeddings
    seed = click_mask(predictor, embeddings[4], blob_centre(4))
    one = list(iter_segment_volume(predictor, stack, {4: seed}, embeddings=embeddings))
    shifted = {k: {4: np.roll(seed, k, axis=1)} for k in range(1, 11)}
    ten = list(iter_segment_volume(predictor, stack, shifted, embeddings=embeddings))
    assert len(ten) <= len(one) + 2  # one step per plane visited (and the start)


def test_prompts_of_different_sizes_decode_as_they_would_alone(predictor, stack_embeddings):
    """Objects whose masks give different numbers of points go through the decoder in groups;
    no object's mask depends on the others in its plane."""
    _, embeddings = stack_embeddings
    predictor.set_image_embedding(embeddings[3].features, embeddings[3].original_size)
    rng = np.random.default_rng(0)
    masks = []
    for sigma in (2, 3, 4, 6, 8, 3):
        field = ndimage.gaussian_filter(rng.random((120, 160)), sigma)
        masks.append(field > np.quantile(field, 0.9))
    for name in ("points", "points_and_mask", "box"):
        prompts = [prompts_from_mask(m, projection_named(name)) for m in masks]
        together = decode_masks(predictor, prompts)
        for prompt, mask in zip(prompts, together):
            np.testing.assert_array_equal(mask, decode_masks(predictor, [prompt])[0])
        if name == "points":
            assert len({len(p.points) for p in prompts}) > 2  # several groups


def test_an_object_without_a_prompt_gets_sams_answer_to_an_empty_prompt(tiny_reference):
    # micro-sam decodes an object whose mask on the previous plane was empty with no prompt
    # at all; Meta's SamPredictor, on the same weights, is the oracle for that answer.
    from segment_anything import SamPredictor

    from napari_segany import Predictor, load_model
    from oracle import oracle_image

    reference, checkpoint = tiny_reference
    image = oracle_image((140, 190), 5)
    ours = Predictor(load_model(checkpoint, device="cpu"), precision="fp32")
    ours.set_image(image)
    theirs = SamPredictor(reference)
    theirs.set_image(image)
    expected, _, _ = theirs.predict(multimask_output=False)
    empty = MaskPrompts()
    assert empty.signature == (None, False, False)
    for count in (1, 3):  # one such object, or several: each gets that answer
        for mask in decode_masks(ours, [empty] * count):
            assert (mask == expected[0]).mean() >= 0.999
    assert 0 < expected[0].mean() < 1
