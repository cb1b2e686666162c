"""One object through a volume: what a user of ``segment_volume`` relies on besides its masks.

Planes are encoded only when the propagation reaches them and only once; the work can be
watched and cancelled between planes; the stack axis can be any axis, and colour or 16-bit
stacks are read as napari shows them.
"""

from __future__ import annotations

import numpy as np
import pytest
from volume_data import blob_centre, blob_stack, click_mask

from napari_segany import Predictor
from napari_segany.volumes import iter_segment_volume, segment_volume


class CountingPredictor(Predictor):
    """Our predictor, counting the planes it encodes."""

    encoded = 0

    def set_image(self, *args, **kwargs):
        self.encoded += 1
        super().set_image(*args, **kwargs)


@pytest.fixture
def seed(predictor, stack_embeddings):
    _, embeddings = stack_embeddings
    return {4: click_mask(predictor, embeddings[4], blob_centre(4))}


def test_only_the_planes_reached_are_encoded_and_only_once(
    object_model, predictor, stack_embeddings, seed
):
    stack, given = stack_embeddings
    expected, reached = segment_volume(predictor, stack, seed, embeddings=given)
    first, last = reached
    assert 0 < first or last < stack.shape[0] - 1  # it stopped before an edge

    counting = CountingPredictor(object_model, precision="fp32")
    cache = {}
    mask, again = segment_volume(counting, stack, seed, embeddings=cache)
    # The planes it kept, and the one beyond each end where the IoU stopped it; not the seed.
    touched = set(range(max(first - 1, 0), min(last + 1, stack.shape[0] - 1) + 1)) - {4}
    assert sorted(cache) == sorted(touched) and counting.encoded == len(touched)
    assert again == reached
    np.testing.assert_array_equal(mask, expected)

    segment_volume(counting, stack, seed, embeddings=cache)  # the dict kept them
    assert counting.encoded == len(touched)


def test_progress_counts_planes_and_stopping_cancels(
    object_model, predictor, stack_embeddings, seed
):
    stack, given = stack_embeddings
    steps = list(iter_segment_volume(predictor, stack, seed, embeddings=given))
    done = [d for d, _ in steps]
    assert done == sorted(done) and steps[-1][0] == steps[-1][1] > 0
    assert all(total >= steps[-1][1] for _, total in steps)  # a stop only shrinks the total

    counting = CountingPredictor(object_model, precision="fp32")
    out = np.zeros(stack.shape, bool)
    work = iter_segment_volume(counting, stack, seed, out=out)
    next(work)  # started: the seed is in the preview, nothing encoded yet
    assert counting.encoded == 0 and out[4].any() and out.sum() == seed[4].sum()
    next(work)  # one plane done
    work.close()  # cancelled
    assert counting.encoded == 1 and out.sum() > seed[4].sum()


@pytest.mark.parametrize("axis", [1, 2, -1])
def test_the_stack_axis_can_be_any_axis(predictor, stack_embeddings, seed, axis):
    stack, given = stack_embeddings
    expected, reached = segment_volume(predictor, stack, seed, embeddings=given)
    moved = np.moveaxis(stack, 0, axis)
    seeds = np.moveaxis(np.zeros(stack.shape, bool), 0, axis)
    np.moveaxis(seeds, axis, 0)[4] = seed[4]
    mask, again = segment_volume(predictor, moved, seeds, axis=axis, embeddings=given)
    assert mask.shape == moved.shape and again == reached
    np.testing.assert_array_equal(np.moveaxis(mask, axis, 0), expected)


def test_colour_and_16_bit_stacks_are_read_as_napari_shows_them(object_model):
    stack = blob_stack(n_planes=3)
    predictor = Predictor(object_model, precision="fp32")
    embeddings = {}
    seed = {1: click_mask(predictor, _encoded(predictor, stack[1]), blob_centre(1))}
    grey, reached = segment_volume(predictor, stack, seed, embeddings=embeddings)
    assert grey[0].any() or grey[2].any()
    colour, _ = segment_volume(predictor, np.repeat(stack[..., None], 3, axis=-1), seed)
    np.testing.assert_array_equal(colour, grey)
    # 16 bits with napari's contrast limits: every plane mapped as the 8-bit one is.
    wide = stack.astype(np.uint16) * 257
    same, _ = segment_volume(predictor, wide, seed, contrast_limits=(0, 65535))
    np.testing.assert_array_equal(same, grey)


def _encoded(predictor, plane):
    predictor.set_image(plane)
    return predictor.get_embedding_state()


def test_the_contrast_of_a_16_bit_stack_is_one_for_all_planes(object_model):
    """Without contrast limits, a dim plane stays dim: planes are not stretched one by one."""
    from napari_segany.volumes.slices import PlaneStack

    bright = blob_stack(n_planes=2).astype(np.uint16) * 200
    dim = bright.copy()
    dim[1] //= 8
    assert PlaneStack(dim).contrast_limits[1] > 4 * np.percentile(dim[1], 99)


BAD_INPUTS = {
    "a 2-D image": (dict(volume=np.zeros((5, 6))), "3-D"),
    "4-D without colours": (dict(volume=np.zeros((2, 3, 5, 6))), "3-D"),
    "axis 3": (dict(axis=3), "axis"),
    "an unknown projection": (dict(projection="lasso"), "single_point"),
    "an IoU threshold of 2": (dict(iou_threshold=2.0), "iou_threshold"),
    "a negative box extension": (dict(box_extension=-1), "box_extension"),
    "no seeds": (dict(seeds={}), "No seeds"),
    "a seed off the volume": (dict(seeds={10: np.ones((120, 160), bool)}), "not a plane"),
    "a seed of the wrong size": (dict(seeds={2: np.ones((12, 16), bool)}), "shape"),
    "an empty labels volume": (dict(seeds=np.zeros((10, 120, 160), np.int32)), "empty"),
    "float labels": (dict(seeds=np.zeros((10, 120, 160))), "integer"),
    "embeddings for 3 planes": (dict(embeddings=[None] * 3), "10 planes"),
    "out of the wrong shape": (dict(out=np.zeros((10, 12, 16), np.int32)), "out"),
    "object id 0": (dict(seeds={0: {2: np.ones((120, 160), bool)}}), "positive"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_is_refused_with_a_message_before_any_work(predictor, name):
    changes, message = BAD_INPUTS[name]
    call = dict(volume=blob_stack(), seeds={2: np.ones((120, 160), bool)})
    call.update(changes)
    with pytest.raises(ValueError, match=message):
        iter_segment_volume(predictor, call.pop("volume"), call.pop("seeds"), **call)


def test_a_suspended_or_abandoned_propagation_keeps_no_memory(predictor, stack_embeddings):
    """Between two planes the process allocates as usual: a propagation paused by its caller
    (the widget's worker between planes) or dropped without being closed leaves nothing on."""
    from napari_segany import heap
    from napari_segany.volumes import iter_segment_volume, iter_track

    volume, embeddings = stack_embeddings
    seed = {4: volume[4] > 120}
    for steps in (
        iter_segment_volume(predictor, volume, seed, iou_threshold=0.0, embeddings=embeddings),
        iter_track(predictor, volume, seed, iou_threshold=0.0, embeddings=embeddings),
    ):
        next(steps)
        next(steps)  # one plane done, the generator suspended
        assert not heap.in_use()
        del steps
        assert not heap.in_use()
