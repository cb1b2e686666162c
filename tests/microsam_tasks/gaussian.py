"""bioimage-cpp's Gaussian smoothing (what micro-sam smooths with), in its portable code.

IN.npz: ``image`` (H, W) float32. PARAMS.json: ``sigmas``. OUT.npz: ``smoothed_<i>`` (H, W)
float32 for the i-th sigma. ``BIOIMAGE_CPP_FILTERS_FORCE_SCALAR=1`` selects the portable code
path (the one every CPU runs the same way), set before the library loads.
"""

from __future__ import annotations

import os

os.environ["BIOIMAGE_CPP_FILTERS_FORCE_SCALAR"] = "1"

import numpy as np  # noqa: E402
from _common import read_inputs, write_outputs  # noqa: E402
from bioimage_cpp import filters  # noqa: E402


def main() -> None:
    arrays, params, out_path = read_inputs()
    image = arrays["image"].astype(np.float32)
    out = {
        f"smoothed_{i}": np.asarray(filters.gaussian_smoothing(image, sigma), dtype=np.float32)
        for i, sigma in enumerate(params["sigmas"])
    }
    write_outputs(out_path, **out)


if __name__ == "__main__":
    main()
