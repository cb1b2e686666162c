"""COCO run-length encoding and SA-1B annotations, checked against pycocotools itself."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from napari_segany.automatic import MaskRecord
from napari_segany.automatic.coco import decode_rle, encode_rle, rle_area, sa1b_annotation


def _coco_decode(rle) -> np.ndarray:
    with warnings.catch_warnings():  # pycocotools' own use of numpy 2, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        return coco_mask.decode(rle).astype(bool)


def _masks(rng: np.random.Generator):
    """Masks with the awkward cases: empty, full, 1-pixel, starting with foreground, noise,
    and runs long enough to need several 5-bit groups and negative deltas."""
    yield np.zeros((7, 5), bool)
    yield np.ones((4, 9), bool)
    single = np.zeros((6, 6), bool)
    single[0, 0] = True
    yield single
    for _ in range(40):
        h, w = rng.integers(1, 40, size=2)
        yield rng.random((h, w)) < rng.random()
    big = np.zeros((1500, 1300), bool)
    big[200:1400, 100:1200] = True
    big[700:705, 5:1295] = False
    yield big


def test_rle_round_trips_and_matches_pycocotools(rng):
    for mask in _masks(rng):
        ours = encode_rle(mask)
        theirs = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        # Byte for byte the string SA-1B files and pycocotools hold ...
        assert ours["counts"] == theirs["counts"].decode("ascii")
        assert ours["size"] == [int(s) for s in theirs["size"]] == list(mask.shape)
        # ... so both decoders give the mask back.
        np.testing.assert_array_equal(decode_rle(ours), mask)
        rle_bytes = {"size": ours["size"], "counts": ours["counts"].encode()}
        np.testing.assert_array_equal(_coco_decode(rle_bytes), mask)
        np.testing.assert_array_equal(decode_rle(theirs), mask)
        assert rle_area(ours) == int(mask.sum())


def test_uncompressed_counts_round_trip(rng):
    mask = rng.random((31, 17)) < 0.3
    rle = encode_rle(mask, compressed=False)
    assert all(isinstance(c, int) for c in rle["counts"])
    assert sum(rle["counts"]) == mask.size
    np.testing.assert_array_equal(decode_rle(rle), mask)
    assert rle_area(rle) == int(mask.sum())


def test_rle_is_column_major_as_in_coco():
    mask = np.array([[0, 1], [0, 1], [1, 1]], dtype=bool)  # columns: 0,0,1 then 1,1,1
    assert encode_rle(mask, compressed=False)["counts"] == [2, 4]


def test_corrupt_rle_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="cover 5 pixels"):
        decode_rle({"size": [2, 3], "counts": [2, 3]})
    with pytest.raises(ValueError, match="size"):
        decode_rle({"counts": "abc"})
    with pytest.raises(ValueError, match="not RLE data"):
        decode_rle({"size": [2, 3], "counts": "0\x01"})


def test_sa1b_annotation_uses_sa1b_coordinates():
    mask = np.zeros((20, 30), bool)
    mask[4:9, 10:22] = True  # rows 4..8, columns 10..21
    record = MaskRecord(
        mask=mask,
        area=int(mask.sum()),
        bbox=(4, 10, 9, 22),
        predicted_iou=0.91,
        stability_score=0.97,
        point=(6.5, 15.25),
        crop_box=(0, 0, 20, 30),
    )
    annotation = sa1b_annotation(record, annotation_id=3)
    assert annotation["id"] == 3
    # The reference generator's XYWH: x, y of the first pixel, width/height as last - first.
    assert annotation["bbox"] == [10, 4, 11, 4]
    # pycocotools counts the pixels spanned, one more than the reference's width and height.
    x, y, w, h = coco_mask.toBbox(coco_mask.encode(np.asfortranarray(mask.astype(np.uint8))))
    assert annotation["bbox"] == [x, y, w - 1, h - 1]
    assert annotation["crop_box"] == [0, 0, 30, 20]
    assert annotation["point_coords"] == [[15.25, 6.5]]  # (x, y)
    assert annotation["area"] == 60
    assert annotation["predicted_iou"] == pytest.approx(0.91)
    assert annotation["stability_score"] == pytest.approx(0.97)
    np.testing.assert_array_equal(decode_rle(annotation["segmentation"]), mask)
