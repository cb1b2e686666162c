"""Objects written into one labels volume, the same whatever order their planes come in."""

from __future__ import annotations

import numpy as np

from .seeds import ObjectSeeds


class LabelsWriter:
    """Writes objects' masks into ``out`` ((Z, H, W), stack axis first; zeroed here).

    Where objects overlap, a seed keeps its pixels, and between propagated masks the lower id
    wins. Each object is propagated from its own masks, never from what is left of them here,
    so an object's result does not depend on its neighbours.
    """

    def __init__(self, out: np.ndarray, objects: list[ObjectSeeds]) -> None:
        self.out = out
        out[...] = 0
        self._seeded: dict[int, np.ndarray] = {}
        for obj in sorted(objects, key=lambda o: o.object_id):
            for z, mask in obj.masks.items():
                self.write(z, obj.object_id, mask)
                taken = self._seeded.get(z)
                self._seeded[z] = mask.copy() if taken is None else taken | mask

    def write(self, z: int, object_id: int, mask: np.ndarray) -> None:
        plane = self.out[z]
        free = (plane == 0) | (plane > object_id)
        seeded = self._seeded.get(z)
        if seeded is not None:
            free &= ~seeded
        plane[mask & free] = object_id
