"""The tile grid of a tiled slice, drawn over its image as a Shapes layer of rectangles.

Made on demand (the "Show tile grid" box), never editable, and tagged like the prompt layers
(``metadata["napari_segany"]``), so the widget finds it again and nothing offers it as a
prompt or labels layer. Encoded tiles are drawn thick and orange, the others thin and grey.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Shapes
from napari.viewer import Viewer

from ..tiling import TileGrid
from .prompt_layers import META, role_of

ROLE = "tiles"
ENCODED_COLOR = "#ff9f1c"  # orange: its embedding is ready
PENDING_COLOR = "#8a8a8a"  # grey: encoded at the first prompt in it


def find_overlay(viewer: Viewer, image: Image) -> Shapes | None:
    for layer in viewer.layers:
        tag = role_of(layer)
        if tag is not None and tag == (ROLE, image.unique_id):
            return layer
    return None


def show_tile_grid(viewer: Viewer, image: Image, grid: TileGrid, encoded: list[int]) -> Shapes:
    """Draw (or redraw) ``grid``'s inner blocks over ``image``'s displayed plane; the tiles in
    ``encoded`` in orange. Returns the layer (the active layer is left as it was)."""
    active = viewer.layers.selection.active
    done = set(encoded)
    colors = [ENCODED_COLOR if i in done else PENDING_COLOR for i in range(grid.n_tiles)]
    widths = [3.0 if i in done else 1.5 for i in range(grid.n_tiles)]
    scale = np.asarray(image.scale[-2:], dtype=float)
    width = max(1.0, 0.0015 * max(grid.image_shape))
    edge_widths = [w * width for w in widths]
    shape = (grid.image_shape, grid.tile_shape, grid.halo)
    layer = find_overlay(viewer, image)
    if layer is None:
        tag = {META: {"role": ROLE, "image": image.unique_id}}
        layer = viewer.add_shapes(
            name=f"{image.name} tiles", ndim=2, scale=scale, translate=image.translate[-2:],
            face_color="transparent", opacity=0.8, metadata=tag,
        )  # fmt: skip
    if layer.metadata[META].get("grid") == shape:
        # The same grid after a click: recolouring is ~10x cheaper than redrawing 700 tiles.
        layer.edge_color, layer.edge_width = colors, edge_widths
    else:
        corners = []
        for box in grid.inner_boxes():
            r0, c0, r1, c1 = (float(v) - 0.5 for v in box)  # pixel edges, not centres
            corners.append(np.array([[r0, c0], [r0, c1], [r1, c1], [r1, c0]]))
        layer.data = []  # a new grid replaces the old one whole
        layer.add_rectangles(
            corners, edge_color=colors, edge_width=edge_widths, face_color="transparent"
        )
        layer.metadata[META]["grid"] = shape
    layer.editable = False
    layer.mode = "pan_zoom"
    if active is not None and active.unique_id != layer.unique_id:
        viewer.layers.selection.active = active
    return layer


def remove_tile_grid(viewer: Viewer, image_id: object = None) -> None:
    """Take the overlay of the image whose ``unique_id`` is ``image_id`` (of every image, with
    None) out of the viewer."""
    doomed = [
        layer
        for layer in viewer.layers
        if (tag := role_of(layer)) is not None
        and tag[0] == ROLE
        and (image_id is None or tag[1] == image_id)
    ]
    for layer in doomed:
        viewer.layers.remove(layer)
