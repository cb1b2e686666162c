"""Masks as COCO run-length encoding, and segment-everything results as SA-1B annotations.

RLE follows COCO: the mask is read in column-major (Fortran) order and ``counts`` alternates
run lengths of 0s and 1s, starting with 0s. :func:`encode_rle` writes the *compressed* string
form that pycocotools' ``mask.encode`` produces and that SA-1B's files hold
(``{"size": [h, w], "counts": "..."}``); with ``compressed=False`` it writes the plain list of
run lengths instead. :func:`decode_rle` reads both, so ``pycocotools.mask.decode`` reads ours
and we read theirs.

An SA-1B annotation (:func:`sa1b_annotation`) has ``segmentation`` (RLE), ``bbox`` and
``crop_box`` as XYWH, ``area``, ``predicted_iou``, ``stability_score`` and ``point_coords``
(``[[x, y]]``), all in image pixels, x = column and y = row. ``bbox`` follows the reference
``SamAutomaticMaskGenerator`` (and so SA-1B): width and height are the differences between the
last and first covered column and row, one less than the number of pixels spanned (what
``pycocotools.mask.toBbox`` reports). ``crop_box`` spans the crop's pixels exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .records import MaskRecord

RLE = dict[str, Any]


def encode_rle(mask: np.ndarray, compressed: bool = True) -> RLE:
    """COCO RLE of a (H, W) mask (any dtype; nonzero is foreground).

    Returns ``{"size": [H, W], "counts": str}`` (compressed, as pycocotools and SA-1B) or, with
    ``compressed=False``, ``{"size": [H, W], "counts": [int, ...]}``.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"RLE encodes one 2-D mask; got an array of shape {mask.shape}.")
    height, width = (int(s) for s in mask.shape)
    flat = mask.astype(bool).ravel(order="F")
    if flat.size == 0:
        counts = np.zeros(0, dtype=np.int64)
    else:
        starts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        counts = np.diff(np.concatenate([[0], starts, [flat.size]]))
        if flat[0]:
            counts = np.concatenate([[0], counts])  # counts always begin with a run of 0s
    values = [int(c) for c in counts]
    return {"size": [height, width], "counts": _compress(values) if compressed else values}


def decode_rle(rle: Mapping[str, Any]) -> np.ndarray:
    """The (H, W) bool mask of a COCO RLE with compressed (str or bytes) or list counts."""
    try:
        height, width = (int(s) for s in rle["size"])
        counts = rle["counts"]
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            "An RLE must be a mapping with 'size': [height, width] and 'counts'; got "
            f"{_short(rle)}."
        ) from None
    if isinstance(counts, (str, bytes)):
        counts = _decompress(counts)
    runs = np.asarray(counts, dtype=np.int64).reshape(-1)
    if np.any(runs < 0) or int(runs.sum()) != height * width:
        raise ValueError(
            f"Corrupt RLE: its runs cover {int(runs.sum())} pixels, but size {height} x {width} "
            f"has {height * width}."
        )
    values = np.zeros(runs.size, dtype=bool)
    values[1::2] = True
    return np.repeat(values, runs).reshape((width, height)).T


def rle_area(rle: Mapping[str, Any]) -> int:
    """Foreground pixel count of an RLE, without decoding the mask."""
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        counts = _decompress(counts)
    return int(sum(counts[1::2]))


def xywh_bbox(bbox: tuple[int, int, int, int]) -> list[int]:
    """A :class:`MaskRecord` bbox (min_row, min_col, max_row, max_col), max exclusive ->
    the reference's XYWH (x, y, last_col - x, last_row - y)."""
    r0, c0, r1, c1 = (int(v) for v in bbox)
    return [c0, r0, c1 - 1 - c0, r1 - 1 - r0]


def xywh_crop_box(crop_box: tuple[int, int, int, int]) -> list[int]:
    """A crop box (min_row, min_col, max_row, max_col), max exclusive -> XYWH of its pixels."""
    r0, c0, r1, c1 = (int(v) for v in crop_box)
    return [c0, r0, c1 - c0, r1 - r0]


def sa1b_annotation(
    record: MaskRecord, annotation_id: int | None = None, compressed: bool = True
) -> dict[str, Any]:
    """One segment-everything result as an SA-1B annotation dict (JSON-ready)."""
    row, col = record.point
    annotation: dict[str, Any] = {}
    if annotation_id is not None:
        annotation["id"] = int(annotation_id)
    annotation.update(
        segmentation=encode_rle(record.mask, compressed=compressed),
        bbox=xywh_bbox(record.bbox),
        area=int(record.area),
        predicted_iou=float(record.predicted_iou),
        stability_score=float(record.stability_score),
        point_coords=[[float(col), float(row)]],
        crop_box=xywh_crop_box(record.crop_box),
    )
    return annotation


# ---- the compressed counts string ------------------------------------------------------------
# Each count is stored as the difference to the count two places earlier (from the fourth count
# on), in little-endian groups of 5 bits; bit 0x20 says another group follows, bit 0x10 of the
# last group is the sign, and each group is offset by 48 into printable ASCII.


def _compress(counts: list[int]) -> str:
    out = bytearray()
    for i, count in enumerate(counts):
        value = count - counts[i - 2] if i > 2 else count
        while True:
            group = value & 0x1F
            value >>= 5  # arithmetic shift: negative values end at -1
            more = value != -1 if group & 0x10 else value != 0
            out.append((group | 0x20 if more else group) + 48)
            if not more:
                break
    return out.decode("ascii")


def _decompress(text: str | bytes) -> list[int]:
    data = text.encode("ascii") if isinstance(text, str) else bytes(text)
    counts: list[int] = []
    pos = 0
    while pos < len(data):
        value = shift = 0
        while True:
            if pos >= len(data):
                raise ValueError("Corrupt RLE: the counts string ends in the middle of a number.")
            group = data[pos] - 48
            if not 0 <= group < 64:
                raise ValueError(f"Corrupt RLE: character {chr(data[pos])!r} is not RLE data.")
            pos += 1
            value |= (group & 0x1F) << shift
            shift += 5
            if not group & 0x20:
                if group & 0x10:
                    value |= -1 << shift  # sign-extend
                break
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
