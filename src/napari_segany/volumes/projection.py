"""How a mask on one slice becomes the prompts for the next: micro-sam's five projections."""

from __future__ import annotations

from dataclasses import dataclass

PROJECTIONS = ("single_point", "points", "box", "mask", "points_and_mask")
"""The projection names, as micro-sam's ``segment_mask_in_volume`` takes them."""


@dataclass(frozen=True)
class Projection:
    """Which prompts a mask gives: its box, its low-res logits, points from its distance map
    (one positive point at the deepest pixel when ``single_point``)."""

    use_box: bool
    use_mask: bool
    use_points: bool
    single_point: bool = False


_BY_NAME = {
    "single_point": Projection(use_box=False, use_mask=False, use_points=True, single_point=True),
    "points": Projection(use_box=False, use_mask=False, use_points=True),
    "box": Projection(use_box=True, use_mask=False, use_points=False),
    # micro-sam's "mask" sends the box with the mask.
    "mask": Projection(use_box=True, use_mask=True, use_points=False),
    "points_and_mask": Projection(use_box=False, use_mask=True, use_points=True),
}


def projection_named(name: str) -> Projection:
    """The :class:`Projection` called ``name`` (one of :data:`PROJECTIONS`)."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown projection {name!r}: use one of {', '.join(PROJECTIONS)}."
        ) from None
