#!/usr/bin/env bash
# Install the plugin with napari (PyQt6) in a virtual environment and open napari with
# the Segment Anything widget on an offline sample image.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -e ".[all]"
exec .venv/bin/python -m napari_segany "$@"
