"""Segment everything against the reference ``SamAutomaticMaskGenerator`` (same random weights).

Random weights give masks of pixel noise that span the whole image: every box is the image, so
box NMS keeps one mask and crops keep none. The "structured" model below is the same random
model with three changes that make its masks follow the image content instead (compact blobs
of one colour, with varied boxes), so NMS and crops have real decisions to make:

* the upscaling's transposed convolutions use one kernel for all four 2x2 positions (no
  pixel-level checkerboard);
* the image tokens' update from the prompt tokens is scaled by 0.1 (masks follow the image);
* the encoder's position embeddings are scaled by 0.1 (less position noise).

Random logits are small (|x| < 0.3) and predicted IoUs lie near 0, so the tests open the IoU
filter and use a stability offset of 0.01 instead of 1.0. The models have a 256-pixel input
(16 x 16 embedding) to keep the suite fast; the geometry is SAM's otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_segany import (
    AutomaticParams,
    MaskRecord,
    Predictor,
    generate_masks,
    iter_generate_masks,
    load_model,
    masks_to_labels,
    to_uint8_rgb,
)
from napari_segany.decoding import DECODERS
from reference_models import TinySpec, build_reference_vit, save_checkpoint

SPEC = TinySpec(img_size=256)
ALIVE = dict(pred_iou_thresh=0.0, stability_score_offset=0.01)


# ---- models and images -------------------------------------------------------------------------


def _structure(reference: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for conv in (
            reference.mask_decoder.output_upscaling[0],
            reference.mask_decoder.output_upscaling[3],
        ):
            conv.weight.copy_(conv.weight[:, :, :1, :1].expand_as(conv.weight))
        for layer in reference.mask_decoder.transformer.layers:
            layer.cross_attn_image_to_token.out_proj.weight.mul_(0.1)
            layer.cross_attn_image_to_token.out_proj.bias.mul_(0.1)
        for name, param in reference.image_encoder.named_parameters():
            if "pos" in name:
                param.mul_(0.1)
    return reference


def _pair(tmp_path_factory, structured: bool):
    reference = build_reference_vit(SPEC, seed=0)
    if structured:
        reference = _structure(reference)
    folder = tmp_path_factory.mktemp("automatic")
    ours = load_model(save_checkpoint(reference, folder / "sam.pth"), device="cpu")
    return reference, ours


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """(reference Sam, our Sam) with the same plain random weights."""
    return _pair(tmp_path_factory, structured=False)


@pytest.fixture(scope="module")
def structured(tmp_path_factory):
    """(reference Sam, our Sam) whose masks follow the image content (see module docstring)."""
    return _pair(tmp_path_factory, structured=True)


def fp32(model, decoder: str = "fast") -> Predictor:
    """A predictor that encodes in float32 like the reference (``auto`` may pick bf16)."""
    return Predictor(model, precision="fp32", decoder=decoder)


@pytest.fixture(params=DECODERS)
def decoder(request) -> str:
    """Each decoder in turn: the fast one and the model's literal one."""
    return request.param


