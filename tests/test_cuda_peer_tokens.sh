#!/bin/bash
# test_cuda_peer_tokens.sh - qwenbench's CUDA engine against transformers on the same checkpoint: random-weight
# Qwen2.5 models of the real shapes are written as safetensors by transformers, qwenbench loads them
# (--model DIR) and generates greedily from a random prompt; the first 32 tokens must equal transformers', or at
# the first difference qwenbench's token must be in transformers' top 5 (bf16 rounding differs between engines).
#   test_cuda_peer_tokens.sh <qwenbench binary> <source dir> [model ...]     (default: qwen2.5-0.5b qwen2.5-7b)
# Exits 77 (skipped) without a GPU or without torch + transformers.
set -u
bin=$1 src=$2
shift 2
models=${*:-qwen2.5-0.5b qwen2.5-7b}
if ! nvidia-smi -L > /dev/null 2>&1; then echo "skipped: no GPU"; exit 77; fi
if ! python3 -c "import torch, transformers" > /dev/null 2>&1; then echo "skipped: no torch/transformers"; exit 77; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export NCCL_NVLS_ENABLE=0
status=0
for m in $models; do
  python3 "$src/tests/peer_transformers.py" --model "$m" --config-dir "$src/configs/models" \
      --save-checkpoint "$work/$m" || { echo "FAIL $m: writing the checkpoint"; status=1; continue; }
  "$bin" --backend cuda --model "$work/$m" --context-lengths 1,37 --generate-length 32 --repetitions 1 --warmup 0 \
      --out "$work/$m.h5" > "$work/$m.log" 2>&1 || { cat "$work/$m.log"; echo "FAIL $m: qwenbench"; status=1; continue; }
  python3 "$src/tests/peer_transformers.py" --model "$work/$m" --context-lengths 1,37 --generate-length 32 \
      --repetitions 1 --mode eager --compare-tokens "$work/$m.h5" || { echo "FAIL $m: tokens disagree"; status=1; }
  rm -rf "${work:?}/$m"
done
[ $status = 0 ] && echo "test_cuda_peer_tokens: passed"
exit $status
