"""Volumes and time-lapses: carry objects seeded on some planes through the others with SAM.

:func:`segment_volume` propagates through z as micro-sam's ``segment_mask_in_volume`` does and
:func:`track` goes forward in time with micro-sam's motion model; both carry many objects at
once, decoding all objects due on a plane in one batch. Their ``iter_`` forms are generators
that yield progress and can be cancelled between planes. Numpy in, numpy out.
"""

from .plan import ObjectPlan, plan_object
from .projection import PROJECTIONS
from .prompts import MaskPrompts, prompts_from_mask
from .propagation import iter_segment_volume, segment_volume
from .tracking import iter_track, track

__all__ = [
    "PROJECTIONS",
    "MaskPrompts",
    "ObjectPlan",
    "iter_segment_volume",
    "iter_track",
    "plan_object",
    "prompts_from_mask",
    "segment_volume",
    "track",
]
