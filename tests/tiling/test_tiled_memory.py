"""A click on a 20000 x 20000 image costs what a tile costs, not what the image costs.

One float32 copy of this image is 1.5 GiB and one full-size mask 381 MiB; a click stays far
below both, whether it is answered by its tile or followed into a window.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from napari_segany import Predictor
from napari_segany.tiling import TiledPredictor

SIDE = 20000
MiB = 2**20


@pytest.fixture(scope="module")
def huge_image():
    image = np.full((SIDE, SIDE), 90, np.uint8)
    image[::7] = 160  # stripes, so masks have something to follow
    return image


def _peak_rss_reset() -> bool:
    """Reset this process's peak resident size (Linux), so a later peak is the step's own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


@pytest.mark.parametrize("follow", [False, True])
def test_a_click_on_a_huge_image_allocates_no_full_image_arrays(tiny_model, huge_image, follow):
    tp = TiledPredictor(Predictor(tiny_model, precision="fp32"), follow_cut_objects=follow)
    tp.set_image(huge_image)  # tile_shape="auto"
    assert tp.status() == "tiled 27 x 27, 0 tiles encoded"
    measured_rss = _peak_rss_reset()
    before = _rss("VmRSS") if measured_rss else 0
    tracemalloc.start()
    try:
        result = tp.predict(np.array([[10000.0, 10000.0]]), np.array([1]))
        _, numpy_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # numpy's allocations (traced): the tile's or window's pixels and masks.
    assert numpy_peak < 64 * MiB, f"numpy peak {numpy_peak / MiB:.0f} MiB"
    if measured_rss:  # everything, torch's encoder included
        grown = _rss("VmHWM") - before
        assert grown < 768 * MiB, f"peak memory grew by {grown / MiB:.0f} MiB"
    r0, c0, r1, c1 = result.box
    assert result.masks.shape[1:] == (r1 - r0, c1 - c0)
    assert (r1 - r0) * (c1 - c0) < 0.01 * SIDE * SIDE
    assert len(tp.encoded_tiles()) == 1
