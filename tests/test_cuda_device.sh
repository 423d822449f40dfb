#!/bin/bash
# test_cuda_device.sh - what one call on the GPU machine runs for the CUDA engine: build, the CUDA tests, the
# kernel micro-benchmark and short end-to-end runs (not a ctest test; the device tool runs it).
#   bash tests/test_cuda_device.sh [check|bench]      logs under $OUT (or ./out)
# check: build + kernel tests + engine tests + micro-benchmark + short qwenbench and peer runs.
# Needs jansson headers carried in .carry/jansson (apt-get download libjansson-dev; dpkg -x).
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1
mode=${1:-check}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
git log -1 --format='commit %H %cd' | tee -a "$OUT/gpu.txt"
t0=$(date +%s)
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DJANSSON_ROOT=$PWD/.carry/jansson \
  > "$OUT/build.log" 2>&1 &&
cmake --build build-gpu -j16 --target qwenbench test_cuda_kernels test_cuda_engine test_cuda_gemv_bench \
  >> "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
echo "# build $(( $(date +%s) - t0 )) s"
step() { # name timeout command...
  local name=$1 lim=$2; shift 2
  local s=$(date +%s)
  timeout "$lim" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "# $name rc=$rc $(( $(date +%s) - s )) s"
  tail -n ${TAILN:-12} "$OUT/$name.log"
}
if [ "$mode" = check ]; then
  TAILN=6 step kernels 240 ./build-gpu/tests/test_cuda_kernels
  grep FAIL "$OUT/kernels.log" | head -20
  TAILN=20 step engine 240 ./build-gpu/tests/test_cuda_engine tests/fixtures
  TAILN=40 step gemv_bench 180 ./build-gpu/tests/test_cuda_gemv_bench
  step qb05 120 ./build-gpu/qwenbench --backend cuda --model qwen2.5-0.5b --context-lengths 1,6144 \
    --generate-length 512 --repetitions 1 --warmup 0 --out "$OUT/qb05.h5"
  step qb7 180 ./build-gpu/qwenbench --backend cuda --model qwen2.5-7b --context-lengths 1,30720 \
    --generate-length 256 --repetitions 1 --warmup 0
  step peer05 240 python3 tests/peer_transformers.py --model qwen2.5-0.5b --context-lengths 1 --generate-length 64 \
    --repetitions 1 --mode eager --out "$OUT/peer05.json" --compare-tokens "$OUT/qb05.h5"
fi
echo "# total $(( $(date +%s) - t0 )) s"
