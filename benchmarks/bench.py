"""Ours against Meta's reference SAM, side by side, on the same random weights and image.

    python benchmarks/bench.py                      # vit_t and vit_b encoders, one click
    python benchmarks/bench.py --vit-h              # also vit_h (about 75 s per reference encode)
    python benchmarks/bench.py --precision bf16     # our encoder in bf16 (reference stays fp32)
    python benchmarks/bench.py --everything         # also segment everything (minutes on a CPU)
    python benchmarks/bench.py --device cuda --repeat 10 --vit-h --compile   # on a GPU
    python benchmarks/bench.py --interleaved-clicks # also clicks of both sides in one process
    python benchmarks/bench.py --tasks click        # clicks only

Every measurement runs in a fresh process per side, so peak memory is comparable: on the CPU
the max RSS of that process (weights, activations and all), on a GPU the most device memory
torch allocated. Times are the median of ``--repeat`` runs after one warm-up (which, with
``--compile``, pays the compilation); with ``--rounds N`` each side runs in N processes,
alternating with the other side, and its fastest round counts. The table ends with the
encoder's achieved GFLOP/s as a fraction of the matrix-multiply peak measured on this machine,
in our precision, in the same run. This is a script, not a test: machines are shared and
noisy, so read the ratios. ``--interleaved-clicks`` adds a click ratio measured with both sides
in one process, alternating click by click, so that a slow spell of the machine hits both.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


# ---- models with random weights -----------------------------------------------------------


def reference_model(name: str):
    """Meta's (or MobileSAM's) reference model for ``name`` with every tensor random.

    The builders are the test suite's, so benchmarks and oracle tests use the same weights.
    """
    sys.path.insert(0, str(HERE.parent / "tests"))
    from mobile_reference import build_reference_mobile_sam
    from reference_models import VIT_B_SPEC, build_reference_vit

    if name == "vit_t":
        return build_reference_mobile_sam()
    specs = {
        "vit_b": VIT_B_SPEC,
        "vit_l": replace(VIT_B_SPEC, embed_dim=1024, depth=24, num_heads=16,
                         global_attn_indexes=(5, 11, 17, 23)),
        "vit_h": replace(VIT_B_SPEC, embed_dim=1280, depth=32, num_heads=16,
                         global_attn_indexes=(7, 15, 23, 31)),
    }  # fmt: skip
    return build_reference_vit(specs[name])


def test_image(size: int) -> np.ndarray:
    """An offline microscopy image (skimage's immunohistochemistry), resized to size x size."""
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.immunohistochemistry()).resize((size, size)))


