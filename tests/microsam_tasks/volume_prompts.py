"""micro-sam's prompts from masks: what ``segment_from_mask`` derives before it decodes.

IN.npz: ``mask_<m>`` (H, W) uint8 0/1 for each mask m (of any size), none empty.
PARAMS.json: ``box_extensions``, a list of floats.
OUT.npz, for mask m and extension e: ``box_<m>_<e>`` (4,) (x0, y0, x1, y1), ``points_<m>_<e>``
(N, 2) (x, y) with ``labels_<m>_<e>`` (N,), ``single_<m>_<e>`` (1, 2) (x, y); and
``logits_<m>`` (1, 256, 256) float32.

bioimage-cpp's filters run their portable code here (see ``volume_segment.py``).
"""

from __future__ import annotations

import os

os.environ["BIOIMAGE_CPP_FILTERS_FORCE_SCALAR"] = "1"

from _common import read_inputs, write_outputs  # noqa: E402
from micro_sam.prompt_based_segmentation import (  # noqa: E402
    _compute_box_from_mask,
    _compute_logits_from_mask,
    _compute_points_from_mask,
)


def main() -> None:
    arrays, params, out_path = read_inputs()
    out = {}
    for m in range(len(arrays)):
        mask = arrays[f"mask_{m}"]
        out[f"logits_{m}"] = _compute_logits_from_mask(mask)
        for e, extension in enumerate(params["box_extensions"]):
            out[f"box_{m}_{e}"] = _compute_box_from_mask(mask, box_extension=extension)
            points, labels = _compute_points_from_mask(mask, None, extension)
            out[f"points_{m}_{e}"], out[f"labels_{m}_{e}"] = points, labels
            single, _ = _compute_points_from_mask(mask, None, extension, use_single_point=True)
            out[f"single_{m}_{e}"] = single
    write_outputs(out_path, **out)


if __name__ == "__main__":
    main()
