"""The evented annotation state, driven without a viewer."""

from __future__ import annotations

import numpy as np

from napari_segany.annotation.prediction import Prediction
from napari_segany.annotation.state import AnnotationState


def _click() -> Prediction:
    masks = np.zeros((1, 3, 4, 4), bool)
    masks[0, :, 1, 1] = True
    return Prediction.from_masks(masks, np.array([[0.1, 0.3, 0.2]]), True)


def test_candidates_cycle_and_every_change_is_announced():
    state = AnnotationState()
    seen = []
    state.prediction_changed.connect(lambda: seen.append(state.displayed_candidate()))
    assert state.next_candidate() == "Candidate masks exist for a single click only."
    state.show(_click(), ())
    assert state.next_candidate() is None and state.next_candidate() is None
    assert seen == [1, 2, 0]
    state.prompts_edited()
    assert state.candidate_rank == 0


def test_while_encoding_commit_and_next_mask_say_wait():
    state = AnnotationState()
    state.set_busy("encoding")
    assert state.commit_refusal() == "Encoding…: wait, then commit."
    assert state.next_candidate() == "Encoding…: wait until it is done."
    state.set_busy(None)
    assert state.commit_refusal().startswith("Nothing to commit")
    empty = Prediction.from_masks(np.zeros((1, 1, 4, 4), bool), np.array([[0.4]]), False)
    state.show(empty, ())
    assert "SAM's mask is empty" in state.commit_refusal()
