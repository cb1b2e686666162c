"""Where segment-everything's objects go: a new labels layer, or the gaps of an existing one."""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_error
from napari.viewer import Viewer

from ..annotation.labels import new_objects_in_unlabeled
from .labels_writer import write_new_objects
from .layer_slice import spatial_shape


def add_everything_result(
    viewer: Viewer,
    image: Image,
    slice_key: tuple[int, ...],
    objects: np.ndarray,
    count: int,
    into: Labels | None,
) -> str | None:
    """Write ``objects`` ((H, W) ids of one slice) and say what happened, or None.

    into: a labels layer to extend, where only the objects lying mostly on unlabeled pixels
    are added as new ids (one undoable step); None makes a new labels layer shaped like the
    image. count: how many masks segment-everything found.
    """
    if into is not None:
        plane = np.asarray(into.data[slice_key] if slice_key else into.data)
        try:
            kept = new_objects_in_unlabeled(plane, objects)
            added, _ = write_new_objects(into, slice_key, kept)
        except ValueError as exc:
            show_error(str(exc))
            return None
        return f"Segment everything: {count} masks, {added} new object(s) in '{into.name}'."
    data = np.zeros(spatial_shape(image), dtype=np.int32)
    if slice_key:
        data[slice_key] = objects
    else:
        data[...] = objects
    layer = viewer.add_labels(
        data, name=f"{image.name} everything", scale=image.scale, translate=image.translate
    )
    return f"Segment everything: {count} masks in the new layer '{layer.name}'."
