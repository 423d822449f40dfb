#!/bin/bash
# device_gemv_quant.sh - one GPU-machine call for the quantized decode GEMV (kernels/gemv_quant.cu): builds
# test_cuda_gemv_quant_bench, which checks the 4-bit tensor-core kernel (the default for GPTQ-Int4 / AWQ; every
# warps-per-tile variant), the dispatch and the old CUDA-core kernel (QB_GEMV_QUANT=old) against a double
# reference on the Qwen2.5 7B and 72B-TP2 shapes plus edge shapes (NaN-filled outputs, sentinel guards, bf16
# output = rounding of the fp32 one), then times old vs new (same process, graphs of 64 launches over >= 512 MiB
# of weight copies, median of 7) next to the bf16 GEMV. Run from the repository root with build-gpu configured
# (cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a
# -DJANSSON_ROOT=$PWD/.carry/jansson; configured here if missing). Logs: $OUT/gemv_quant_build.log,
# $OUT/gemv_quant_bench.log. Exits non-zero when the build or any correctness check fails.
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
if [ ! -f build-gpu/CMakeCache.txt ]; then
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DJANSSON_ROOT=$PWD/.carry/jansson > "$OUT/gemv_quant_build.log" 2>&1 ||
    { tail -30 "$OUT/gemv_quant_build.log"; exit 1; }
fi
cmake --build build-gpu -j16 --target test_cuda_gemv_quant_bench test_gemv_quant_tc_model >> "$OUT/gemv_quant_build.log" 2>&1 ||
  { tail -30 "$OUT/gemv_quant_build.log"; exit 1; }
echo "# build $(( $(date +%s) - T0 )) s"
./build-gpu/tests/test_gemv_quant_tc_model || exit 1
timeout 100 ./build-gpu/tests/test_cuda_gemv_quant_bench > "$OUT/gemv_quant_bench.log" 2>&1
rc=$?
grep -vE '^FAIL|^    ' "$OUT/gemv_quant_bench.log" | cut -c1-230 | head -40
grep -E '^FAIL|^    |FATAL' "$OUT/gemv_quant_bench.log" | head -14
echo "# bench rc=$rc at $(( $(date +%s) - T0 )) s"
exit $rc
