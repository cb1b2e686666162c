#!/usr/bin/env bash
# Install the plugin with napari (PyQt6) in a virtual environment and open napari with
# the Segment Anything widget on an offline sample image.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
if ! .venv/bin/python -m pip install -q -e ".[all]" > .venv/pip-install.log 2>&1; then
  tail -n 40 .venv/pip-install.log
  echo "Installing napari-segany failed; the full log is in .venv/pip-install.log" >&2
  exit 1
fi
exec .venv/bin/python -m napari_segany "$@"
