"""AIS: the decoder's maps -> instance labels by a seeded watershed, as micro-sam does it.

micro-sam's ``InstanceSegmentationWithDecoder.generate`` (through torch-em's
``watershed_from_center_and_boundary_distances``):

1. smooth the foreground (sigma ``foreground_smoothing``) and both distance maps (sigma
   ``distance_smoothing``) with a Gaussian;
2. foreground: smoothed foreground > ``foreground_threshold``;
3. seeds: connected components (8-connected) of the foreground pixels where the centre
   distance < ``center_distance_threshold`` and the boundary distance <
   ``boundary_distance_threshold``;
4. grow the seeds by a watershed (4-connected) over the smoothed boundary distances, within
   the foreground; foreground pieces without a seed stay background;
5. with ``min_size`` > 0, drop objects of fewer pixels and number the rest 1, 2, ...

micro-sam's Gaussian and watershed are bioimage-cpp's, and both are reproduced here pixel for
pixel (:mod:`napari_segany.gaussian`, :mod:`napari_segany.watershed`): the same maps give the
same labels.
"""

from __future__ import annotations

import numpy as np

from .maps import InstanceMaps
from .params import AisParams


def watershed_instances(maps: InstanceMaps, params: AisParams | None = None) -> np.ndarray:
    """(H, W) int32 labels of the objects in ``maps``; 0 is background (params: default
    micro-sam's)."""
    from scipy import ndimage as ndi

    from ..gaussian import gaussian_smooth
    from ..watershed import seeded_watershed

    params = params if params is not None else AisParams()
    foreground = maps.foreground
    if params.foreground_smoothing > 0:
        foreground = gaussian_smooth(foreground, params.foreground_smoothing)
    center, boundary = maps.center_distances, maps.boundary_distances
    if params.distance_smoothing > 0:
        center = gaussian_smooth(center, params.distance_smoothing)
        boundary = gaussian_smooth(boundary, params.distance_smoothing)

    inside = foreground > params.foreground_threshold
    seeds = (center < params.center_distance_threshold) & (
        boundary < params.boundary_distance_threshold
    )
    seeds &= inside
    markers, _ = ndi.label(seeds, structure=np.ones((3, 3), dtype=bool))
    labels = seeded_watershed(boundary, markers, inside).astype(np.int32)
    if params.min_size > 0:
        labels = remove_small_objects(labels, params.min_size)
    return labels


def remove_small_objects(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Objects of fewer than ``min_size`` pixels become background; the rest are numbered
    1, 2, ... in the order of their old ids (torch-em's ``size_filter``)."""
    from skimage.segmentation import relabel_sequential

    sizes = np.bincount(labels.ravel())
    small = sizes < min_size
    small[0] = True  # background stays background
    labels = np.where(small[labels], 0, labels)
    return relabel_sequential(labels)[0].astype(np.int32)