# ---- child process: one side, one task ----------------------------------------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load(side: str, name: str, checkpoint: str, args: argparse.Namespace):
    """Three callables: set_image(image), click(row, col) and everything(image)."""
    import torch

    sys.path.insert(0, str(HERE))
    from bench_automatic import ALIVE

    everything_params = dict(ALIVE, points_per_side=32, points_per_batch=64)
    if side == "ours":
        from napari_segany import Predictor, generate_masks, load_model

        predictor = Predictor(
            load_model(checkpoint, device=args.device),
            precision=args.precision,
            compile_encoder=args.compile,
        )

        def click(row: float, col: float):
            return predictor.predict(np.array([[row, col]]), np.array([1]))

        def everything(image):
            return generate_masks(predictor, image, **everything_params)

        return predictor.set_image, click, everything

    if name == "vit_t":
        from mobile_sam import SamPredictor, sam_model_registry
    else:
        from segment_anything import SamPredictor, sam_model_registry
    from segment_anything import SamAutomaticMaskGenerator

    model = sam_model_registry[name]()
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    reference = SamPredictor(model.eval().to(args.device))

    def set_image(image):
        with torch.no_grad():
            reference.set_image(image)

    def click(row: float, col: float):
        with torch.no_grad():
            return reference.predict(np.array([[col, row]]), np.array([1]))

    def everything(image):
        with torch.no_grad():
            return SamAutomaticMaskGenerator(reference.model, **everything_params).generate(image)

    return set_image, click, everything


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    set_image, click, everything = _load(args.side, args.model, args.checkpoint, args)
    on_gpu = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if on_gpu else lambda: None
    image = test_image(args.image_size)
    result: dict[str, float] = {}
    if args.task == "encode":
        set_image(image)  # warm-up
        times = []
        for _ in range(args.repeat):
            sync()
            start = time.perf_counter()
            set_image(image)
            sync()  # the embedding exists once the device is done
            times.append(time.perf_counter() - start)
        result["seconds"] = statistics.median(times)
    elif args.task == "everything":
        start = time.perf_counter()
        result["masks"] = len(everything(test_image(512)))  # encoding included
        result["seconds"] = time.perf_counter() - start
    elif args.task == "click":
        set_image(image)
        rng = np.random.default_rng(0)
        click(args.image_size / 2, args.image_size / 2)  # warm-up
        times = []
        for _ in range(max(30, args.repeat)):  # a click is short: many, for a stable median
            row, col = rng.uniform(0, args.image_size - 1, 2)
            start = time.perf_counter()
            click(row, col)
            times.append(time.perf_counter() - start)
        result["seconds"] = statistics.median(times)
    elif args.task == "click-pair":
        result.update(_interleaved_clicks(args, image))
        print(json.dumps(result))
        return
    result["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20 if on_gpu else _peak_rss_mb()
    print(json.dumps(result))


def _interleaved_clicks(args: argparse.Namespace, image: np.ndarray) -> dict[str, float]:
    """Median click seconds of both sides in this process, alternating which goes first."""
    sides = {side: _load(side, args.model, args.checkpoint, args) for side in ("ours", "reference")}
    for set_image, click, _ in sides.values():
        set_image(image)
        click(args.image_size / 2, args.image_size / 2)  # warm-up
    times: dict[str, list[float]] = {side: [] for side in sides}
    rng = np.random.default_rng(0)
    for i in range(max(30, args.repeat)):
        row, col = rng.uniform(0, args.image_size - 1, 2)
        for side in sorted(sides, reverse=bool(i % 2)):
            start = time.perf_counter()
            sides[side][1](row, col)
            times[side].append(time.perf_counter() - start)
    return {side: statistics.median(t) for side, t in times.items()}


def run_child(task: str, side: str, name: str, checkpoint: Path, args) -> dict[str, float]:
    cmd = [
        sys.executable, __file__, "--child", task, "--side", side, "--model", name,
        "--checkpoint", str(checkpoint), "--image-size", str(args.image_size),
        "--repeat", str(args.repeat), "--threads", str(args.threads),
        "--precision", args.precision if side == "ours" else "fp32", "--device", args.device,
    ] + (["--compile"] if args.compile and side == "ours" else [])  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{side} {task} {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- machine figures ----------------------------------------------------------------------


def matmul_gflops(dtype_name: str = "fp32", device: str = "cpu", repeat: int = 5) -> float:
    """Achieved GFLOP/s of a square matrix multiply: the practical peak of this machine."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name]
    on_gpu = device.startswith("cuda")
    n = 8192 if on_gpu else 2048
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    sync = torch.cuda.synchronize if on_gpu else lambda: None
    a @ b
    best = float("inf")
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def encoder_gflop(name: str) -> float:
    """FLOPs of one encoder forward at 1024 x 1024, counted by torch on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from napari_segany.modeling import VIT_B, VIT_H, VIT_L, VIT_T, build_sam

    config = {"vit_t": VIT_T, "vit_b": VIT_B, "vit_l": VIT_L, "vit_h": VIT_H}[name]
    with torch.device("meta"):
        model = build_sam(config)
        x = torch.empty(1, 3, 1024, 1024)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.image_encoder(x)
    return counter.get_total_flops() / 1e9


# ---- parent --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vit-h", action="store_true", help="also benchmark vit_h (slow)")
    parser.add_argument("--models", default="vit_t,vit_b")
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per process")
    parser.add_argument("--rounds", type=int, default=1, help="processes per side, alternating")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--precision", default="fp32", help="our encoder's precision")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N, for both sides")
    parser.add_argument("--compile", action="store_true", help="torch.compile our encoder")
    parser.add_argument("--everything", action="store_true", help="also segment everything")
    parser.add_argument(
        "--tasks", default="encode,click", help="which of encode,click to run (default both)"
    )
    parser.add_argument(
        "--interleaved-clicks", action="store_true", help="also clicks of both sides in one process"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.task = args.child
        child(args)
        return

    import torch

    torch.set_num_threads(args.threads)
    names = [m for m in args.models.split(",") if m] + (["vit_h"] if args.vit_h else [])
    folder = Path(tempfile.mkdtemp(prefix="segany-bench-"))
    on_gpu = args.device.startswith("cuda")
    if on_gpu:
        machine = torch.cuda.get_device_name(args.device)
    else:
        machine = f"{platform.processor() or platform.machine()}, {args.threads} threads"
    from napari_segany.precision import precision_name, resolve_precision

    peak_dtype = precision_name(resolve_precision(args.precision, torch.device(args.device)))
    peak = matmul_gflops(peak_dtype, args.device)
    print(
        f"# {machine}, torch {torch.__version__}; {peak_dtype} matmul: {peak:.0f} GFLOP/s; "
        f"image {args.image_size}x{args.image_size}; our precision {args.precision}"
        f"{', compiled encoder' if args.compile else ''}"
    )
    rows, pairs = [], {}
    for name in names:
        checkpoint = folder / f"{name}.pth"
        torch.save(reference_model(name).state_dict(), checkpoint)
        # A click costs the same whatever the encoder, so vit_h only times its encoder.
        tasks = [t for t in args.tasks.split(",") if t == "encode" or name != "vit_h"]
        if args.everything and name == "vit_b":
            tasks.append("everything")
        for task in tasks:
            # Alternate the sides and keep each side's fastest round: on a shared machine a
            # slow spell then hits both sides, not just the one that ran during it.
            ref, ours = {}, {}
            for _ in range(args.rounds):
                ref = _faster(ref, run_child(task, "reference", name, checkpoint, args))
                ours = _faster(ours, run_child(task, "ours", name, checkpoint, args))
            rows.append((name, task, ref, ours))
            _print_row(name, task, ref, ours, peak)
        if args.interleaved_clicks and name != "vit_h":
            pairs[name] = run_child("click-pair", "ours", name, checkpoint, args)
        checkpoint.unlink()
    for name, pair in pairs.items():
        print(
            f"{name} click, both sides in one process, interleaved: ours "
            f"{pair['ours'] * 1e3:.1f} ms, reference {pair['reference'] * 1e3:.1f} ms, "
            f"ratio {pair['ours'] / pair['reference']:.2f}"
        )
    print()
    for name, task, ref, ours in rows:
        if task == "encode":
            gflop = encoder_gflop(name)
            achieved = gflop / ours["seconds"]
            print(
                f"{name} encoder: {gflop:.0f} GFLOP per image, ours {achieved:.0f} GFLOP/s "
                f"= {achieved / peak:.0%} of the measured {peak_dtype} matmul peak; "
                f"images/s: ours {1 / ours['seconds']:.2f}, reference {1 / ref['seconds']:.2f}"
            )


def _faster(best: dict[str, float], new: dict[str, float]) -> dict[str, float]:
    """The round with the shorter time; peak memory is the largest seen in any round."""
    if not best:
        return new
    kept = dict(best if best["seconds"] <= new["seconds"] else new)
    kept["peak_mb"] = max(best["peak_mb"], new["peak_mb"])
    return kept


def _print_row(name: str, task: str, ref: dict, ours: dict, peak: float) -> None:
    if not hasattr(_print_row, "header"):
        print(
            f"{'model':6} {'task':10} {'reference s':>12} {'ours s':>9} {'ratio':>6} "
            f"{'ref peak MB':>12} {'ours peak MB':>13} {'ratio':>6}"
        )
        _print_row.header = True
    t_ratio = ours["seconds"] / ref["seconds"]
    m_ratio = ours["peak_mb"] / ref["peak_mb"]
    print(
        f"{name:6} {task:10} {ref['seconds']:12.3f} {ours['seconds']:9.3f} {t_ratio:6.2f} "
        f"{ref['peak_mb']:12.0f} {ours['peak_mb']:13.0f} {m_ratio:6.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
