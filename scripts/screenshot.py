"""Render docs/screenshot.png: the widget on the offline cell sample, after one click.

Run under Xvfb: ``xvfb-run -a .venv/bin/python scripts/screenshot.py [CHECKPOINT]
[--out=PATH]``. With no internet the
model is a small random-weight SAM (pass a checkpoint path to use real weights), so the mask
shows what the widget does, not how good SAM is.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def random_checkpoint(folder: Path) -> Path:
    import torch

    from napari_segany.modeling import SamConfig, build_sam

    torch.manual_seed(0)
    model = build_sam(SamConfig(embed_dim=48, depth=3, num_heads=3, global_attn_indexes=(1,)))
    path = folder / "random_sam.pth"
    torch.save(model.state_dict(), path)
    return path


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    args = [a for a in sys.argv[1:] if not a.startswith("--out=")]
    outs = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--out=")]
    checkpoint = args[0] if args else str(random_checkpoint(folder))
    os.environ["NAPARI_SEGANY_MODEL"] = checkpoint
    os.environ.setdefault("NAPARI_SEGANY_CACHE_DIR", str(folder / "cache"))

    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1400, 850)
    viewer.open_sample("napari-segany", "cell")
    _, widget = viewer.window.add_plugin_dock_widget("napari-segany", "Segment Anything")
    app = QApplication.instance()

    def spin(seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            app.processEvents()
            time.sleep(0.02)

    spin(1.0)
    widget.controller.image_clicked(np.array([330.0, 270.0]))  # a click on the image
    for _ in range(600):
        spin(0.1)
        if widget.preview_objects() is not None and not widget.jobs.busy:
            break
    spin(1.0)
    docs = Path(__file__).resolve().parent.parent / "docs"
    out = Path(outs[0]) if outs else docs / "screenshot.png"
    from skimage.io import imsave

    imsave(out, viewer.screenshot(canvas_only=False, flash=False), check_contrast=False)
    print(out)
    viewer.close()


if __name__ == "__main__":
    main()
