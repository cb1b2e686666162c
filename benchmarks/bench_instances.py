"""Instance segmentation with micro-sam's decoder: napari-segany against micro-sam 1.8.14.

Both sides get the same random vit_b weights, the same random full-width instance decoder
(torch-em's 512-256-128-64 UNETR decoder, in micro-sam's decoder-file format) and the same
image embedding (ours, fp32, computed once), on a 1024 x 1024 image. Timed, each the best of
``--repeats``:

- AIS: the decoder on the embedding, then the watershed (micro-sam's
  ``InstanceSegmentationWithDecoder.initialize`` + ``generate``). Target: ours <= 0.5x.
  Also with ``precision="auto"`` (the decoder in bf16 where the CPU runs it fast), its labels
  matched against micro-sam's fp32 ones.
- APG: from the decoder's maps, SAM decoding a point per seed, NMS and merging
  (``AutomaticPromptGenerator.generate``). Random SAM weights make every mask cover most of
  the image, and micro-sam compares every pair of overlapping masks at full resolution, so
  APG's seeds are limited by a lower centre-distance threshold (``--apg-center``).
- our segment-everything (32 x 32 points, reference defaults) on the same embedding, for
  scale: AIS should be at least 10x faster.

micro-sam runs in its own environment (``tests/microsam_bridge.py``).

    python benchmarks/bench_instances.py            # vit_b, 1024 x 1024 (several minutes)
    python benchmarks/bench_instances.py --tiny     # quick check while developing
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / p) for p in ("tests", "tests/instances")]

from instance_matching import matched_agreement  # noqa: E402

from microsam_bridge import run_task  # noqa: E402
from reference_models import VIT_B_SPEC, TinySpec, build_reference_vit, save_checkpoint  # noqa: E402


def bench_image(size: int) -> np.ndarray:
    """scikit-image's astronaut, resized to (size, size, 3) uint8."""
    import skimage.data
    from skimage.transform import resize

    image = resize(skimage.data.astronaut(), (size, size), order=1, anti_aliasing=True)
    return (image * 255).astype(np.uint8)


@torch.no_grad()
def random_decoder(embedding: torch.Tensor, seed: int = 0):
    """A full-width instance decoder with random weights whose maps have structure: random
    batch-norm statistics and biases, output biases centred on this embedding."""
    from napari_segany.modeling.instance_decoder import InstanceDecoder

    torch.manual_seed(seed)
    decoder = InstanceDecoder().eval()
    gen = torch.Generator().manual_seed(seed + 1)
    for key, tensor in decoder.state_dict().items():
        if not tensor.is_floating_point():
            continue
        if key.endswith("running_var"):
            tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
        elif key.endswith(("running_mean", "bias")):
            tensor.copy_(0.1 * torch.randn(tensor.shape, generator=gen))
    maps = decoder(embedding)
    logits = torch.logit(maps[0].clamp(1e-6, 1 - 1e-6)).flatten(1)
    decoder.out_conv.bias -= logits.median(dim=1).values
    return decoder


