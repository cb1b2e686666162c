"""Comparing two label images whose ids differ: match objects, then count agreement."""

from __future__ import annotations

import numpy as np


def matched_agreement(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, list[float]]:
    """(fraction of pixels equal after mapping each of our ids to its best-overlapping id of
    theirs, IoU of every object of theirs with its best match of ours).

    Background (0) maps to background. An object of theirs with no counterpart has IoU 0.
    """
    assert ours.shape == theirs.shape
    a, b = ours.ravel().astype(np.int64), theirs.ravel().astype(np.int64)
    pairs, counts = np.unique(np.stack([a, b]), axis=1, return_counts=True)
    mapping = {0: 0}
    best: dict[int, int] = {}
    for (ia, ib), n in zip(pairs.T, counts):
        if ia != 0 and n > best.get(int(ia), 0):
            best[int(ia)], mapping[int(ia)] = int(n), int(ib)
    lookup = np.zeros(a.max() + 1, dtype=np.int64)
    for ia, ib in mapping.items():
        lookup[ia] = ib
    agreement = float((lookup[a] == b).mean())
    sizes_a, sizes_b = np.bincount(a), np.bincount(b)
    ia, ib = pairs
    iou = counts / (sizes_a[ia] + sizes_b[ib] - counts)
    iou[(ia == 0) | (ib == 0)] = 0.0
    best_iou = np.zeros(sizes_b.shape[0])
    np.maximum.at(best_iou, ib, iou)
    objects = np.flatnonzero(sizes_b[1:]) + 1
    return agreement, [float(v) for v in best_iou[objects]]


def assert_same_instances(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    """The oracle's criterion: >= 99.5% of pixels equal after matching ids, every object of
    theirs matched at IoU >= 0.95, the same number of objects; and a non-trivial answer."""
    n_ours, n_theirs = len(np.unique(ours)) - 1, len(np.unique(theirs)) - 1
    assert n_theirs >= 3, f"{what}: the oracle found only {n_theirs} objects; the test is weak"
    assert 0.05 < (theirs > 0).mean() < 0.95, f"{what}: the oracle's foreground is trivial"
    agreement, ious = matched_agreement(ours, theirs)
    assert agreement >= 0.995, f"{what}: {agreement:.5f} of pixels agree"
    worst = min(ious)
    assert worst >= 0.95, f"{what}: an object matches at IoU {worst:.3f} only"
    assert n_ours == n_theirs, f"{what}: {n_ours} objects, micro-sam {n_theirs}"
