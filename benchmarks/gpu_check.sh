#!/usr/bin/env bash
# The GPU checks of issue 11 as one prepared call on a device machine (its python3 holds
# PyTorch with CUDA and every package aekit needs; aekit itself runs from src/).
#
# Here, once:   mkdir -p .data && cp -r ../shared/data/mnist ../shared/data/cifar10-subset .data/
#               (25 MB; .gitignore leaves .data/ out, so it travels only when carried; ../shared never does)
# Then:         run(command="bash benchmarks/gpu_check.sh", carry=[".data"], timeout_s=540)
#
# It prints the GPU, runs tests/test_cuda.py on it, then benchmarks/mixed_precision.py
# --device cuda (EPOCHS, CONV_EPOCHS and NAME override its length and result name), and
# copies the result file and the log to $OUT (or benchmarks/results/ off the device tool).
set -euo pipefail
export PYTHONPATH="$PWD/src" AEKIT_DATA="${AEKIT_DATA:-$PWD/.data}" PYTHONUNBUFFERED=1
out="${OUT:-benchmarks/results}"
name="${NAME:-mixed_precision_gpu}"
log="$out/gpu_check.log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$log"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" 2>&1 | tee -a "$log"
# a failing test is reported, and the benchmark still runs: the device time is not spent twice
tests=0
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee -a "$log" || tests=$?
python3 benchmarks/mixed_precision.py --device cuda --epochs "${EPOCHS:-3}" --conv-epochs "${CONV_EPOCHS:-5}" \
    --name "$name" 2>&1 | tee -a "$log"
if [ "$out" != benchmarks/results ]; then cp "benchmarks/results/$name.json" "$out/"; fi
if [ "$tests" != 0 ]; then echo "tests/test_cuda.py failed (exit $tests): see $log" >&2; exit "$tests"; fi
