"""Calling micro-sam, the oracle for tiling, volumes and instance segmentation.

micro-sam pins ``napari<0.10`` and installs its own copy of ``segment_anything``, so it lives
in a virtual environment of its own (``.venv-microsam/``, made by ``scripts/test.sh``; or
``$NAPARI_SEGANY_MICROSAM_PYTHON``). A test hands arrays and parameters to a task script in
``tests/microsam_tasks/`` that runs there, and gets arrays back: numpy files in, numpy files
out, nothing pickled. There is no fallback: without micro-sam these tests fail and say how to
install it, since a comparison against anything else would prove nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TASKS = Path(__file__).resolve().parent / "microsam_tasks"
PYTHON_ENV = "NAPARI_SEGANY_MICROSAM_PYTHON"


def microsam_python() -> Path:
    """The interpreter of the environment that has micro-sam installed."""
    override = os.environ.get(PYTHON_ENV, "").strip()
    path = Path(override) if override else REPO / ".venv-microsam" / "bin" / "python"
    if not path.is_file():
        raise RuntimeError(
            f"micro-sam's environment is missing ({path}). Run `bash scripts/test.sh`, which "
            f"installs it, or set {PYTHON_ENV} to a Python with micro-sam==1.8.14."
        )
    return path


def run_task(
    task: str,
    arrays: dict[str, np.ndarray],
    params: dict[str, Any] | None = None,
    timeout: float = 900,
) -> dict[str, np.ndarray]:
    """Run ``tests/microsam_tasks/<task>.py`` in micro-sam's environment.

    The script is called as ``<task>.py IN.npz PARAMS.json OUT.npz``; it reads its inputs
    from IN.npz and PARAMS.json and writes its answer to OUT.npz.
    """
    script = TASKS / f"{task}.py"
    if not script.is_file():
        raise FileNotFoundError(f"No micro-sam task {task!r} ({script})")
    with tempfile.TemporaryDirectory(prefix=f"microsam-{task}-") as tmp:
        folder = Path(tmp)
        np.savez(folder / "in.npz", **arrays)
        (folder / "params.json").write_text(json.dumps(params or {}))
        env = dict(os.environ, PYTHONPATH=str(TASKS.parent), OMP_NUM_THREADS="2")
        done = subprocess.run(
            [str(microsam_python()), str(script), str(folder / "in.npz"),
             str(folder / "params.json"), str(folder / "out.npz")],
            capture_output=True, text=True, timeout=timeout, env=env, cwd=str(folder),
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(
                f"micro-sam task {task!r} failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
            )
        with np.load(folder / "out.npz", allow_pickle=False) as out:
            return {name: out[name] for name in out.files}
