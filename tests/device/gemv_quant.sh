#!/bin/bash
# tests/device/gemv_quant.sh - one GPU-machine call for the quantized decode GEMV (kernels/linear/gemv_quant.cu): builds the
# kernel lab's dev_gemv_quant (dev/), which checks the dispatch (the measured rule), the CUDA-core kernel ("old"),
# every register-pipelined tensor-core variant (W warps per tile, U unroll, g guarded), and the lab's variants: the
# tensor-core kernel with warps by shape and every cp.async tensor-core variant (W warps, D stages) against a double
# reference on the Qwen2.5 7B and 72B-TP2 shapes plus edge shapes (NaN-filled outputs, sentinel guards, bf16
# output = rounding of the fp32 one), then times them all (same process, graphs of 64 launches over >= 512 MiB
# of weight copies, median of 7): per shape old | new (its choice) | best reg | best async | BEST of all | bf16,
# and per format the 7B linears per token for the default. Run from the repository root with build-gpu configured
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
else # again with the cached settings: a tree configured before dev/ existed has no lab target yet
  cmake -S . -B build-gpu > "$OUT/gemv_quant_build.log" 2>&1 || { tail -30 "$OUT/gemv_quant_build.log"; exit 1; }
fi
cmake --build build-gpu -j16 --target dev_gemv_quant test_gemv_quant_tc_model >> "$OUT/gemv_quant_build.log" 2>&1 ||
  { tail -30 "$OUT/gemv_quant_build.log"; exit 1; }
echo "# build $(( $(date +%s) - T0 )) s"
./build-gpu/tests/test_gemv_quant_tc_model || exit 1
timeout 110 ./build-gpu/dev/dev_gemv_quant > "$OUT/gemv_quant_bench.log" 2>&1
rc=$?
grep -vE '^FAIL|^    ' "$OUT/gemv_quant_bench.log" | cut -c1-240 | head -44
grep -E '^FAIL|^    |FATAL' "$OUT/gemv_quant_bench.log" | head -12
echo "# bench rc=$rc at $(( $(date +%s) - T0 )) s"
exit $rc
