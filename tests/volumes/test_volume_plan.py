"""Which planes a propagation segments: every plane between two seeds once, from the nearer
seed, and beyond the outer seeds only without a stop flag."""

from __future__ import annotations

import itertools

import numpy as np

from napari_segany.volumes import plan_object


def _planes_done(plan) -> list[int]:
    done = [run.start + run.step * (i + 1) for run in plan.runs for i in range(run.length)]
    return done + [m.plane for m in plan.midpoints]


def test_every_plane_between_seeds_is_segmented_once_from_the_nearer_seed():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 30))
        seeds = sorted(rng.choice(n, size=int(rng.integers(1, min(n, 6) + 1)), replace=False))
        for lower, upper in itertools.product((False, True), repeat=2):
            plan = plan_object([int(s) for s in seeds], n, lower, upper)
            done = _planes_done(plan)
            between = set(range(seeds[0], seeds[-1] + 1)) - set(seeds)
            outside = set(range(0 if not lower else seeds[0], seeds[0])) | set(
                range(seeds[-1] + 1, n if not upper else seeds[-1] + 1)
            )
            assert sorted(done) == sorted(between | outside), (n, seeds, lower, upper)
            assert all(not r.iou_stop for r in plan.gaps)  # gaps never stop early
            if not (lower or upper):  # filled from both ends: no plane from the farther seed
                for run in plan.gaps:
                    other = next(s for s in seeds if (s - run.start) * run.step > 0)
                    assert abs(run.last - run.start) <= abs(other - run.last)


def test_stop_flags_keep_the_object_within_its_seeds():
    plan = plan_object([2, 6], 10, stop_lower=True, stop_upper=False)
    assert plan.lower is None and plan.upper is not None and plan.midpoints == ()
    # The stop seed's gap is filled from the other end alone, down to next to the stop plane.
    (gap,) = plan.gaps
    assert (gap.start, gap.last, gap.step) == (6, 3, -1)
