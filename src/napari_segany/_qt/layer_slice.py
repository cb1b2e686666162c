"""The 2-D plane of an Image layer that the viewer displays, in the layer's data coordinates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from napari.layers import Image
from napari.viewer import Viewer

from ..lazy_plane import LazyPlane


@dataclass(frozen=True)
class ImageSlice:
    """One displayed plane: (H, W) or (H, W, C) pixels and where it sits in the layer.

    slice_key: the layer's leading data indices (empty for a 2-D image).
    data: the pixels, numpy for numpy layers; for lazy ones (dask, zarr, pyramids) a
    :class:`~napari_segany.lazy_plane.LazyPlane`, read where the work needs it, on its thread.
    contrast_limits: the layer's, so SAM sees what the user sees.
    """

    slice_key: tuple[int, ...]
    data: np.ndarray | LazyPlane
    contrast_limits: tuple[float, float]

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.data.shape[0]), int(self.data.shape[1])


def spatial_shape(layer: Image) -> tuple[int, ...]:
    """Shape of the layer's data without the colour axis of an RGB(A) image."""
    data = layer.data[0] if layer.multiscale else layer.data
    return tuple(data.shape[:-1]) if layer.rgb else tuple(data.shape)


def displayed_slice(viewer: Viewer, layer: Image) -> ImageSlice:
    """The plane of ``layer`` under the viewer's current dims; ValueError says why not."""
    if viewer.dims.ndisplay != 2:
        raise ValueError("Segment Anything works on 2-D views: switch the viewer to 2D (Ctrl+Y).")
    data = layer.data[0] if layer.multiscale else layer.data
    nd = layer.ndim
    key: tuple[int, ...] = ()
    if nd > 2:
        offset = viewer.dims.ndim - nd
        displayed = sorted(a - offset for a in viewer.dims.displayed)
        if displayed != [nd - 2, nd - 1]:
            raise ValueError(
                "Segment Anything segments the image's last two axes: reset the axis order "
                "(Ctrl+E rolls axes, Ctrl+T transposes) so rows and columns are displayed."
            )
        position = layer.world_to_data(viewer.dims.point)
        key = tuple(int(round(float(p))) for p in position[: nd - 2])
        shape = spatial_shape(layer)
        if any(not 0 <= k < s for k, s in zip(key, shape)):
            raise ValueError("The displayed slice lies outside this image layer.")
    if isinstance(data, np.ndarray):
        plane = data[key] if key else data
    else:
        plane = LazyPlane(data, key)
    if plane.ndim not in (2, 3):
        raise ValueError(f"Cannot segment a plane of shape {plane.shape}.")
    lo, hi = (float(v) for v in layer.contrast_limits)
    return ImageSlice(slice_key=key, data=plane, contrast_limits=(lo, hi))
