"""Objects through a volume, ours against micro-sam 1.8.14, on the same random weights and stack.

    python benchmarks/bench_volumes.py --check     # tiny model, 8 planes: it runs (a minute)
    python benchmarks/bench_volumes.py             # vit_b, 32 x 512 x 512 (about half an hour)
    python benchmarks/bench_volumes.py --tasks one,ten --planes 12 --threads 1 --repeat 3

Tasks, each side in a fresh process (ours in this environment, micro-sam in its own,
``.venv-microsam`` or ``$NAPARI_SEGANY_MICROSAM_PYTHON``):

* ``one``: one object seeded on the middle plane, carried through the whole stack from
  precomputed embeddings (ours, fp32, handed to both sides), ``single_point`` projection, IoU
  stop off so both sides segment every plane. Per plane: target ours <= 0.35x micro-sam.
* ``ten``: ten objects seeded on the middle plane; ours carries them together, micro-sam one
  after the other (it propagates one object at a time). Target: ours <= 3x our ``one``.
* ``e2e``: ``one`` with the encoding included: ours encodes the planes as it reaches them, in
  fp32 and in ``auto`` precision (bf16 where the CPU runs it fast); micro-sam precomputes the
  stack's embeddings (fp32), then propagates.

Random weights give masks of pixel noise, the same for both sides; the figures are the cost of
the algorithm, not of a realistic object. Each side first carries the objects through three
planes, not timed, so that the first calls of every kernel (allocations, oneDNN's set-up of
each matrix shape) are not counted against the 12 or 32 planes that are.

Machines are shared and noisy: read the ratios, and on a machine whose cores are busy with
other work use ``--threads 1``: torch threads that wait for a busy core turn every operation
into a wait for the scheduler, and such runs measure the machine's load, not the code.
``--repeat`` keeps each side's fastest of several runs; ``--workdir`` keeps the checkpoint and
the stack's embeddings for the next invocation. This is a script, never a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
MICROSAM_PYTHON = "NAPARI_SEGANY_MICROSAM_PYTHON"


# ---- shared by both sides -----------------------------------------------------------------


def test_stack(n_planes: int, side: int) -> np.ndarray:
    """(Z, side, side) uint8: a window sliding across skimage's cell image, a plane a step, so
    the content changes smoothly through the stack as a specimen's does."""
    from skimage import data, transform

    cell = data.cell()
    scale = max(1.0, (side + 2 * n_planes) / min(cell.shape))
    if scale > 1:
        cell = (transform.rescale(cell, scale, preserve_range=True)).astype(np.uint8)
    return np.stack([cell[2 * z : 2 * z + side, z : z + side] for z in range(n_planes)])


