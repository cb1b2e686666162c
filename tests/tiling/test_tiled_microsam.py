"""Where micro-sam defines tiled clicks, the same embeddings give micro-sam's answer.

micro-sam encodes each tile normalised on its own (we use the whole image's mapping), so the
comparison hands micro-sam's own tile embeddings to our TiledPredictor: what is left to agree
on is which tile a click goes to, its coordinates in that tile, and where the masks land.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from microsam_bridge import run_task
from napari_segany import Predictor
from napari_segany.embeddings import ImageEmbedding
from napari_segany.tiling import TiledPredictor
from oracle import oracle_image
from reference_models import TinySpec

SHAPE, TILE, HALO = (700, 950), (400, 500), (64, 80)


def test_clicks_on_micro_sams_tile_embeddings_give_its_masks(tiny_reference, tiny_model):
    image = oracle_image(SHAPE, seed=7)
    # One click in each tile's inner block (micro-sam sends it to that tile too).
    clicks = np.array([[150.0, 200.0], [300.0, 800.0], [500.0, 100.0], [650.0, 900.0]])
    params = {"checkpoint": str(tiny_reference[1]), "spec": asdict(TinySpec()),
              "tile_shape": list(TILE), "halo": list(HALO)}  # fmt: skip
    theirs = run_task("tiling_clicks", {"image": image, "points": clicks}, params)

    tp = TiledPredictor(Predictor(tiny_model, precision="fp32"), follow_cut_objects=False)
    tp.set_image(image, tile_shape=TILE, halo=HALO)
    assert int(theirs["n_tiles"]) == tp.grid.n_tiles == 4
    for t in range(tp.grid.n_tiles):
        size = tuple(int(v) for v in theirs[f"original_size_{t}"])
        tp.set_tile_embedding(t, ImageEmbedding(theirs[f"features_{t}"], size))
    for j, click in enumerate(clicks):
        ours = tp.predict(points=click[None], labels=np.array([1]))
        assert list(_steps(tp.iter_predict(points=click[None], labels=np.array([1])))) == []
        masks = ours.full_masks()
        assert masks.shape == theirs[f"masks_{j}"].shape
        agreement = (masks == theirs[f"masks_{j}"]).mean()
        assert agreement >= 0.9999, f"click {j}: {agreement:.6f} of pixels agree"
        np.testing.assert_allclose(ours.scores, theirs[f"scores_{j}"], atol=1e-4)
        assert 0.0 < masks.mean() < 1.0


def _steps(generator):
    yield from generator
