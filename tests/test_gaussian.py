"""The Gaussian smoothing micro-sam's propagation and AIS use, bit for bit: bioimage-cpp's
``gaussian_smoothing`` (its portable code) is the oracle."""

from __future__ import annotations

import numpy as np

from microsam_bridge import run_task
from napari_segany.gaussian import gaussian_smooth

SIGMAS = [0.5, 1.0, 1.6, 2.3]


def test_smoothing_equals_bioimage_cpps_bit_for_bit():
    rng = np.random.default_rng(3)
    # Odd sizes, a narrow side shorter than the kernel, values spanning orders of magnitude.
    image = (rng.random((37, 5)) * 10.0 ** rng.integers(-3, 3, (37, 5))).astype(np.float32)
    wide = rng.random((64, 131)).astype(np.float32)
    # One row, one column, one pixel: every neighbour mirrored, some several times.
    thin = [rng.random(shape).astype(np.float32) for shape in ((1, 9), (9, 1), (1, 1), (2, 3))]
    for picture in (image, wide, *thin):
        theirs = run_task("gaussian", {"image": picture}, {"sigmas": SIGMAS})
        for i, sigma in enumerate(SIGMAS):
            ours = gaussian_smooth(picture, sigma)
            assert ours.dtype == np.float32 and ours.shape == picture.shape
            np.testing.assert_array_equal(ours, theirs[f"smoothed_{i}"], err_msg=f"sigma {sigma}")
