#!/usr/bin/env bash
# Install everything (system libraries, a virtual environment, the plugin with its test
# extras and the reference SAM packages) and run the whole test suite under Xvfb.
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
exec .venv/bin/python -m pytest "$@"
