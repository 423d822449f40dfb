#!/bin/bash
# tests/device/profile.sh - where one decode token's time goes, per kernel, on the GPU machine (not a ctest test;
# run from the repository root with build-gpu configured as tests/device/cuda.sh does). For each cell given as
# MODEL:QUANT (default: qwen2.5-7b:gptq-int4 qwen2.5-7b:gptq-int8 qwen2.5-0.5b:bf16 qwen2.5-7b:bf16):
#   1. the engine's speed at input 1 (512 generated, 1 warm-up, 1 repetition) -> ms per token;
#   2. Nsight Compute on the decode kernels only (the engine's NVTX range "decode", src/cuda/cuda_backend.c; the
#      kernel nodes of the step graphs), duration and DRAM bytes of each kernel, base units, clocks left alone
#      (METHOD.md); summarised for one whole step (argmax to argmax): kernels by name, count, time, share, GB/s;
#      the sum of the kernel times beside the measured step time says how much of the step is between kernels;
#   3. with --stalls, ncu's SpeedOfLight, MemoryWorkloadAnalysis and WarpStateStats sections for the first
#      PROFILE_STALL_COUNT (default 6) decode kernels of the step (one layer), as ncu prints them.
# Each ncu pass replays every kernel in isolation (caches flushed between replays), so a kernel's time here is
# its time alone, without the overlap that programmatic dependent launch gives in the engine.
# Output: $OUT/profile/<tag>.{speed.h5,ncu.csv,summary.txt,stalls.txt}; the summaries on stdout.
#   PROFILE_BUDGET (s, default 420): cells that would start past it are not run (and say so).
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT/profile"
export NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1
T0=$(date +%s)
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
[ -n "$NCU" ] || { echo "profile: ncu not found"; exit 1; }
stalls=0 cells=()
for a in "$@"; do [ "$a" = --stalls ] && stalls=1 || cells+=("$a"); done
[ ${#cells[@]} -gt 0 ] || cells=(qwen2.5-7b:gptq-int4 qwen2.5-7b:gptq-int8 qwen2.5-0.5b:bf16 qwen2.5-7b:bf16)
QB=./build-gpu/qwenbench
[ -x $QB ] || { echo "profile: $QB not built"; exit 1; }
for cell in "${cells[@]}"; do
  model=${cell%%:*} quant=${cell#*:} tag=${cell//[:.]/_}
  if [ $(( $(date +%s) - T0 )) -gt $(( ${PROFILE_BUDGET:-420} - 90 )) ]; then
    echo "# $cell: not run (PROFILE_BUDGET)"; continue
  fi
  timeout 90 $QB --backend cuda --model $model --quant $quant --context-lengths 1 --generate-length 512 \
    --repetitions 1 --warmup 1 --out "$OUT/profile/$tag.speed.h5" > "$OUT/profile/$tag.speed.log" 2>&1 ||
    { echo "# $cell: speed run failed"; tail -3 "$OUT/profile/$tag.speed.log"; continue; }
  # 6 generated tokens: 5 decode steps in the timed run, of which ncu takes the first 400 kernels
  timeout 150 "$NCU" --clock-control none --nvtx --nvtx-include "decode/" --graph-profiling node --launch-count 400 \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum --csv --page raw --print-units base \
    --log-file "$OUT/profile/$tag.ncu.csv" $QB --backend cuda --model $model --quant $quant --context-lengths 1 \
    --generate-length 6 --repetitions 1 --warmup 0 --out "$OUT/profile/$tag.ncu.h5" > "$OUT/profile/$tag.ncu.log" 2>&1
  echo "# $cell: ncu rc=$? at $(( $(date +%s) - T0 )) s"
  python3 - "$OUT/profile/$tag.ncu.csv" "$OUT/profile/$tag.speed.h5" "$cell" <<'PY' | tee "$OUT/profile/$tag.summary.txt"
import csv, sys, collections
import h5py
path, speed_path, cell = sys.argv[1:4]
try:
    speed = float(h5py.File(speed_path, "r")["cells"][0]["speed_mean"])
except Exception as e:
    speed = float("nan")
rows = [r for r in csv.reader(open(path, errors="replace")) if len(r) > 5]
head = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
if head is None:
    print(f"{cell}: no ncu rows in {path}"); sys.exit()
ix = {h: i for i, h in enumerate(rows[head])}
def num(s):
    try: return float(s.replace(",", ""))
    except ValueError: return 0.0
data = [r for r in rows[head + 1:] if r[ix["ID"]].replace(",", "").isdigit()]
k = [(r[ix["Kernel Name"]].split("(")[0].replace("void ", "")[:56], num(r[ix["gpu__time_duration.sum"]]),
      num(r[ix["dram__bytes_read.sum"]]) + num(r[ix["dram__bytes_write.sum"]])) for r in data]
ends = [i for i, x in enumerate(k) if "argmax" in x[0]]
if len(ends) < 2:
    print(f"{cell}: {len(k)} kernels profiled, fewer than two argmax kernels: no whole step"); sys.exit()
step = k[ends[0] + 1: ends[1] + 1]
t_ns = sum(x[1] for x in step); b = sum(x[2] for x in step)
print(f"{cell}: engine {speed:.2f} tok/s = {1e6 / speed:.1f} us a token; one decode step under ncu: {len(step)} kernels, "
      f"their times summed {t_ns / 1e3:.1f} us ({b / 1e9:.3f} GB moved, {b / t_ns:.0f} GB/s over the kernel time); "
      f"between/overlap: {1e6 / speed - t_ns / 1e3:.1f} us")
agg = collections.OrderedDict()
for name, t, by in step:
    a = agg.setdefault(name, [0, 0.0, 0.0]); a[0] += 1; a[1] += t; a[2] += by
print(f"  {'kernel':56s} {'n':>4s} {'us':>9s} {'share':>6s} {'us each':>8s} {'GB/s':>6s}")
for name, (n, t, by) in sorted(agg.items(), key=lambda x: -x[1][1]):
    print(f"  {name:56s} {n:4d} {t / 1e3:9.1f} {100 * t / t_ns:5.1f}% {t / n / 1e3:8.2f} {by / t:6.0f}")
PY
  if [ $stalls = 1 ]; then
    timeout 120 "$NCU" --clock-control none --nvtx --nvtx-include "decode/" --graph-profiling node \
      --launch-count ${PROFILE_STALL_COUNT:-6} --section SpeedOfLight --section MemoryWorkloadAnalysis \
      --section WarpStateStats $QB --backend cuda --model $model --quant $quant --context-lengths 1 \
      --generate-length 3 --repetitions 1 --warmup 0 --out "$OUT/profile/$tag.stalls.h5" \
      > "$OUT/profile/$tag.stalls.txt" 2>&1
    echo "# $cell: stalls rc=$? at $(( $(date +%s) - T0 )) s"
    grep -E "^\s+[a-z_]+.*\(|Duration|Memory Throughput|DRAM Throughput|Stall|Warp Cycles Per Issued|Achieved Occupancy" \
      "$OUT/profile/$tag.stalls.txt" | head -60
  fi
done
echo "# profile total $(( $(date +%s) - T0 )) s"
