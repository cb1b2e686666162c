"""bioimage-cpp's seeded watershed (what micro-sam's AIS grows its seeds with).

IN.npz: ``heights`` float32, ``markers`` int64 and ``mask`` bool, all (H, W) or (Z, H, W).
OUT.npz: ``labels`` int64 of the same shape.
"""

from __future__ import annotations

import numpy as np
from _common import read_inputs, write_outputs
from bioimage_cpp import segmentation


def main() -> None:
    arrays, _, out_path = read_inputs()
    labels = segmentation.watershed(
        arrays["heights"], markers=arrays["markers"].astype(np.int64), mask=arrays["mask"]
    )
    write_outputs(out_path, labels=np.asarray(labels, dtype=np.int64))


if __name__ == "__main__":
    main()
