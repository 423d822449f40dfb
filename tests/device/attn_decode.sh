#!/bin/bash
# tests/device/attn_decode.sh - one GPU-machine call for the split-KV decode attention (kernels/attention/attention_decode.cu):
# builds the kernel lab's dev_attention_decode (dev/: the product's mma split kernel plus the lab's old one),
# checks both split kernels against the CPU reference on every Qwen2.5 head shape and TP slice at contexts
# 1 .. 131072 (NaN and sentinel checks), then times old vs mma (KV GB/s, same process) at contexts 1024 .. 131072 (every shape's bench ends at 131072).
# A failed check prints DIAG lines: *pos as the kernels saw it, the bad heads, the merged splits' partial
# (m, l, o), the caches inside the context, and whether a relaunch after a device sync fails again.
# The check also prints old vs mma pass counts of the hkv=8 shapes at context 131072. Run from the repository root with
# build-gpu configured (cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a
# -DJANSSON_ROOT=$PWD/.carry/jansson). Logs: $OUT/attn_decode_check.log, $OUT/attn_decode_bench.log.
# Exits non-zero when the build or the correctness check fails.
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
# (re)configure: an existing build-gpu made before dev/CMakeLists.txt existed lacks the target
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DJANSSON_ROOT=$PWD/.carry/jansson > "$OUT/attn_decode_check.log" 2>&1
cmake --build build-gpu -j16 --target dev_attention_decode >> "$OUT/attn_decode_check.log" 2>&1 ||
  { tail -30 "$OUT/attn_decode_check.log"; exit 1; }
echo "# build $(( $(date +%s) - T0 )) s"
timeout 75 ./build-gpu/dev/dev_attention_decode --check > "$OUT/attn_decode_check.log" 2>&1
check_rc=$?
grep -E '^#' "$OUT/attn_decode_check.log" | tail -13
grep -E 'FAIL|FATAL|DIAG' "$OUT/attn_decode_check.log" | cut -c1-400 | head -14
echo "# check rc=$check_rc at $(( $(date +%s) - T0 )) s"
timeout 40 ./build-gpu/dev/dev_attention_decode --bench > "$OUT/attn_decode_bench.log" 2>&1
bench_rc=$?
grep -vE '^# (NVIDIA|H100|H200)' "$OUT/attn_decode_bench.log" | cut -c1-200 | head -26
echo "# bench rc=$bench_rc at $(( $(date +%s) - T0 )) s"
exit $check_rc
