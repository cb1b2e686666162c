#!/usr/bin/env bash
# Install everything (system libraries, a virtual environment with the plugin, its test
# extras and the reference SAM packages, and micro-sam's own environment) and run the whole
# test suite under Xvfb.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
# The oracle packages import torchvision, which needs a torch of the same release.
if ! .venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1" -e ".[test]" \
  > .venv/pip-install.log 2>&1; then
  tail -n 40 .venv/pip-install.log
  echo "Installing the test environment failed; the full log is in .venv/pip-install.log" >&2
  exit 1
fi
# micro-sam, the oracle for tiling, volumes and instance segmentation, pins napari<0.10 and
# replaces segment_anything with its own copy: it gets an environment of its own, which the
# tests call through tests/microsam_bridge.py.
if ! .venv-microsam/bin/python -c "import micro_sam" > /dev/null 2>&1; then
  python3 -m venv .venv-microsam
  if ! .venv-microsam/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1" \
    "micro-sam==1.8.14" > .venv-microsam/pip-install.log 2>&1; then
    tail -n 40 .venv-microsam/pip-install.log
    echo "Installing micro-sam failed; the full log is in .venv-microsam/pip-install.log" >&2
    exit 1
  fi
fi
exec .venv/bin/python -m pytest "$@"
