#!/bin/bash
# test_tp_device.sh - what one call on a 2-GPU machine runs for tensor parallelism (not a ctest test; the device
# tool runs it from the repository root, carrying .carry/jansson for the jansson headers):
#   build; the all-reduce latency at 2-16 KB (NCCL, NCCL symmetric windows, own IPC one-shot kernel); the
#   NCCL watchdog on a hung rank; the quantized GEMV kernels; qwenbench 7B BF16 at TP1 and TP2 (tokens and
#   speed, input 1, 2048 generated) and 32B BF16 at TP2 (inputs 1 and 30720).
# `bash tests/test_tp_device.sh quant` instead runs, after the build: 7B GPTQ-Int4 at TP1 and TP2 (tokens
# compared) and 72B GPTQ-Int4 at TP2, input 1, 2048 generated (the quantized-formats issue's targets).
# Everything goes to $OUT/tp.log; results files to $OUT/*.h5.
# Before the call, here: git rev-parse --short=12 HEAD > .qb-commit, and carry it with .carry, so the results
# files made there record the build commit (the device copy of the tree has no git history).
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PYTHONUNBUFFERED=1
exec > >(tee -a "$OUT/tp.log") 2>&1
T0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
nvidia-smi topo -m
date -u
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DJANSSON_ROOT=$PWD/.carry/jansson \
  > "$OUT/build.log" 2>&1 &&
cmake --build build-gpu -j32 --target qwenbench bench_allreduce test_cuda_quant >> "$OUT/build.log" 2>&1 ||
  { tail -40 "$OUT/build.log"; exit 1; }
echo "# build $(( $(date +%s) - T0 )) s, commit $(git rev-parse --short HEAD 2>/dev/null)"
step() { # name timeout command...
  local name=$1 lim=$2; shift 2
  echo "### $name (at $(( $(date +%s) - T0 )) s): $*"
  timeout "$lim" "$@"
  echo "### $name rc=$? (at $(( $(date +%s) - T0 )) s)"
}
MPI="mpirun -np 2 --bind-to none -x NCCL_NVLS_ENABLE"
QB=./build-gpu/qwenbench
compare_tokens() { # two results files: how many generated tokens agree
  python3 - "$@" <<'PY'
import sys, h5py
t = [h5py.File(p)["generated_tokens"][()][:2048].tolist() for p in sys.argv[1:]]
s = next((i for i, (a, b) in enumerate(zip(*t)) if a != b), len(t[0]))
print(f"# {sys.argv[2]} vs {sys.argv[1]}: first {s} of {len(t[0])} generated tokens equal")
PY
}
if [ "${1:-}" = quant ]; then
  Q="--backend cuda --quant gptq-int4 --context-lengths 1 --repetitions 1 --warmup 0"
  step tp1_7b_int4 100 $MPI $QB $Q --model qwen2.5-7b --tp 1 --out "$OUT/tp1_7b_int4.h5"
  step tp2_7b_int4 100 $MPI $QB $Q --model qwen2.5-7b --tp 2 --out "$OUT/tp2_7b_int4.h5"
  compare_tokens "$OUT/tp1_7b_int4.h5" "$OUT/tp2_7b_int4.h5"
  step tp2_72b_int4 240 $MPI $QB $Q --model qwen2.5-72b --tp 2 --out "$OUT/tp2_72b_int4.h5"
  echo "# total $(( $(date +%s) - T0 )) s"
  exit 0
fi
step allreduce 120 $MPI ./build-gpu/tests/bench_allreduce
step watchdog_hang 60 $MPI ./build-gpu/tests/bench_allreduce --fault-hang --impl nccl --deadline 10
step quant 120 ./build-gpu/tests/test_cuda_quant
step tp1_7b 150 $MPI $QB --backend cuda --model qwen2.5-7b --tp 1 --context-lengths 1 --repetitions 2 --out "$OUT/tp1_7b.h5"
step tp2_7b 120 $MPI $QB --backend cuda --model qwen2.5-7b --tp 2 --context-lengths 1 --repetitions 2 --out "$OUT/tp2_7b.h5"
python3 - "$OUT/tp1_7b.h5" "$OUT/tp2_7b.h5" <<'PY'
import sys, h5py
t = [h5py.File(p)["generated_tokens"][()][:2048].tolist() for p in sys.argv[1:]]
s = next((i for i, (a, b) in enumerate(zip(*t)) if a != b), len(t[0]))
print(f"# 7B TP2 vs TP1: first {s} of {len(t[0])} generated tokens equal")
PY
step tp2_32b 230 $MPI $QB --backend cuda --model qwen2.5-32b --tp 2 --context-lengths 1,30720 --repetitions 1 \
  --out "$OUT/tp2_32b.h5"
echo "# total $(( $(date +%s) - T0 )) s"
