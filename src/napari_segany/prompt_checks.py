"""Checking prompts before they reach the model: shapes, labels, and that they lie on the image.

Each check returns the prompt in the form the predictor uses, or raises ValueError saying what
is wrong with it. Points are (row, col) and boxes (min_row, min_col, max_row, max_col) in the
image's pixels, where pixel (r, c) covers [r - 0.5, r + 0.5] x [c - 0.5, c + 0.5].
"""

from __future__ import annotations

import numpy as np

from .geometry import inside_image


def check_points(
    points: np.ndarray | None, labels: np.ndarray | None, image_shape: tuple[int, int]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(N, 2) float64 points and (N,) int32 labels, or (None, None) for no points."""
    if points is None:
        if labels is not None and np.size(labels):
            raise ValueError("labels were given without points.")
        return None, None
    coords = np.asarray(points, dtype=np.float64)
    if coords.size == 0:
        return None, None
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2) as (row, col); got {coords.shape}.")
    if labels is None:
        raise ValueError("points need labels: 1 for foreground, 0 for background, one each.")
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != coords.shape[0]:
        raise ValueError(
            f"{coords.shape[0]} points but labels of shape {lab.shape}: give one label per point."
        )
    if not np.all(np.isin(lab, (0, 1))):
        raise ValueError(f"labels must be 1 (foreground) or 0 (background); got {np.unique(lab)}.")
    check_inside(coords, "point", image_shape)
    return coords, lab.astype(np.int32)


def check_boxes(
    box: np.ndarray | None, image_shape: tuple[int, int]
) -> tuple[np.ndarray | None, bool]:
    """(K, 4) float64 boxes with min before max, and whether a (K, 4) batch was given."""
    if box is None:
        return None, False
    boxes = np.asarray(box, dtype=np.float64)
    batched = boxes.ndim == 2
    if boxes.shape == (4,):
        boxes = boxes[None]
    if boxes.ndim != 2 or boxes.shape[1] != 4 or boxes.shape[0] == 0:
        raise ValueError(
            "box must be (min_row, min_col, max_row, max_col), or a (K, 4) array of them; "
            f"got shape {boxes.shape}."
        )
    # Rectangles drawn in any direction describe the same box.
    boxes = np.concatenate(
        [np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], axis=1
    )
    check_inside(boxes.reshape(-1, 2), "box corner", image_shape)
    return boxes, batched


def check_mask_input(
    mask_input: np.ndarray | None, n_objects: int, side: tuple[int, int]
) -> np.ndarray | None:
    """(K, 1, h, w) float32 low-res logits (a writable copy), or None."""
    if mask_input is None:
        return None
    m = np.asarray(mask_input, dtype=np.float32)
    if m.shape == (1, *side):
        m = np.broadcast_to(m[None], (n_objects, 1, *side))
    if m.shape != (n_objects, 1, *side):
        raise ValueError(
            f"mask_input must be the (1, {side[0]}, {side[1]}) low-res logits of a previous "
            f"prediction (or ({n_objects}, 1, {side[0]}, {side[1]}) for {n_objects} boxes); "
            f"got shape {m.shape}."
        )
    if not np.all(np.isfinite(m)):
        raise ValueError("mask_input contains NaN or infinite values.")
    return np.array(m, dtype=np.float32, order="C")  # a writable copy, not a broadcast view


def check_inside(coords: np.ndarray, what: str, image_shape: tuple[int, int]) -> None:
    """ValueError naming the first of ``coords`` (N, 2) that is off the image or not finite."""
    h, w = image_shape
    if not np.all(np.isfinite(coords)):
        raise ValueError(f"A {what} has a NaN or infinite coordinate.")
    outside = ~inside_image(coords, (h, w))
    if np.any(outside):
        bad = coords[np.argmax(outside)]
        raise ValueError(
            f"A {what} at (row {bad[0]:g}, col {bad[1]:g}) lies outside the {h} x {w} image; "
            "place prompts on the image."
        )
