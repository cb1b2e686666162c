"""What the user seeded: one object's masks on some planes, or many objects' at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .slices import PlaneStack


@dataclass(frozen=True)
class ObjectSeeds:
    """One object's seeds: plane index -> (H, W) bool mask, by increasing plane.

    A seed may be empty: at the lowest or highest seeded plane, with the matching stop flag,
    it marks where the object ends.
    """

    object_id: int
    masks: dict[int, np.ndarray]

    @property
    def planes(self) -> list[int]:
        return list(self.masks)


def parse_seeds(seeds: Any, stack: PlaneStack) -> tuple[list[ObjectSeeds], bool]:
    """The objects of ``seeds``, by increasing id, and whether it named a single object.

    seeds: a mapping plane -> (H, W) mask (one object, id 1); a mapping object id -> such a
    mapping; or a labels array of the volume's layout (no colour axis), each id an object
    seeded on the planes where it appears (a bool array is one object).
    """
    if isinstance(seeds, Mapping):
        if not seeds:
            raise ValueError("No seeds: give at least one plane with the object's mask.")
        if all(isinstance(v, Mapping) for v in seeds.values()):
            objects = [_one_object(_object_id(k), v, stack) for k, v in seeds.items()]
            return sorted(objects, key=lambda o: o.object_id), False
        if any(isinstance(v, Mapping) for v in seeds.values()):
            raise ValueError(
                "seeds mixes masks and mappings: give plane -> mask for one object, or "
                "object id -> {plane: mask} for many."
            )
        return [_one_object(1, seeds, stack)], True
    return _from_labels(seeds, stack)


def _object_id(key: Any) -> int:
    if not isinstance(key, (int, np.integer)) or isinstance(key, bool) or key < 1:
        raise ValueError(f"Object ids must be positive integers (0 is background); got {key!r}.")
    return int(key)


def _one_object(object_id: int, masks: Mapping, stack: PlaneStack) -> ObjectSeeds:
    if not masks:
        raise ValueError(f"Object {object_id} has no seeds: give at least one plane's mask.")
    checked = {}
    for z, mask in sorted(masks.items(), key=lambda item: _plane_index(item[0], stack)):
        m = np.asarray(mask)
        if m.shape != stack.plane_shape:
            raise ValueError(
                f"The seed of object {object_id} on plane {z} has shape {m.shape}, but the "
                f"planes are {stack.plane_shape}."
            )
        checked[int(z)] = m.astype(bool)
    return ObjectSeeds(object_id, checked)


def _plane_index(z: Any, stack: PlaneStack) -> int:
    if not isinstance(z, (int, np.integer)) or isinstance(z, bool) or not 0 <= z < stack.n_planes:
        raise ValueError(
            f"Seed plane {z!r} is not a plane of this volume: use 0..{stack.n_planes - 1} along "
            f"axis {stack.axis}."
        )
    return int(z)


def _from_labels(seeds: Any, stack: PlaneStack) -> tuple[list[ObjectSeeds], bool]:
    labels = np.asarray(seeds)
    expected = stack.layout_shape()
    if labels.shape != expected:
        raise ValueError(
            f"A seeds labels array must have the volume's shape without its colour axis, "
            f"{expected}; got {labels.shape}."
        )
    if labels.dtype.kind not in "biu":
        raise ValueError(f"A seeds labels array must hold integer ids; got dtype {labels.dtype}.")
    if labels.dtype.kind == "i" and labels.min() < 0:
        raise ValueError("A seeds labels array must not hold negative ids.")
    by_plane = stack.to_stack_order(labels)
    found: dict[int, dict[int, np.ndarray]] = {}
    for z in range(by_plane.shape[0]):
        plane = by_plane[z]
        for object_id in np.unique(plane):
            if object_id != 0:
                found.setdefault(int(object_id), {})[z] = plane == object_id
    if not found:
        raise ValueError("The seeds labels array is empty: label the object on some plane.")
    objects = [ObjectSeeds(k, found[k]) for k in sorted(found)]
    return objects, labels.dtype == np.bool_