def seed_discs(n_objects: int, side: int) -> np.ndarray:
    """(n, side, side) bool: discs of radius side/16 spread over the plane."""
    rows, cols = np.mgrid[0:side, 0:side]
    grid = int(np.ceil(np.sqrt(n_objects)))
    discs = []
    for k in range(n_objects):
        r, c = divmod(k, grid)
        centre = ((r + 0.5) * side / grid, (c + 0.5) * side / grid)
        discs.append((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < (side / 16) ** 2)
    return np.stack(discs)


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


# ---- our side -----------------------------------------------------------------------------


def ours(args: argparse.Namespace) -> dict:
    from napari_segany import Predictor, load_model
    from napari_segany.volumes import segment_volume

    model = load_model(args.checkpoint, device="cpu")
    stack = test_stack(args.planes, args.side)
    middle = args.planes // 2
    precision = "fp32" if args.child != "e2e-auto" else "auto"
    predictor = Predictor(model, precision=precision)
    if args.child == "embed":
        features = []
        for z in range(args.planes):
            predictor.set_image(stack[z])
            features.append(predictor.get_image_embedding())
        # Under another name until complete: a kept workdir never holds half a file.
        partial = Path(args.features).with_suffix(".partial.npy")
        np.save(partial, np.stack(features))
        os.replace(partial, args.features)
        return {}
    discs = seed_discs(10 if args.child == "ten" else 1, args.side)
    seeds = {k + 1: {middle: disc} for k, disc in enumerate(discs)}
    embeddings = None if args.child.startswith("e2e") else np.load(args.features)
    options = dict(projection=args.projection, iou_threshold=0.0, embeddings=embeddings)
    if embeddings is not None:  # first calls of each kernel, not counted (as micro-sam's)
        warm = {k: {1: seeds[k][middle]} for k in seeds}
        segment_volume(predictor, stack[:3], warm, **{**options, "embeddings": embeddings[:3]})
    seconds, (labels, _) = _timed(segment_volume, predictor, stack, seeds, **options)
    np.save(args.result, labels == 1)
    return {"seconds": seconds, "precision": predictor.precision_name}


# ---- micro-sam's side ---------------------------------------------------------------------


def micro_sam(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(TESTS / "microsam_tasks"))
    sys.path.insert(0, str(TESTS))
    from _common import sam_from_checkpoint
    from micro_sam.multi_dimensional_segmentation import segment_mask_in_volume
    from micro_sam.util import precompute_image_embeddings
    from segment_anything import SamPredictor

    predictor = SamPredictor(sam_from_checkpoint(args.checkpoint, json.loads(args.spec)))
    predictor.model_type = predictor.model_name = "vit_b"  # what its embedding code reads
    stack = test_stack(args.planes, args.side)
    middle = args.planes // 2
    input_size = _input_size(args.side, predictor.model.image_encoder.img_size)
    if not args.child.startswith("e2e"):  # first calls of each kernel, not counted (as ours)
        features = np.load(args.features)
        warm = np.zeros((3, args.side, args.side), np.uint32)
        warm[1] = seed_discs(1, args.side)[0]
        segment_mask_in_volume(
            warm, predictor, {"features": features[:3], "input_size": input_size,
            "original_size": (args.side, args.side)}, np.array([1]), False, False,
            iou_threshold=0.0, projection=args.projection,
        )  # fmt: skip
    start = time.perf_counter()
    if args.child.startswith("e2e"):
        embeddings = precompute_image_embeddings(predictor, stack, ndim=3, verbose=False)
    else:
        embeddings = {
            "features": features, "input_size": input_size,
            "original_size": (args.side, args.side),
        }  # fmt: skip
    first = None
    for disc in seed_discs(10 if args.child == "ten" else 1, args.side):
        segmentation = np.zeros(stack.shape, np.uint32)
        segmentation[middle] = disc
        segmentation, _ = segment_mask_in_volume(
            segmentation, predictor, embeddings, np.array([middle]), False, False,
            iou_threshold=0.0, projection=args.projection,
        )  # fmt: skip
        first = segmentation == 1 if first is None else first
    seconds = time.perf_counter() - start
    np.save(args.result, first)
    return {"seconds": seconds, "precision": "fp32"}


def _input_size(side: int, long_side: int) -> tuple[int, int]:
    scale = long_side / side
    return int(side * scale + 0.5), int(side * scale + 0.5)


# ---- the parent: checkpoint, runs, the table ----------------------------------------------


def run_child(task: str, side: str, args: argparse.Namespace, folder: Path) -> dict:
    """The task on one side, ``args.repeat`` times in fresh processes: the fastest run."""
    runs = [_run_child_once(task, side, args, folder) for _ in range(max(1, args.repeat))]
    return min(runs, key=lambda out: out.get("seconds", 0.0))


def _run_child_once(task: str, side: str, args: argparse.Namespace, folder: Path) -> dict:
    python = sys.executable if side == "ours" else str(microsam_python())
    result = folder / f"{task}-{side}.npy"
    cmd = [
        python, __file__, "--child", task, "--side", side, "--planes", str(args.planes),
        "--side-px", str(args.side), "--checkpoint", str(args.checkpoint),
        "--spec", json.dumps(args.spec_dict), "--features", str(folder / "features.npy"),
        "--result", str(result), "--projection", args.projection,
        "--threads", str(args.threads),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{side} {task} failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if result.exists():
        out["mask"] = np.load(result)
    return out


def microsam_python() -> Path:
    override = os.environ.get(MICROSAM_PYTHON, "").strip()
    path = Path(override) if override else HERE.parent / ".venv-microsam" / "bin" / "python"
    if not path.is_file():
        raise SystemExit(f"micro-sam's environment is missing ({path}); set ${MICROSAM_PYTHON}.")
    return path


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    args.side = args.side_px
    side = ours if args.side_name == "ours" else micro_sam
    with torch.inference_mode():
        print(json.dumps(side(args)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="one,ten,e2e")
    parser.add_argument("--planes", type=int, default=32)
    parser.add_argument("--side-px", type=int, default=512, help="planes are side x side")
    parser.add_argument("--model", default="vit_b", help="vit_b, or tiny (a quick check)")
    parser.add_argument("--projection", default="single_point")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--check", action="store_true", help="tiny model, 8 planes of 256^2")
    parser.add_argument("--repeat", type=int, default=1, help="runs per side; the fastest counts")
    parser.add_argument("--workdir", help="keep the checkpoint and embeddings here, for reuse")
    for hidden in ("--child", "--side", "--checkpoint", "--spec", "--features", "--result"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.side_name = args.side
        child(args)
        return
    if args.check:
        args.model, args.planes, args.side_px = "tiny", 8, 256
    args.side = args.side_px
    sys.path.insert(0, str(TESTS))
    from reference_models import VIT_B_SPEC, TinySpec, build_reference_vit, save_checkpoint

    spec = VIT_B_SPEC if args.model == "vit_b" else TinySpec()
    args.spec_dict = asdict(spec)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    with tempfile.TemporaryDirectory(prefix="bench-volumes-") as tmp:
        folder = Path(tmp)
        if args.workdir:  # named by what the files depend on, so that a mismatch is remade
            folder = Path(args.workdir) / f"{args.model}-{args.planes}x{args.side}"
            folder.mkdir(parents=True, exist_ok=True)
        args.checkpoint = folder / "sam.pth"
        if not args.checkpoint.exists():
            save_checkpoint(build_reference_vit(spec, seed=0), args.checkpoint)
        print(f"{args.model}, {args.planes} x {args.side} x {args.side}, projection "
              f"{args.projection}, {args.threads} threads, fastest of {args.repeat}\n")  # fmt: skip
        if {"one", "ten"} & set(tasks) and not (folder / "features.npy").exists():
            seconds, _ = _timed(_run_child_once, "embed", "ours", args, folder)
            print(f"(embeddings of {args.planes} planes made once, fp32: {seconds:.0f} s)\n")
        print(f"{'task':46s} {'ours':>10s} {'micro-sam':>10s} {'ratio':>7s}  target", flush=True)
        planes = args.planes - 1  # segmented: all but the seed plane
        one = None
        for task in tasks:
            if task == "e2e":
                theirs = run_child("e2e", "microsam", args, folder)
                for precision_task in ("e2e", "e2e-auto"):
                    mine = run_child(precision_task, "ours", args, folder)
                    label = f"with encoding, ours {mine['precision']}"
                    row(label, mine["seconds"], theirs["seconds"], "s")
                continue
            mine = run_child(task, "ours", args, folder)
            theirs = run_child(task, "microsam", args, folder)
            if task == "one":
                one = mine["seconds"]
                row("one object, per plane", 1e3 * one / planes, 1e3 * theirs["seconds"] / planes,
                    "ms", "<= 0.35")  # fmt: skip
                agree = float((mine["mask"] == theirs["mask"]).mean())
                print(f"{'  voxels that agree with micro-sam':46s} {agree:10.6f}")
            else:
                row("ten objects, whole stack", mine["seconds"], theirs["seconds"], "s")
                if one:
                    print(f"{'  ten / one, ours':46s} {mine['seconds'] / one:10.2f}"
                          f"{'':18s}<= 3")  # fmt: skip


def row(name: str, a: float, b: float, unit: str, target: str = "") -> None:
    print(f"{name:46s} {a:9.2f}{unit} {b:9.2f}{unit} {a / b:7.2f}  {target}", flush=True)


if __name__ == "__main__":
    main()
