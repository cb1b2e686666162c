"""The package as napari sees it: cheap to import, a valid manifest, offline sample data."""

from __future__ import annotations

import subprocess
import sys

import numpy as np


def test_import_does_not_load_torch_qt_or_napari():
    code = (
        "import sys, napari_segany\n"
        "heavy = ('torch', 'qtpy', 'PyQt6', 'napari', 'magicgui')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing napari_segany loaded {out.stdout.strip()}"


def test_public_api_is_reachable():
    import napari_segany

    for name in napari_segany.__all__:
        assert getattr(napari_segany, name) is not None


def test_manifest_validates_with_npe2():
    out = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-segany"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "valid" in (out.stdout + out.stderr).lower()


def test_napari_lists_the_plugin():
    from npe2 import PluginManager

    manager = PluginManager.instance()
    manager.discover()
    assert "napari-segany" in manager._manifests


def test_sample_data_is_offline_microscopy():
    from napari_segany._sample_data import cell_sample, immunohistochemistry_sample

    ((data, meta, kind),) = cell_sample()
    assert kind == "image" and data.ndim == 2 and data.dtype == np.uint8
    ((rgb, meta, kind),) = immunohistochemistry_sample()
    assert rgb.shape[-1] == 3 and meta["rgb"] is True
