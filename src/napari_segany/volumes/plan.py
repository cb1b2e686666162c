"""Which planes an object's propagation segments, from which, in what order: micro-sam's rules.

From the lowest seed down and from the highest seed up, each plane is segmented from the mask
of the plane before it until the IoU between the two falls below the threshold (that plane is
not kept) or the volume ends. Between two seeds the gap fills from both ends towards the
middle without an IoU stop; a plane halfway between them is segmented from the union of its
two neighbours. A stop flag keeps the object from going past its lowest (highest) seed and
fills that seed's gap from the other end alone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Run:
    """Planes ``start + step``, ``start + 2 step``, ... up to ``last``, each from the one
    before; ``iou_stop``: end where the IoU with the previous mask falls below the threshold."""

    start: int
    last: int
    iou_stop: bool

    @property
    def step(self) -> int:
        return 1 if self.last > self.start else -1

    @property
    def length(self) -> int:
        return abs(self.last - self.start)


@dataclass(frozen=True)
class Midpoint:
    """Plane ``plane`` segmented from the union of the masks on planes ``below`` and ``above``."""

    plane: int
    below: int
    above: int


@dataclass(frozen=True)
class ObjectPlan:
    lower: Run | None  # from the lowest seed down
    upper: Run | None  # from the highest seed up
    gaps: tuple[Run, ...]
    midpoints: tuple[Midpoint, ...]

    @property
    def runs(self) -> tuple[Run, ...]:
        return tuple(r for r in (self.lower, self.upper) if r is not None) + self.gaps

    @property
    def steps(self) -> int:
        """Planes segmented if no run stops early."""
        return sum(r.length for r in self.runs) + len(self.midpoints)


def plan_object(
    planes: list[int], n_planes: int, stop_lower: bool = False, stop_upper: bool = False
) -> ObjectPlan:
    """The plan for an object seeded on ``planes`` (sorted, distinct) of ``n_planes``."""
    first, last = planes[0], planes[-1]
    lower = Run(first, 0, True) if first > 0 and not stop_lower else None
    upper = Run(last, n_planes - 1, True) if last < n_planes - 1 and not stop_upper else None
    gaps: list[Run] = []
    midpoints: list[Midpoint] = []
    for a, b in zip(planes[:-1], planes[1:]):
        gap, middle = b - a, (a + b) // 2
        if gap == 1:
            continue
        if a == first and stop_lower:
            gaps.append(Run(b, a + 1, False))
        elif b == last and stop_upper:
            gaps.append(Run(a, b - 1, False))
        elif gap == 2:
            midpoints.append(Midpoint(a + 1, a, b))
        else:
            even = gap % 2 == 0
            gaps.append(Run(a, middle - 1 if even else middle, False))
            gaps.append(Run(b, middle + 1, False))
            if even:
                midpoints.append(Midpoint(middle, middle - 1, middle + 1))
    return ObjectPlan(lower, upper, tuple(gaps), tuple(midpoints))
