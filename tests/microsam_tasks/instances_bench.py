"""micro-sam's AIS and APG timed on a given embedding (for ``benchmarks/bench_instances.py``).

IN.npz: ``features`` (1, 256, 64, 64) float32, our embedding of the benchmark image.
PARAMS.json: ``checkpoint``, ``spec`` (see ``_common.sam_from_checkpoint``), ``decoder_path``
(a full-width decoder file, loaded by micro-sam's ``get_decoder``), ``input_size``,
``original_size``, ``apg`` (keyword arguments of ``AutomaticPromptGenerator.generate``),
``repeats``.
OUT.npz: ``decoder_s``, ``watershed_s``, ``apg_s`` (the best of ``repeats`` runs each; APG's
time excludes the decoder, which it shares with AIS), ``ais`` and ``apg`` labels, ``n_points``.
"""

from __future__ import annotations

import os

# bioimage-cpp's portable smoothing: see instances_oracle.
os.environ["BIOIMAGE_CPP_FILTERS_FORCE_SCALAR"] = "1"

import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import read_inputs, sam_from_checkpoint, write_outputs  # noqa: E402
from micro_sam.instance_segmentation import (  # noqa: E402
    AutomaticPromptGenerator,
    InstanceSegmentationWithDecoder,
    _derive_point_prompts,
    get_decoder,
)
from segment_anything import SamPredictor  # noqa: E402


def main() -> None:
    arrays, params, out_path = read_inputs()
    torch.set_num_threads(int(params.get("threads", 2)))
    sam = sam_from_checkpoint(params["checkpoint"], params["spec"])
    state = torch.load(params["decoder_path"], map_location="cpu", weights_only=True)
    decoder = get_decoder(sam.image_encoder, state, device="cpu")
    predictor = SamPredictor(sam)
    embeddings = {
        "features": torch.from_numpy(arrays["features"]),
        "input_size": tuple(params["input_size"]),
        "original_size": tuple(params["original_size"]),
    }
    image = np.zeros((*params["original_size"], 3), dtype=np.uint8)  # unused: embeddings given
    segmenter = InstanceSegmentationWithDecoder(predictor, decoder)
    best = {"decoder_s": np.inf, "watershed_s": np.inf, "apg_s": np.inf}
    for _ in range(int(params["repeats"])):
        start = time.perf_counter()
        segmenter.initialize(image, image_embeddings=embeddings)
        best["decoder_s"] = min(best["decoder_s"], time.perf_counter() - start)
        start = time.perf_counter()
        ais = segmenter.generate()
        best["watershed_s"] = min(best["watershed_s"], time.perf_counter() - start)
    generator = AutomaticPromptGenerator(predictor, decoder)
    maps = segmenter.get_state()
    generator.set_state(maps)  # the predictor (shared) holds the embedding already
    seeds = ("foreground_threshold", "center_distance_threshold", "boundary_distance_threshold")
    thresholds = {k: v for k, v in params["apg"].items() if k in seeds}
    prompts = _derive_point_prompts(**maps, **thresholds)
    n_points = 0 if prompts is None else len(prompts["points"])
    for _ in range(int(params.get("apg_repeats", 1))):
        start = time.perf_counter()
        apg = generator.generate(**params["apg"])
        best["apg_s"] = min(best["apg_s"], time.perf_counter() - start)
    write_outputs(
        out_path, ais=np.asarray(ais, np.int64), apg=np.asarray(apg, np.int64),
        n_points=np.array(n_points), **{k: np.array(v) for k, v in best.items()},
    )  # fmt: skip


if __name__ == "__main__":
    main()
