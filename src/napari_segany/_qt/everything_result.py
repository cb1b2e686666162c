"""Where automatic segmentation's objects go: a new labels layer, or the gaps of an existing
one."""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels
from napari.viewer import Viewer

from ..annotation.labels import new_objects_in_unlabeled
from .labels_writer import write_objects
from .layer_slice import spatial_shape
from .prompt_layers import committed_colormap


def add_everything_result(
    viewer: Viewer,
    image: Image,
    slice_key: tuple[int, ...],
    objects: np.ndarray,
    into: Labels | None,
    suffix: str = "everything",
) -> tuple[Labels, np.ndarray]:
    """Write ``objects`` ((H, W) ids of one slice); returns the layer and the ids written.

    into: a labels layer to extend, where only the objects lying mostly on unlabeled pixels
    are added as new ids (one undoable step); None makes a new labels layer shaped like the
    image, named after it with ``suffix``. Raises ValueError (shapes, or no free id) before
    anything is written.
    """
    if into is not None:
        plane = np.asarray(into.data[slice_key] if slice_key else into.data)
        kept = new_objects_in_unlabeled(plane, objects)
        return into, write_objects(into, slice_key, kept)
    n = int(objects.max(initial=0))
    dtype = np.uint16 if n <= np.iinfo(np.uint16).max else np.int32
    data = np.zeros(spatial_shape(image), dtype=dtype)
    if slice_key:
        data[slice_key] = objects
    else:
        data[...] = objects
    layer = viewer.add_labels(
        data, name=f"{image.name} {suffix}", scale=image.scale, translate=image.translate
    )
    layer.colormap = committed_colormap()
    return layer, np.unique(objects[objects > 0])
