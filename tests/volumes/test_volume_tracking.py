"""Objects followed through a time-lapse: together as alone, forward only, with the motion model."""

from __future__ import annotations

import numpy as np
import pytest
from volume_data import blob_centre, blob_stack, click_mask, encode_stack, overlay

from napari_segany.volumes import iter_track, track
from napari_segany.volumes.motion import centre_of_mass, shift_mask, update_motion

STEP = (6.0, 9.0)


@pytest.fixture(scope="module")
def movie(object_model):
    from napari_segany import Predictor

    frames = blob_stack(step=STEP, flicker=False)
    return frames, encode_stack(Predictor(object_model, precision="fp32"), frames)


def test_tracks_carried_together_get_what_each_gets_alone(predictor, movie):
    frames, embeddings = movie
    shape = frames.shape[1:]
    seeds = {
        3: {1: click_mask(predictor, embeddings[1], blob_centre(1, shape, STEP))},
        5: {
            4: click_mask(predictor, embeddings[4], (0.8 * shape[0], 0.2 * shape[1])),
            7: np.zeros(shape, bool),  # a stop frame
        },
    }
    labels, ranges = track(
        predictor, frames, seeds, stop_upper={5: True}, embeddings=embeddings, projection="box"
    )
    singles, alone = {}, {}
    for k, object_seeds in seeds.items():
        singles[k], alone[k] = track(
            predictor, frames, object_seeds, stop_upper=k == 5, embeddings=embeddings,
            projection="box",
        )  # fmt: skip
    np.testing.assert_array_equal(labels, overlay(singles, seeds))
    assert ranges == alone and ranges[5] == (4, 6) and ranges[3][1] > 4
    assert not labels[:1].any()  # nothing before the first seed


def test_a_track_seeded_on_the_last_frame_is_its_seed(predictor, movie):
    frames, embeddings = movie
    seed = click_mask(predictor, embeddings[9], blob_centre(9, frames.shape[1:], STEP))
    steps = iter_track(predictor, frames, {9: seed}, embeddings=embeddings)
    with pytest.raises(StopIteration) as finished:
        next(steps)  # nothing to do: no step at all
    mask, reached = finished.value.value
    assert reached == (9, 9) and mask[9].sum() == seed.sum() and not mask[:9].any()


def test_the_motion_model_follows_the_centre_of_mass():
    square = np.zeros((40, 50), bool)
    square[10:20, 10:20] = True
    moved = shift_mask(square, np.array([3.0, -2.4]))  # to the nearest pixel
    np.testing.assert_array_equal(np.argwhere(moved).min(axis=0), [13, 8])
    assert moved.sum() == square.sum()
    np.testing.assert_allclose(centre_of_mass(moved) - centre_of_mass(square), [3, -2])
    first = update_motion(None, np.array([2.0, 4.0]), 0.5)
    np.testing.assert_allclose(update_motion(first, np.array([4.0, 0.0]), 0.5), [3.0, 2.0])


def test_bad_motion_smoothing_is_refused(predictor, movie):
    frames, _ = movie
    with pytest.raises(ValueError, match="motion_smoothing"):
        iter_track(predictor, frames, {1: np.ones(frames.shape[1:], bool)}, motion_smoothing=2)
