#!/usr/bin/env bash
# The checks that need a CUDA GPU: the accelerator tests, then ours against the reference on
# the GPU (encoder images/s for vit_b and vit_h, a click, a compiled encoder). Needs python3
# with torch (CUDA), pytest, scikit-image, pillow, platformdirs, pooch, segment-anything and
# mobilesam-mirror; the package itself is taken from src/. Logs go to $OUT (default gpu-logs/).
# Segment everything is left out: the reference takes minutes for it even on a GPU.
set -u
out=${OUT:-gpu-logs}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_capability())" \
  | tee -a "$out/gpu.txt"

# The suite's ini options name pytest plugins this machine may lack; these tests need none.
timeout 150 python3 -m pytest -q -o addopts="-ra" -o filterwarnings="ignore::DeprecationWarning" \
  tests/test_accelerators.py tests/test_precision.py 2>&1 | tee "$out/tests.txt" | tail -n 12

bench() {  # $1: log name; the rest: bench.py arguments
  local name=$1 limit=$2
  shift 2
  echo "== bench.py $*"
  timeout "$limit" python3 benchmarks/bench.py --device cuda --repeat 10 "$@" 2>&1 \
    | grep -v -i warn | tee "$out/$name.txt"
}
bench auto 150 --models vit_b --vit-h --precision auto
bench compiled 130 --models vit_b --precision auto --compile
bench fp32 120 --models vit_b --vit-h --precision fp32
