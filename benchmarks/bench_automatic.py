"""Segment everything: napari-segany against the reference ``SamAutomaticMaskGenerator``.

Both run on the same random weights (vit_b-shaped by default) and the same 512 x 512 image,
each including its own image encoding. Prints both times, their ratio, and how many masks of
each side the other side has at IoU >= 0.99.

Random weights predict IoUs near 0 and low-contrast logits, so with the reference defaults no
mask survives and the comparison would be empty. By default the IoU filter is off and the
stability score uses a small offset (the worst case for speed: every candidate mask is
measured at full resolution). Random masks are pixel noise spanning the whole image, so box NMS
would keep a single mask; it is off by default (``--nms`` turns it on) so that hundreds of
masks are compared. ``--defaults`` runs the reference defaults instead.

    python benchmarks/bench_automatic.py                  # vit_b, 32 x 32 points (minutes)
    python benchmarks/bench_automatic.py --tiny -n 16     # quick check while developing
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from reference_models import (  # noqa: E402
    VIT_B_SPEC,
    TinySpec,
    build_reference_vit,
    save_checkpoint,
)

ALIVE = dict(
    pred_iou_thresh=0.0, stability_score_thresh=0.5, stability_score_offset=0.01, box_nms_thresh=1.0
)


def test_image(name: str, size: int) -> np.ndarray:
    """A (size, size, 3) uint8 crop of a scikit-image sample."""
    import skimage.data
    from skimage.color import gray2rgb

    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = gray2rgb(image)
    if min(image.shape[:2]) < size:
        raise SystemExit(f"skimage.data.{name} is smaller than {size} pixels.")
    return np.ascontiguousarray(image[:size, :size, :3])


def match_fractions(ours: list[np.ndarray], theirs: list[np.ndarray], iou: float = 0.99):
    """(fraction of theirs matched by one of ours, fraction of ours matched by theirs).

    Two masks with IoU >= 0.99 have areas within 1% of each other, so only such pairs are
    compared: thousands of full-size masks never need a dense IoU matrix.
    """
    if not ours or not theirs:
        return float(not theirs), float(not ours)
    area_o = np.array([m.sum() for m in ours])
    area_t = np.array([m.sum() for m in theirs])
    order = np.argsort(area_o)
    matched_o = np.zeros(len(ours), dtype=bool)
    matched_t = np.zeros(len(theirs), dtype=bool)
    for j, mask in enumerate(theirs):
        lo = np.searchsorted(area_o[order], area_t[j] * iou, side="left")
        hi = np.searchsorted(area_o[order], area_t[j] / iou, side="right")
        for i in order[lo:hi]:
            inter = np.count_nonzero(ours[i] & mask)
            if inter >= iou * (area_o[i] + area_t[j] - inter):
                matched_o[i] = matched_t[j] = True
    return float(matched_t.mean()), float(matched_o.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny random model, not vit_b")
    parser.add_argument("-n", "--points-per-side", type=int, default=32)
    parser.add_argument("--points-per-batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=512, help="side of the square test image")
    parser.add_argument("--image", default="immunohistochemistry", help="a skimage.data name")
    parser.add_argument("--defaults", action="store_true", help="the reference's default filters")
    parser.add_argument("--nms", action="store_true", help="box NMS on (it keeps one random mask)")
    parser.add_argument("--pred-iou-thresh", type=float, help="override the IoU filter")
    parser.add_argument("--stability-thresh", type=float, help="override stability_score_thresh")
    parser.add_argument("--stability-offset", type=float, help="override stability_score_offset")
    parser.add_argument("--crop-n-layers", type=int, default=0)
    parser.add_argument("--no-reference", action="store_true", help="time ours only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--precision", default="fp32", help="our encoder's precision (the reference's is fp32)"
    )
    args = parser.parse_args()

    from segment_anything import SamAutomaticMaskGenerator

    from napari_segany import Predictor, generate_masks, load_model

    spec = TinySpec() if args.tiny else VIT_B_SPEC
    params = dict(
        points_per_side=args.points_per_side,
        points_per_batch=args.points_per_batch,
        crop_n_layers=args.crop_n_layers,
    )
    if not args.defaults:
        params.update(ALIVE)
    if args.nms:
        params["box_nms_thresh"] = 0.7
    overrides = {
        "pred_iou_thresh": args.pred_iou_thresh,
        "stability_score_thresh": args.stability_thresh,
        "stability_score_offset": args.stability_offset,
    }
    params.update({name: value for name, value in overrides.items() if value is not None})
    image = test_image(args.image, args.size)
    reference = build_reference_vit(spec, seed=args.seed)
    with tempfile.TemporaryDirectory() as folder:
        model = load_model(save_checkpoint(reference, Path(folder) / "random.pth"), device="cpu")
    print(
        f"model: {'tiny' if args.tiny else 'vit_b'} (random weights), image: {args.image} "
        f"{image.shape[0]}x{image.shape[1]}, our encoder in {args.precision}, "
        f"torch threads: {torch.get_num_threads()}"
    )
    print(f"params: {params}")

    start = time.perf_counter()
    ours = generate_masks(Predictor(model, precision=args.precision), image, **params)
    ours_s = time.perf_counter() - start
    print(f"napari-segany: {len(ours)} masks in {ours_s:.1f} s")
    if args.no_reference:
        return

    generator = SamAutomaticMaskGenerator(reference, **params)
    start = time.perf_counter()
    theirs = generator.generate(image)
    theirs_s = time.perf_counter() - start
    print(f"reference:     {len(theirs)} masks in {theirs_s:.1f} s")

    matched_theirs, matched_ours = match_fractions(
        [r.mask for r in ours], [t["segmentation"] for t in theirs]
    )
    print(f"time ratio (ours / reference): {ours_s / theirs_s:.3f}")
    print(f"reference masks matched by ours at IoU >= 0.99: {matched_theirs:.1%}")
    print(f"our masks matched by the reference at IoU >= 0.99: {matched_ours:.1%}")


if __name__ == "__main__":
    main()