def best_of(repeats: int, fn):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny ViT instead of vit_b")
    parser.add_argument("--size", type=int, default=1024, help="image side (pixels)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--apg-center",
        type=float,
        default=0.2,
        help="APG's center_distance_threshold (fewer seeds when lower)",
    )
    parser.add_argument("--no-amg", action="store_true", help="skip segment-everything")
    args = parser.parse_args()
    torch.set_num_threads(2)

    from napari_segany import Predictor, generate_masks
    from napari_segany.instances import (
        load_sam_with_decoder,
        predict_instance_maps,
        segment_instances,
        watershed_instances,
    )  # fmt: skip

    spec = TinySpec() if args.tiny else VIT_B_SPEC
    folder = Path(tempfile.mkdtemp(prefix="bench-instances-"))
    checkpoint = save_checkpoint(build_reference_vit(spec, seed=0), folder / "vit_b.pt")
    image = bench_image(args.size)
    predictor = Predictor(load_sam_with_decoder(checkpoint, device="cpu"), precision="fp32")
    start = time.perf_counter()
    predictor.set_image(image)
    encode_s = time.perf_counter() - start
    embedding = predictor.get_image_embedding()
    decoder = random_decoder(torch.as_tensor(embedding))
    torch.save(decoder.state_dict(), folder / "vit_b_decoder.pt")
    model = load_sam_with_decoder(checkpoint, device="cpu")  # finds vit_b_decoder.pt beside it
    predictor = Predictor(model, precision="fp32")
    predictor.set_image_embedding(embedding, image.shape[:2])
    apg = {"center_distance_threshold": args.apg_center}
    print(f"{'tiny ViT' if args.tiny else 'vit_b'}, {args.size}x{args.size}, encoded in "
          f"{encode_s:.1f} s (not counted); micro-sam running ...", flush=True)  # fmt: skip

    theirs = run_task(
        "instances_bench", {"features": embedding},
        {"checkpoint": str(checkpoint), "spec": asdict(spec),
         "decoder_path": str(folder / "vit_b_decoder.pt"),
         "input_size": list(predictor.input_size), "original_size": list(image.shape[:2]),
         "apg": apg, "repeats": args.repeats},
        timeout=3600,
    )  # fmt: skip

    decoder_s, maps = best_of(args.repeats, lambda: predict_instance_maps(predictor))
    watershed_s, ais = best_of(args.repeats, lambda: watershed_instances(maps))
    auto = Predictor(model, precision="auto")
    auto.set_image_embedding(embedding, image.shape[:2])
    auto_s, auto_maps = best_of(args.repeats, lambda: predict_instance_maps(auto))
    auto_watershed_s, auto_ais = best_of(args.repeats, lambda: watershed_instances(auto_maps))
    apg_s, apg_labels = best_of(
        1, lambda: segment_instances(predictor, mode="apg", maps=maps, **apg)
    )
    amg_s = None
    if not args.no_amg:
        amg_s, _ = best_of(1, lambda: generate_masks(predictor))

    ais_agree, ais_ious = matched_agreement(ais, theirs["ais"])
    apg_agree, _ = matched_agreement(apg_labels, theirs["apg"])
    ours_ais = decoder_s + watershed_s
    theirs_ais = float(theirs["decoder_s"] + theirs["watershed_s"])
    rows = [
        ("AIS decoder", decoder_s, float(theirs["decoder_s"])),
        ("AIS watershed", watershed_s, float(theirs["watershed_s"])),
        ("AIS total (fp32)", ours_ais, theirs_ais),
        (f"AIS total, precision=auto ({auto.precision_name})", auto_s + auto_watershed_s,
         theirs_ais),
        (f"APG ({int(theirs['n_points'])} points, after the decoder)", apg_s,
         float(theirs["apg_s"])),
    ]  # fmt: skip
    print(f"\n{'':44s} {'ours':>8s} {'micro-sam':>10s} {'ratio':>7s}")
    for name, ours_t, theirs_t in rows:
        print(f"{name:44s} {ours_t:7.2f}s {theirs_t:9.2f}s {ours_t / theirs_t:6.2f}x")
    print(f"{'AIS decoder, precision=auto (' + auto.precision_name + ')':44s} {auto_s:7.2f}s")
    auto_agree, auto_ious = matched_agreement(auto_ais, theirs["ais"])
    print(
        f"\nAIS: {len(np.unique(ais)) - 1} objects (micro-sam {len(np.unique(theirs['ais'])) - 1}),"
        f" {ais_agree:.4%} of pixels agree, worst object IoU {min(ais_ious, default=1):.3f}"
    )
    print(
        f"AIS with precision=auto: {len(np.unique(auto_ais)) - 1} objects, {auto_agree:.4%} of "
        f"pixels agree with micro-sam's (fp32), worst object IoU {min(auto_ious, default=1):.3f}"
    )
    print(
        f"APG: {len(np.unique(apg_labels)) - 1} objects "
        f"(micro-sam {len(np.unique(theirs['apg'])) - 1}), {apg_agree:.4%} of pixels agree"
    )
    if amg_s is not None:
        print(f"Our segment-everything (32x32 points, defaults): {amg_s:.1f} s; AIS is "
              f"{amg_s / ours_ais:.1f}x faster (fp32), "
              f"{amg_s / (auto_s + auto_watershed_s):.1f}x with precision=auto")  # fmt: skip


if __name__ == "__main__":
    main()
