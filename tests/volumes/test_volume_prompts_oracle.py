"""A mask gives the prompts micro-sam derives from it, to the last bit: its box, its points on
the smoothed distance map (one or many), and its low-res logits.

These decide everything a propagation does next, so they are compared on their own, on shapes
that stress the rules: SAM masks, a rectangle that fills its box, one pixel, masks on the
image's edge, several pieces, and non-square images that the logits resize and pad.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from microsam_bridge import run_task
from napari_segany.volumes.prompts import mask_box, mask_logits, mask_points

EXTENSIONS = [0.0, 0.1, 0.05, 2.0]


def _masks() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    masks = []
    for i, (h, w) in enumerate([(120, 160), (200, 90), (256, 256), (300, 512), (64, 64)] * 4):
        field = ndimage.gaussian_filter(rng.random((h, w)), sigma=3 + 2 * i % 9)
        masks.append(field > np.quantile(field, 0.55 + 0.02 * i))
    rectangle = np.zeros((120, 160), bool)
    rectangle[10:30, 5:40] = True
    pixel = np.zeros((90, 70), bool)
    pixel[3, 4] = True
    edge = np.zeros((100, 130), bool)
    edge[60:, 100:] = True
    return [*masks, rectangle, pixel, edge]


@pytest.fixture(scope="module")
def micro_sams_prompts():
    masks = _masks()
    arrays = {f"mask_{m}": mask.astype(np.uint8) for m, mask in enumerate(masks)}
    return masks, run_task("volume_prompts", arrays, {"box_extensions": EXTENSIONS})


def test_a_mask_gives_micro_sams_prompts(micro_sams_prompts):
    masks, theirs = micro_sams_prompts
    many_points = 0
    for m, mask in enumerate(masks):
        np.testing.assert_array_equal(mask_logits(mask), theirs[f"logits_{m}"], f"mask {m}")
        for e, extension in enumerate(EXTENSIONS):
            case = f"mask {m}, box_extension {extension}"
            box = mask_box(mask, extension)  # (row, col, row, col); micro-sam's is x, y first
            np.testing.assert_array_equal(box[[1, 0, 3, 2]], theirs[f"box_{m}_{e}"], case)
            points, labels = mask_points(mask, extension)
            np.testing.assert_array_equal(points[:, ::-1], theirs[f"points_{m}_{e}"], case)
            np.testing.assert_array_equal(labels, theirs[f"labels_{m}_{e}"], case)
            single, _ = mask_points(mask, extension, single_point=True)
            np.testing.assert_array_equal(single[:, ::-1], theirs[f"single_{m}_{e}"], case)
            many_points += len(points) > 3
    assert many_points > len(masks)  # the peak finder had choices to make