def blobs(shape: tuple[int, int], seed: int = 0, n: int = 6) -> np.ndarray:
    """(H, W, 3) uint8: discs of random colours on a dark background."""
    from skimage.draw import disk

    rng = np.random.default_rng(seed)
    image = np.full((*shape, 3), 40, np.uint8)
    for _ in range(n):
        radius = rng.integers(4, max(5, min(shape) // 6))
        centre = (rng.integers(0, shape[0]), rng.integers(0, shape[1]))
        rows, cols = disk(centre, radius, shape=shape)
        image[rows, cols] = rng.integers(0, 256, 3)
    return image


def astronaut(shape: tuple[int, int]) -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut()[: shape[0], 100 : 100 + shape[1]])


# ---- comparing with the reference ------------------------------------------------------------


def reference_masks(reference, image: np.ndarray, **params) -> list[dict]:
    from segment_anything import SamAutomaticMaskGenerator

    grids = params.pop("point_grids", None)
    if grids is not None:  # ours are (row, col), the reference's (x, y)
        params["point_grids"] = [np.asarray(g)[:, ::-1] for g in grids]
        params["points_per_side"] = None
    return SamAutomaticMaskGenerator(reference, **params).generate(image)


def iou_matrix(ours: list[MaskRecord], theirs: list[dict]) -> np.ndarray:
    """(len(ours), len(theirs)) mask IoU."""
    a = np.stack([r.mask.ravel() for r in ours]).astype(np.float64)
    b = np.stack([t["segmentation"].ravel() for t in theirs]).astype(np.float64)
    inter = a @ b.T
    return inter / np.maximum(a.sum(1)[:, None] + b.sum(1)[None, :] - inter, 1)


def assert_same_masks(ours: list[MaskRecord], theirs: list[dict], shape) -> None:
    """>= 98% of each side's masks have a partner at IoU >= 0.99; identical partners from the
    same point agree in every field."""
    assert ours, "we found no mask where the reference found some"
    ious = iou_matrix(ours, theirs)
    assert (ious.max(axis=0) >= 0.99).mean() >= 0.98, "reference masks we do not produce"
    assert (ious.max(axis=1) >= 0.99).mean() >= 0.98, "masks the reference does not produce"
    twins = 0
    for i, j in zip(*np.nonzero(ious == 1.0)):
        mine, ref = ours[i], theirs[j]
        if not np.allclose(mine.point, ref["point_coords"][0][::-1], atol=1e-6):
            continue  # another prompt that found the same mask
        twins += 1
        assert mine.mask.shape == shape and mine.mask.dtype == np.bool_
        assert mine.area == ref["area"]
        x, y, w, h = ref["bbox"]
        assert mine.bbox == (y, x, y + h + 1, x + w + 1)
        cx, cy, cw, ch = (int(v) for v in ref["crop_box"])
        assert mine.crop_box == (cy, cx, cy + ch, cx + cw)
        assert mine.predicted_iou == pytest.approx(ref["predicted_iou"], abs=1e-4)
        assert mine.stability_score == pytest.approx(ref["stability_score"], abs=1e-3)
    assert twins >= 0.9 * len(theirs)


# ---- the oracle --------------------------------------------------------------------------------


def test_same_masks_as_reference_without_nms(plain, decoder):
    reference, model = plain
    image = astronaut((77, 123))
    params = dict(ALIVE, points_per_side=10, stability_score_thresh=0.5, box_nms_thresh=1.0)
    theirs = reference_masks(reference, image, **params)
    assert len(theirs) >= 100  # many candidates survive: the comparison means something
    ours = generate_masks(fp32(model, decoder), image, **params)
    assert_same_masks(ours, theirs, image.shape[:2])


def test_same_masks_as_reference_with_nms(structured, decoder):
    reference, model = structured
    image = blobs((131, 97))
    params = dict(ALIVE, points_per_side=10, stability_score_thresh=0.05)
    theirs = reference_masks(reference, image, **params)
    assert len(theirs) >= 5
    ours = generate_masks(fp32(model, decoder), image, **params)
    assert_same_masks(ours, theirs, image.shape[:2])
    assert len(ours) == len(theirs)
    # NMS made decisions: without it many more masks come back.
    everything = generate_masks(fp32(model, decoder), image, **dict(params, box_nms_thresh=1.0))
    assert len(everything) >= 5 * len(ours)
    # Results come best first, as the reference's do.
    scores = [r.predicted_iou for r in ours]
    assert scores == sorted(scores, reverse=True)


def test_iou_filter_matches_reference(structured, decoder):
    reference, model = structured
    image = blobs((97, 131), seed=1)
    params = dict(ALIVE, points_per_side=10, stability_score_thresh=0.05, box_nms_thresh=1.0)
    unfiltered = generate_masks(fp32(model, decoder), image, **params)
    params["pred_iou_thresh"] = 0.02
    theirs = reference_masks(reference, image, **params)
    assert 10 <= len(theirs) <= len(unfiltered) // 2  # the filter is active and keeps many
    ours = generate_masks(fp32(model, decoder), image, **params)
    assert_same_masks(ours, theirs, image.shape[:2])
    assert min(r.predicted_iou for r in ours) > 0.02


def test_same_masks_as_reference_with_crops(structured, decoder):
    reference, model = structured
    image = blobs((131, 97))
    params = dict(
        ALIVE,
        points_per_side=10,
        stability_score_thresh=0.05,
        crop_n_layers=1,
        crop_n_points_downscale_factor=2,
    )
    theirs = reference_masks(reference, image, **params)
    from_crops = [t for t in theirs if t["crop_box"][2:] != [97, 131]]
    assert len(from_crops) >= 3  # crops contributed masks of their own
    ours = generate_masks(fp32(model, decoder), image, **params)
    assert_same_masks(ours, theirs, image.shape[:2])
    whole = (0, 0, *image.shape[:2])
    in_crops = [r for r in ours if r.crop_box != whole]
    assert len(in_crops) == len(from_crops)
    for record in in_crops:  # nothing cut off by a crop's inner edge (the reference's rule)
        r0, c0, r1, c1 = record.bbox
        box = np.array([r0, c0, r1 - 1, c1 - 1])  # the reference compares the last pixel
        near_crop = np.abs(box - np.array(record.crop_box)) <= 20
        near_image = np.abs(box - np.array(whole)) <= 20
        assert not (near_crop & ~near_image).any()


def test_two_crop_layers_and_explicit_grids_match_reference(structured, decoder):
    reference, model = structured
    image = blobs((120, 150), seed=2, n=8)
    rng = np.random.default_rng(3)
    # Asymmetric grids: a (row, col) / (x, y) mix-up cannot go unnoticed.
    grids = [
        rng.uniform(0, 1, (60, 2)) * [1.0, 0.6],
        rng.uniform(0, 1, (20, 2)),
        rng.uniform(0, 1, (8, 2)),
    ]
    params = dict(ALIVE, stability_score_thresh=0.05, crop_n_layers=2, point_grids=grids)
    theirs = reference_masks(reference, image, **dict(params))
    assert len(theirs) >= 5
    ours = generate_masks(fp32(model, decoder), image, points_per_side=None, **params)
    assert_same_masks(ours, theirs, image.shape[:2])
    assert max(r.point[1] for r in ours if r.crop_box == (0, 0, 120, 150)) <= 0.6 * 150


def test_small_regions_match_reference(structured, decoder):
    pytest.importorskip("cv2", reason="the reference removes small regions with OpenCV")
    reference, model = structured
    image = blobs((131, 97))
    params = dict(ALIVE, points_per_side=8, stability_score_thresh=0.05, min_mask_region_area=40)
    theirs = reference_masks(reference, image, **params)
    ours = generate_masks(fp32(model, decoder), image, **params)
    assert_same_masks(ours, theirs, image.shape[:2])
    raw = generate_masks(fp32(model, decoder), image, **dict(params, min_mask_region_area=0))
    raw_masks = [r.mask for r in raw]
    changed = [r for r in ours if not any((r.mask == m).all() for m in raw_masks)]
    assert changed  # the clean-up changed masks: the comparison covered it


# ---- our own guarantees ------------------------------------------------------------------------


def test_small_islands_and_holes_are_removed(structured):
    from skimage.measure import label

    _, model = structured
    image = blobs((131, 97))
    params = dict(ALIVE, points_per_side=8, stability_score_thresh=0.05, box_nms_thresh=1.0)
    raw = generate_masks(fp32(model), image, **params)
    cleaned = generate_masks(fp32(model), image, min_mask_region_area=30, **params)

    def small_parts(mask: np.ndarray) -> tuple[int, int]:
        islands = np.bincount(label(mask, connectivity=2).ravel())[1:]
        holes = np.bincount(label(~mask, connectivity=2).ravel())[1:]
        small_islands = int((islands < 30).sum()) if (islands >= 30).any() else 0
        return small_islands, int((holes < 30).sum())

    assert sum(sum(small_parts(r.mask)) for r in raw) > 0  # there was something to clean
    assert all(small_parts(r.mask) == (0, 0) for r in cleaned)
    for record in cleaned:
        assert record.area == record.mask.sum()
        r0, c0, r1, c1 = record.bbox
        assert record.mask[r0:r1, c0:c1].sum() == record.area


def test_remove_small_regions_follows_the_reference_rules():
    from napari_segany.automatic.filters import remove_small_regions

    mask = np.zeros((12, 12), bool)
    mask[1:9, 1:9] = True
    mask[4, 4] = False  # a 1-pixel hole
    mask[10:12, 10:12] = True  # a 4-pixel island
    filled, changed = remove_small_regions(mask, 3, "holes")
    assert changed and filled[4, 4] and filled[10:12, 10:12].all()
    cleaned, changed = remove_small_regions(mask, 5, "islands")
    assert changed and not cleaned[10:12, 10:12].any() and cleaned[1, 1]
    same, changed = remove_small_regions(mask, 2, "islands")
    assert not changed and (same == mask).all()
    # When every island is small, the largest one stays.
    tiny = np.zeros((8, 8), bool)
    tiny[0, 0] = True
    tiny[5:7, 5:7] = True
    kept, changed = remove_small_regions(tiny, 100, "islands")
    assert changed and kept.sum() == 4 and kept[5:7, 5:7].all()


def test_reuses_the_predictors_embedding_without_an_image(structured):
    _, model = structured
    image = blobs((131, 97))
    params = dict(ALIVE, points_per_side=8, stability_score_thresh=0.05)
    expected = generate_masks(fp32(model), image, **params)

    predictor = fp32(model)
    calls = []
    hook = model.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        predictor.set_image(image)
        assert calls == [1]  # the hook sees encodings
        reused = generate_masks(predictor, **params)
    finally:
        hook.remove()
    assert calls == [1]  # no re-encoding
    assert len(reused) == len(expected) >= 3
    for a, b in zip(reused, expected):
        assert (a.mask == b.mask).all() and a.bbox == b.bbox


def test_predictor_keeps_the_whole_image_after_crops(structured):
    _, model = structured
    image = blobs((131, 97))
    whole = fp32(model)
    whole.set_image(image)
    predictor = fp32(model)
    generate_masks(predictor, image, points_per_side=4, crop_n_layers=1, **ALIVE)
    assert predictor.original_size == (131, 97)
    np.testing.assert_allclose(
        predictor.get_image_embedding(), whole.get_image_embedding(), rtol=0, atol=0
    )


def test_missing_image_is_refused_clearly(plain):
    _, model = plain
    with pytest.raises(ValueError, match="set_image"):
        iter_generate_masks(fp32(model))  # reported at the call, before any step
    predictor = fp32(model)
    predictor.set_image(blobs((40, 50)))
    with pytest.raises(ValueError, match="[Cc]rops need the image"):
        generate_masks(predictor, crop_n_layers=1)


def test_progress_counts_encodings_and_batches(structured):
    _, model = structured
    seen: list[tuple[int, int]] = []
    generate_masks(
        fp32(model),
        blobs((60, 80)),
        points_per_side=8,
        points_per_batch=16,
        progress=lambda done, total: seen.append((done, total)),
        **ALIVE,
    )
    # One encoding and 64 / 16 = 4 batches.
    assert seen == [(i, 5) for i in range(6)]


def test_closing_the_generator_cancels_between_batches(structured, monkeypatch):
    _, model = structured
    decoded = []
    original = Predictor.decode_torch
    monkeypatch.setattr(
        Predictor,
        "decode_torch",
        lambda self, xy, *args, **kw: decoded.append(len(xy)) or original(self, xy, *args, **kw),
    )
    predictor = fp32(model)
    steps = iter_generate_masks(
        predictor, blobs((60, 80)), points_per_side=8, points_per_batch=16, crop_n_layers=1, **ALIVE
    )
    # 5 encodings; 64 points / 16 = 4 batches in the whole image and in each of the 4 crops.
    assert next(steps) == (0, 5 + 4 + 4 * 4)
    next(steps)  # the whole image is encoded
    next(steps)  # one batch decoded
    steps.close()
    assert sum(decoded) == 16
    with pytest.raises(StopIteration):
        next(steps)
    assert predictor.original_size == (60, 80)  # the whole image, not a crop


def test_any_image_type_is_converted_like_the_predictor_does(structured):
    _, model = structured
    rgb = blobs((70, 90))
    gray16 = (rgb.mean(axis=2) * 200).astype(np.uint16)
    params = dict(ALIVE, points_per_side=6, stability_score_thresh=0.05)
    limits = (float(gray16.min()), float(gray16.max()))
    direct = generate_masks(fp32(model), gray16, contrast_limits=limits, **params)
    converted = generate_masks(fp32(model), to_uint8_rgb(gray16, limits), **params)
    assert len(direct) == len(converted) >= 1
    assert all((a.mask == b.mask).all() for a, b in zip(direct, converted))


def test_masks_to_labels_keeps_small_objects_on_top():
    def record(mask: np.ndarray) -> MaskRecord:
        rows, cols = np.nonzero(mask)
        box = (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1)
        return MaskRecord(mask, int(mask.sum()), box, 0.9, 0.9, (0.0, 0.0), (0, 0, 10, 12))

    big = np.zeros((10, 12), bool)
    big[1:9, 1:11] = True
    small = np.zeros((10, 12), bool)
    small[3:5, 3:5] = True
    apart = np.zeros((10, 12), bool)
    apart[9, 0] = True
    labels = masks_to_labels([record(small), record(big), record(apart)], (10, 12))
    assert labels.dtype == np.int32 and labels.shape == (10, 12)
    assert (labels[small] == 1).all()  # the small object is visible inside the big one
    assert (labels[big & ~small] == 2).all()
    assert labels[9, 0] == 3 and labels[0, 0] == 0
    assert (masks_to_labels([], (4, 5)) == 0).all()
    with pytest.raises(ValueError, match="shape"):
        masks_to_labels([record(big)], (10, 13))


def test_records_describe_their_masks(structured):
    _, model = structured
    image = blobs((131, 97))
    records = generate_masks(
        fp32(model),
        image,
        points_per_side=8,
        stability_score_thresh=0.05,
        crop_n_layers=1,
        **ALIVE,
    )
    assert len(records) >= 3
    for record in records:
        assert record.mask.shape == image.shape[:2] and record.mask.dtype == np.bool_
        assert record.area == record.mask.sum() > 0
        r0, c0, r1, c1 = record.bbox  # tight, max exclusive
        inside = record.mask[r0:r1, c0:c1]
        assert inside.sum() == record.area
        assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
        cr0, cc0, cr1, cc1 = record.crop_box
        assert cr0 <= r0 and cc0 <= c0 and r1 <= cr1 and c1 <= cc1
        assert cr0 <= record.point[0] <= cr1 and cc0 <= record.point[1] <= cc1


def test_parameters_are_checked_with_clear_messages(plain):
    _, model = plain
    predictor = fp32(model)
    image = blobs((30, 40))
    with pytest.raises(TypeError, match="points_per_side"):
        generate_masks(predictor, image, points_per_sied=8)
    with pytest.raises(ValueError, match="points_per_batch"):
        generate_masks(predictor, image, points_per_batch=0)
    with pytest.raises(ValueError, match="one per layer"):
        generate_masks(predictor, image, point_grids=[np.full((4, 2), 0.5)], crop_n_layers=1)
    with pytest.raises(ValueError, match="no points"):
        generate_masks(
            predictor, image, points_per_side=2, crop_n_layers=2, crop_n_points_downscale_factor=2
        )
    with pytest.raises(ValueError, match="finite"):
        generate_masks(predictor, image, box_nms_thresh=float("nan"))
    grid = [np.array([[0.5, 0.25]])]
    assert AutomaticParams(point_grids=grid) == AutomaticParams(point_grids=grid)


# ---- the pieces, against the reference's own helpers --------------------------------------------


def test_box_nms_matches_torchvision():
    import torchvision

    from napari_segany.automatic.filters import box_nms

    rng = np.random.default_rng(0)
    corners = rng.integers(0, 60, (400, 2))
    sizes = rng.integers(0, 30, (400, 2))  # zero-size boxes included
    boxes = torch.as_tensor(np.concatenate([corners, corners + sizes], axis=1))
    scores = torch.as_tensor(np.round(rng.uniform(0, 1, 400), 2), dtype=torch.float32)  # ties
    for threshold in (0.0, 0.3, 0.7):
        expected = torchvision.ops.nms(boxes.float(), scores, threshold)
        kept = box_nms(boxes, scores, threshold)
        assert 0 < len(kept) < 400
        assert kept.tolist() == expected.tolist()
    assert (
        box_nms(boxes, scores, 1.0).tolist()
        == torch.argsort(scores, descending=True, stable=True).tolist()
    )


def test_crop_boxes_and_point_grids_match_reference():
    from segment_anything.utils.amg import build_all_layer_point_grids, generate_crop_boxes

    from napari_segany.automatic.geometry import crop_boxes, layer_point_grids

    for height, width, layers, overlap in [
        (131, 97, 2, 512 / 1500),
        (512, 700, 3, 0.3),
        (9, 9, 1, 0.0),
    ]:
        boxes, layer_of = generate_crop_boxes((height, width), layers, overlap)
        expected = [((y0, x0, y1, x1), layer) for (x0, y0, x1, y1), layer in zip(boxes, layer_of)]
        assert crop_boxes(height, width, layers, overlap) == expected
    for grid, ref in zip(layer_point_grids(12, 2, 2), build_all_layer_point_grids(12, 2, 2)):
        np.testing.assert_array_equal(grid, ref[:, ::-1])


def test_crop_edge_filter_matches_reference():
    from segment_anything.utils.amg import is_box_near_crop_edge

    from napari_segany.automatic.filters import near_crop_edge

    rng = np.random.default_rng(1)
    crop = (30, 40, 100, 150)  # rows 30:100, cols 40:150 of a 120 x 150 image
    r0 = rng.integers(0, 70, 300)
    c0 = rng.integers(0, 110, 300)
    ours = torch.as_tensor(
        np.stack([r0, c0, r0 + rng.integers(0, 70 - r0), c0 + rng.integers(0, 110 - c0)], 1)
    )
    expected = is_box_near_crop_edge(ours[:, [1, 0, 3, 2]], [40, 30, 150, 100], [0, 0, 150, 120])
    got = near_crop_edge(ours, crop, (120, 150))
    assert 0 < int(got.sum()) < 300
    assert got.tolist() == expected.tolist()
