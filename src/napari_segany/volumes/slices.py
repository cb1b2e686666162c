"""A volume seen as a stack of 2-D planes along one axis, and the embedding of each plane.

The caller names the axis that is z (or t); the planes are what remains, grayscale or with a
trailing colour axis. Embeddings come from the caller where it has them and are encoded
through the predictor otherwise, each plane once, only when the propagation reaches it.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..predictor import Predictor

# Percentiles of a volume without contrast limits are taken on up to this many planes.
_CONTRAST_PLANES = 9
# ... and up to this many values of each.
_CONTRAST_VALUES = 1 << 20
_ROBUST_PERCENTILES = (1.0, 99.0)


def stack_axis(volume: np.ndarray, axis: int) -> tuple[int, bool]:
    """The stack axis as a non-negative index, and whether the last axis holds colours.

    volume: (..., H, W) in any order with one stack axis, 3-D; or 4-D with a last axis of 3
    (RGB) or 4 (RGBA) channels.
    """
    shape = np.shape(volume)
    colour = len(shape) == 4 and shape[-1] in (3, 4)
    spatial = len(shape) - 1 if colour else len(shape)
    if spatial != 3:
        raise ValueError(
            f"A volume or time-lapse must be 3-D (a stack of 2-D planes), optionally with a "
            f"last axis of 3 or 4 colour channels; got shape {shape}. Pick the channel or time "
            "point to work on first."
        )
    if not isinstance(axis, (int, np.integer)) or not -spatial <= axis < spatial:
        raise ValueError(f"axis must be one of 0, 1, 2 (or -1..-3); got {axis!r}.")
    return int(axis) % spatial, colour


class PlaneStack:
    """The planes of ``volume`` along ``axis``: ``plane(z)`` is (H, W) or (H, W, C)."""

    def __init__(
        self,
        volume: np.ndarray,
        axis: int = 0,
        contrast_limits: tuple[float, float] | None = None,
    ) -> None:
        self.axis, colour = stack_axis(volume, axis)
        # A view with the stack axis first; dask and zarr arrays stay lazy.
        self._planes = _move_axis_first(volume, self.axis)
        self.n_planes = int(self._planes.shape[0])
        self.plane_shape = (int(self._planes.shape[1]), int(self._planes.shape[2]))
        if self.n_planes < 1 or min(self.plane_shape) < 1:
            raise ValueError(f"The volume has no pixels: shape {np.shape(volume)}.")
        self.contrast_limits = (
            contrast_limits if contrast_limits is not None else volume_contrast(self._planes)
        )

    def plane(self, z: int) -> np.ndarray:
        return np.asarray(self._planes[z])

    def to_stack_order(self, array: np.ndarray) -> np.ndarray:
        """A view of an array of the volume's layout (no colour axis) with the stack axis first."""
        return np.moveaxis(array, self.axis, 0)

    def layout_shape(self) -> tuple[int, ...]:
        """The shape of a result in the volume's layout (no colour axis)."""
        shape = [self.plane_shape[0], self.plane_shape[1]]
        shape.insert(self.axis, self.n_planes)
        return tuple(shape)


def _move_axis_first(volume: Any, axis: int) -> Any:
    if axis == 0:
        return volume
    if isinstance(volume, np.ndarray) or hasattr(volume, "transpose"):
        order = [axis] + [a for a in range(np.ndim(volume)) if a != axis]
        return volume.transpose(order)
    return np.moveaxis(np.asarray(volume), axis, 0)


def volume_contrast(planes: Any) -> tuple[float, float] | None:
    """One intensity mapping for all planes: None for uint8 and bool (used as they are), else
    the 1st and 99th percentiles of a few planes spread through the stack, so every plane is
    seen with the same contrast, as napari shows them."""
    dtype = np.dtype(planes.dtype)
    if dtype == np.uint8 or dtype == np.bool_:
        return None
    n = int(planes.shape[0])
    chosen = np.unique(np.linspace(0, n - 1, min(n, _CONTRAST_PLANES)).round().astype(int))
    samples = []
    for z in chosen:
        plane = np.asarray(planes[int(z)])
        step = max(1, int(np.ceil(np.sqrt(plane.size / _CONTRAST_VALUES))))
        values = plane[::step, ::step].ravel()
        samples.append(values[np.isfinite(values)] if values.dtype.kind == "f" else values)
    values = np.concatenate(samples)
    if values.size == 0:
        return 0.0, 0.0
    lo, hi = np.percentile(values, _ROBUST_PERCENTILES)
    return float(lo), float(hi)


class PlaneEmbeddings:
    """Sets the predictor to any plane's embedding, encoding it the first time it is needed.

    given: None; a mapping plane -> embedding, which also receives the planes encoded here
    (pass a dict to keep them for the next run); a sequence with one entry per plane (None
    where there is none); or a (Z, 1, C, h, w) / (Z, C, h, w) array. An embedding is what
    ``Predictor.get_embedding_state()`` returns, or a (1, C, h, w) / (C, h, w) array of the
    plane's size.
    """

    def __init__(self, predictor: Predictor, stack: PlaneStack, given: Any = None) -> None:
        self.predictor = predictor
        self.stack = stack
        self.encoded: list[int] = []  # planes encoded here, in order
        self._current: int | None = None
        if given is None:
            given = {}
        if isinstance(given, np.ndarray):
            if given.ndim not in (4, 5):
                raise ValueError(
                    "embeddings as one array must be (Z, 1, C, h, w) or (Z, C, h, w); "
                    f"got shape {given.shape}."
                )
        elif not isinstance(given, (Mapping, Sequence)):
            raise ValueError(
                "embeddings must be a mapping plane -> embedding, a sequence with one entry "
                f"per plane, or an array; got {type(given).__name__}."
            )
        if not isinstance(given, Mapping) and len(given) != stack.n_planes:
            raise ValueError(
                f"embeddings has {len(given)} entries but the volume has {stack.n_planes} "
                "planes along its axis: give one per plane (None where there is none)."
            )
        self._given = given
        self._cache: MutableMapping[int, Any] = given if isinstance(given, MutableMapping) else {}

    def activate(self, z: int) -> None:
        """Make the predictor hold plane ``z``'s embedding."""
        if self._current == z:
            return
        found = self._lookup(z)
        if found is None:
            limits = self.stack.contrast_limits
            self.predictor.set_image(self.stack.plane(z), contrast_limits=limits)
            self._cache[z] = self.predictor.get_embedding_state()
            self.encoded.append(z)
        else:
            features, size = found
            if tuple(size) != self.stack.plane_shape:
                raise ValueError(
                    f"The embedding of plane {z} was made from an image of size {tuple(size)}, "
                    f"but the planes are {self.stack.plane_shape}."
                )
            self.predictor.set_image_embedding(features, size)
        self._current = z

    def _lookup(self, z: int) -> tuple[np.ndarray, tuple[int, int]] | None:
        given = self._given
        entry = given.get(z) if isinstance(given, Mapping) else given[z]
        if entry is None:
            entry = self._cache.get(z)
        if entry is None:
            return None
        if hasattr(entry, "features") and hasattr(entry, "original_size"):
            return np.asarray(entry.features), tuple(entry.original_size)
        return np.asarray(entry), self.stack.plane_shape
