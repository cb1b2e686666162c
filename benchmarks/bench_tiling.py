"""Tiled large images, ours against micro-sam 1.8.14, on the same random weights and image.

    python benchmarks/bench_tiling.py --check                  # tiny model, small images: it runs
    python benchmarks/bench_tiling.py                          # vit_b, every task (about an hour)
    python benchmarks/bench_tiling.py --tasks encode --sizes 2048
    python benchmarks/bench_tiling.py --tasks encode --sizes 8192 --tiles 4   # 4 of its 64 tiles
    python benchmarks/bench_tiling.py --tasks click,memory
    python benchmarks/bench_tiling.py --tasks everything --points-per-side 8

Tasks, each side in a fresh process (ours in this environment, micro-sam in its own,
``.venv-microsam`` or ``$NAPARI_SEGANY_MICROSAM_PYTHON``), both with ``--tile-shape``/``--halo``
(default micro-sam's (1024, 1024)/(256, 256)) and fp32 encoders:

* ``encode``: encode the tiles of a ``--sizes`` image (all, or the first ``--tiles``; micro-sam
  is given a mask that selects the same tiles). Target: ours <= 0.6x micro-sam.
* ``click``: a click on an unencoded tile (encoding it, then decoding; micro-sam has no
  on-demand path, so its figure is encoding that one tile plus the click), and clicks on an
  encoded tile, timed interleaved with untiled clicks on the same pixels (the tile's outer
  block) in the same process (target: the same within 10%), beside micro-sam's clicks on its
  tiled embeddings.
* ``everything``: segment everything on a 2048 x 2048 image, encoding included (ours
  ``generate_tiled_masks``, micro-sam ``TiledAutomaticMaskGenerator``), with
  ``--points-per-side`` points a side per tile. Target: ours <= 0.25x micro-sam.
* ``memory``: on a 20000 x 20000 uint8 image, peak memory above the process's baseline (model
  and image loaded) of a click and of encoding one tile, beside micro-sam's tiled embedding of
  one tile of the same image.

Machines are shared and noisy: read the ratios. This is a script, never a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
MiB = 2**20


# ---- shared by both sides -----------------------------------------------------------------


def test_image(size: int) -> np.ndarray:
    """An offline microscopy image (skimage's immunohistochemistry), tiled up to size x size
    (tiled, not resized, so cells stay cell-sized)."""
    from skimage import data

    base = data.immunohistochemistry()
    reps = -(-size // base.shape[0]), -(-size // base.shape[1])
    return np.ascontiguousarray(np.tile(base, (*reps, 1))[:size, :size])


def huge_image(size: int) -> np.ndarray:
    """A uint8 grayscale image of size x size with some structure, cheap to make."""
    image = np.full((size, size), 90, np.uint8)
    image[::7] = 160
    image[:, ::11] = 40
    return image


def tile_centres(shape: tuple[int, int], tile: tuple[int, int], indices: list[int]) -> np.ndarray:
    """(N, 2) (row, col) centres of the inner blocks of the given tiles (row-major numbering)."""
    cols = -(-shape[1] // tile[1])
    out = []
    for i in indices:
        r, c = divmod(i, cols)
        r0, c0 = r * tile[0], c * tile[1]
        r1, c1 = min(r0 + tile[0], shape[0]), min(c0 + tile[1], shape[1])
        out.append(((r0 + r1) // 2, (c0 + c1) // 2))
    return np.array(out, dtype=np.float64)


def n_tiles(shape: tuple[int, int], tile: tuple[int, int]) -> int:
    return -(-shape[0] // tile[0]) * -(-shape[1] // tile[1])


class Memory:
    """Peak resident memory of a step above what the process held before it (Linux)."""

    def __enter__(self) -> Memory:
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM)
        self.before = _status("VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = _status("VmHWM")
        self.grown = self.peak - self.before


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


# ---- our side -------------------------------------------------------------------------------


class Ours:
    def __init__(self, args: argparse.Namespace) -> None:
        from napari_segany import Predictor, load_model

        self.model = load_model(args.checkpoint, device="cpu")
        self.args = args
        self.predictor = Predictor(self.model, precision="fp32")
        self.predictor.set_image(test_image(1024))  # warm-up: first-run costs are not tiling's

    def tiled(self, image: np.ndarray, follow: bool = False):
        from napari_segany import Predictor
        from napari_segany.tiling import TiledPredictor

        tp = TiledPredictor(Predictor(self.model, precision="fp32"), follow_cut_objects=follow)
        tp.set_image(image, tile_shape=self.args.tile_shape, halo=self.args.halo)
        return tp

    def encode(self, image: np.ndarray, indices: list[int]) -> dict:
        tp = self.tiled(image)
        seconds, _ = _timed(tp.encode_tiles, indices)
        return {"seconds": seconds}

    def click(self, image: np.ndarray, index: int) -> dict:
        centre = tile_centres(image.shape[:2], self.args.tile_shape, [index])
        labels = np.array([1])
        tp = self.tiled(image)
        unencoded, _ = _timed(tp.predict, centre, labels)
        # Encoded tile vs the same pixels untiled, alternating, so a slow spell hits both:
        # what tiling adds to a click (routing, the warm decoder, the result's form).
        from napari_segany import Predictor

        box = tp.grid.tile(index).outer
        untiled = Predictor(self.model, precision="fp32")
        untiled.set_image(tp.tile_rgb(index))
        offset = np.array([box[0], box[1]], dtype=np.float64)
        untiled.predict(centre - offset, labels)
        rng = np.random.default_rng(0)
        times: dict[str, list[float]] = {"tiled": [], "untiled": []}
        for i in range(self.args.clicks):
            point = centre + rng.uniform(-200, 200, (1, 2))
            pair = [("tiled", tp.predict, point), ("untiled", untiled.predict, point - offset)]
            for name, fn, where in pair[:: 1 if i % 2 else -1]:
                times[name].append(_timed(fn, where, labels)[0])
        return {
            "unencoded": unencoded,
            "encoded": statistics.median(times["tiled"]),
            "untiled": statistics.median(times["untiled"]),
        }

    def everything(self, image: np.ndarray) -> dict:
        from napari_segany.tiling.everything import generate_tiled_masks

        tp = self.tiled(image)
        seconds, records = _timed(generate_tiled_masks, tp, **self.args.everything_params)
        return {"seconds": seconds, "masks": len(records)}

    def memory(self, image: np.ndarray) -> dict:
        centre = tile_centres(image.shape[:2], self.args.tile_shape, [self._middle(image)])
        tp = self.tiled(image)
        with Memory() as click:
            tp.predict(centre, np.array([1]))
        other = self._middle(image) + 1
        with Memory() as encode:
            tp.encode_tile(other)
        return {"click_mb": click.grown / MiB, "encode_mb": encode.grown / MiB,
                "peak_mb": max(click.peak, encode.peak) / MiB}  # fmt: skip

    def _middle(self, image: np.ndarray) -> int:
        rows, cols = (-(-s // t) for s, t in zip(image.shape[:2], self.args.tile_shape))
        return (rows // 2) * cols + cols // 2


# ---- micro-sam's side (runs in its own environment) -----------------------------------------


class MicroSam:
    def __init__(self, args: argparse.Namespace) -> None:
        sys.path[:0] = [str(TESTS / "microsam_tasks"), str(TESTS)]
        from _common import sam_from_checkpoint
        from segment_anything import SamPredictor

        self.args = args
        self.predictor = SamPredictor(sam_from_checkpoint(args.checkpoint, json.loads(args.spec)))
        # What micro-sam's get_sam_model attaches; its embedding signature reads them.
        self.predictor.model_type = self.predictor.model_name = "vit_b"
        import torch

        with torch.no_grad():
            self.predictor.set_image(test_image(1024))  # the same warm-up as ours

    def embed(self, image: np.ndarray, indices: list[int] | None):
        """micro-sam's tiled embeddings of all tiles, or of the given ones (one call per tile,
        each with a mask on the tile's centre, which lies in that tile's outer block only;
        batch_size covers every tile, as its mask path splits them into that many batches)."""
        from micro_sam.util import precompute_image_embeddings

        shape = image.shape[:2]
        kwargs = dict(tile_shape=tuple(self.args.tile_shape), halo=tuple(self.args.halo),
                      verbose=False, ndim=2)  # fmt: skip
        if indices is None:
            return precompute_image_embeddings(self.predictor, image, **kwargs)
        for r, c in tile_centres(shape, self.args.tile_shape, indices).astype(int):
            mask = np.zeros(shape, dtype=bool)
            mask[r, c] = True
            embeddings = precompute_image_embeddings(
                self.predictor, image, mask=mask, batch_size=n_tiles(shape, self.args.tile_shape),
                **kwargs,
            )  # fmt: skip
        return embeddings

    def encode(self, image: np.ndarray, indices: list[int]) -> dict:
        everything = len(indices) == n_tiles(image.shape[:2], self.args.tile_shape)
        seconds, _ = _timed(self.embed, image, None if everything else indices)
        return {"seconds": seconds}

    def click(self, image: np.ndarray, index: int) -> dict:
        from micro_sam.prompt_based_segmentation import segment_from_points

        centre = tile_centres(image.shape[:2], self.args.tile_shape, [index])
        labels = np.array([1])

        def click(embeddings, point):
            return segment_from_points(
                self.predictor, point, labels, image_embeddings=embeddings,
                multimask_output=True, use_best_multimask=False,
            )  # fmt: skip

        start = time.perf_counter()
        embeddings = self.embed(image, [index])
        click(embeddings, centre)
        unencoded = time.perf_counter() - start
        rng = np.random.default_rng(0)
        times = [
            _timed(click, embeddings, centre + rng.uniform(-200, 200, (1, 2)))[0]
            for _ in range(self.args.clicks)
        ]
        return {"unencoded": unencoded, "encoded": statistics.median(times)}

    def everything(self, image: np.ndarray) -> dict:
        from micro_sam.instance_segmentation import TiledAutomaticMaskGenerator

        params = dict(self.args.everything_params)
        points = params.pop("points_per_side")
        offset = params.pop("stability_score_offset", 1.0)
        params.pop("points_per_batch", None)

        def run():
            amg = TiledAutomaticMaskGenerator(
                self.predictor, points_per_side=points, stability_score_offset=offset
            )
            amg.initialize(
                image, tile_shape=tuple(self.args.tile_shape), halo=tuple(self.args.halo)
            )
            return amg.generate(output_mode="binary_mask", **params)

        seconds, masks = _timed(run)
        return {"seconds": seconds, "masks": len(masks)}

    def memory(self, image: np.ndarray) -> dict:
        rows, cols = (-(-s // t) for s, t in zip(image.shape[:2], self.args.tile_shape))
        with Memory() as encode:
            self.embed(image, [(rows // 2) * cols + cols // 2])
        return {"encode_mb": encode.grown / MiB, "peak_mb": encode.peak / MiB}


# ---- child process --------------------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    side = (Ours if args.side == "ours" else MicroSam)(args)
    with torch.inference_mode():
        if args.child == "memory":
            result = side.memory(huge_image(args.size))
        else:
            image = test_image(args.size)
            if args.child == "encode":
                total = n_tiles(image.shape[:2], args.tile_shape)
                result = side.encode(image, list(range(min(args.tiles or total, total))))
            elif args.child == "click":
                result = side.click(image, 0)
            else:
                result = side.everything(image)
    print(json.dumps(result))


def run_child(task: str, side: str, size: int, checkpoint: Path, spec: dict, args) -> dict:
    python = sys.executable if side == "ours" else str(microsam_python())
    cmd = [
        python, __file__, "--child", task, "--side", side, "--size", str(size),
        "--checkpoint", str(checkpoint), "--spec", json.dumps(spec),
        "--tile-shape", ",".join(map(str, args.tile_shape)),
        "--halo", ",".join(map(str, args.halo)), "--tiles", str(args.tiles or 0),
        "--clicks", str(args.clicks), "--threads", str(args.threads),
        "--everything-params", json.dumps(args.everything_params),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{side} {task} {size} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def microsam_python() -> Path:
    override = os.environ.get(MICROSAM_PYTHON, "").strip()
    path = Path(override) if override else HERE.parent / ".venv-microsam" / "bin" / "python"
    if not path.is_file():
        raise SystemExit(f"micro-sam's environment is missing ({path}); set ${MICROSAM_PYTHON}.")
    return path


# ---- the parent: checkpoints, runs, the table --------------------------------------------


def write_checkpoint(name: str, folder: Path) -> tuple[Path, dict]:
    """Random weights for ``name`` (``vit_b`` or ``tiny``), written as official checkpoints are."""
    sys.path.insert(0, str(TESTS))
    from reference_models import VIT_B_SPEC, TinySpec, build_reference_vit, save_checkpoint

    spec = VIT_B_SPEC if name == "vit_b" else TinySpec()
    path = save_checkpoint(build_reference_vit(spec, seed=0), folder / f"sam_{name}.pth")
    return path, asdict(spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="encode,click,everything,memory")
    parser.add_argument("--sizes", default="2048,8192", help="image sides for encode")
    parser.add_argument("--tiles", type=int, default=0, help="encode only this many tiles")
    parser.add_argument("--tile-shape", default="1024,1024")
    parser.add_argument("--halo", default="256,256")
    parser.add_argument("--model", default="vit_b", help="vit_b, or tiny (a quick check)")
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--points-per-side", type=int, default=32, help="per tile, everything")
    parser.add_argument("--everything-size", type=int, default=2048)
    parser.add_argument("--memory-size", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--check", action="store_true", help="tiny model, small images")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--everything-params", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.tile_shape = tuple(int(v) for v in str(args.tile_shape).split(","))
    args.halo = tuple(int(v) for v in str(args.halo).split(","))
    if args.child:
        args.everything_params = json.loads(args.everything_params)
        child(args)
        return
    if args.check:  # every task, in a few minutes
        args.model, args.sizes, args.tiles, args.clicks = "tiny", "1024", 2, 5
        args.tile_shape, args.halo = (512, 512), (128, 128)
        args.points_per_side, args.everything_size, args.memory_size = 2, 1024, 4000
    # No filters, as bench_automatic.py measures: every candidate mask is measured and kept.
    args.everything_params = dict(
        points_per_side=args.points_per_side, pred_iou_thresh=0.0, stability_score_thresh=0.5,
        stability_score_offset=0.01, box_nms_thresh=1.0,
    )  # fmt: skip
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    with tempfile.TemporaryDirectory(prefix="bench-tiling-") as tmp:
        checkpoint, spec = write_checkpoint(args.model, Path(tmp))
        print(f"{args.model}, fp32, tiles {args.tile_shape} halo {args.halo}, "
              f"{args.threads} threads\n")  # fmt: skip
        print(f"{'task':44s} {'ours':>10s} {'micro-sam':>10s} {'ratio':>7s}  target", flush=True)
        for task in tasks:
            first = [int(args.sizes.split(",")[0])]
            sizes = {
                "encode": [int(s) for s in args.sizes.split(",")],
                "click": first,
                "everything": [args.everything_size],
                "memory": [args.memory_size],
            }[task]
            for size in sizes:
                ours = run_child(task, "ours", size, checkpoint, spec, args)
                theirs = run_child(task, "microsam", size, checkpoint, spec, args)
                report(task, size, ours, theirs, args)


def report(task: str, size: int, ours: dict, theirs: dict, args) -> None:
    def row(name: str, a: float, b: float | None, unit: str, target: str = "") -> None:
        ratio = f"{a / b:7.2f}" if b else "       "
        theirs_text = f"{b:9.2f}{unit}" if b is not None else " " * 10
        print(f"{name:44s} {a:9.2f}{unit} {theirs_text} {ratio}  {target}")

    if task == "encode":
        tiles = args.tiles or n_tiles((size, size), args.tile_shape)
        row(f"encode {tiles} tiles of {size}^2", ours["seconds"], theirs["seconds"], "s", "<= 0.6")
    elif task == "click":
        row(f"click on an unencoded tile of {size}^2", ours["unencoded"], theirs["unencoded"], "s")
        row("click on an encoded tile", ours["encoded"] * 1e3, theirs["encoded"] * 1e3, "ms")
        row("  vs untiled click on the tile's pixels (ours)", ours["encoded"] * 1e3,
            ours["untiled"] * 1e3, "ms", "<= 1.1")  # fmt: skip
    elif task == "everything":
        label = f"everything {size}^2, {args.points_per_side}^2 pts/tile"
        row(label, ours["seconds"], theirs["seconds"], "s", "<= 0.25")
        print(f"{'  masks':44s} {ours['masks']:10d} {theirs['masks']:10d}")
    elif task == "memory":
        row(f"peak memory, click at {size}^2", ours["click_mb"], None, "M")
        row(
            f"peak memory, encode one tile at {size}^2", ours["encode_mb"], theirs["encode_mb"], "M"
        )
        row("  whole process peak", ours["peak_mb"], theirs["peak_mb"], "M")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
