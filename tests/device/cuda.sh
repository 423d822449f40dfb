#!/bin/bash
# tests/device/cuda.sh - what one call on the GPU machine runs for the CUDA engine (not a ctest test; the device
# tool runs it from the repository root). Logs and results under $OUT (default ./out).
#   bash tests/device/cuda.sh tests    build, kernel + engine tests, GEMV/attention micro-benchmark
#   bash tests/device/cuda.sh gpu_tests  build every target, then every GPU ctest test (3 at a time; the list in
#                                           QB_GPU_TESTS; time limit QB_GPU_TESTS_BUDGET s, default 480)
#   bash tests/device/cuda.sh check    tests, then short qwenbench runs
#   bash tests/device/cuda.sh bench    the benchmark of docs/PERFORMANCE.md: qwenbench 0.5B and 7B BF16 at
#                                           inputs 1, 6144, 30720 (2048 generated, 3 repetitions, no warm-up as in
#                                           the seed protocol)
#   bash tests/device/cuda.sh peer     the transformers peer (compile mode on every bench cell, then eager at
#                                           input 1) as far as the call's time allows; tokens checked against the
#                                           bench files when they are there
#   bash tests/device/cuda.sh long     7B BF16 at inputs 63488 and 129024 (issue 8)
#   bash tests/device/cuda.sh quant    build, the quantized engine test (random GPTQ-Int4/Int8/AWQ weights and the
#                                           quantized fixture checkpoints vs the CPU engine), the fused quantized
#                                           decode GEMVs vs the unfused kernels (all shapes, then --bench), the bf16
#                                           engine test, then qwenbench 7B at input 1 (2048 generated, 1 repetition)
#                                           in bf16, gptq-int4, gptq-int8 and awq on the same card
#                                           (docs/PERFORMANCE.md), and Int4 / Int8 unfused (--decode-fusion none)
#                                           with the fused runs' tokens compared to the unfused ones, Int4
#                                           fused on the row layout (--quant-layout rows), and Int8 tiled with the
#                                           fused GEMVs (--quant-layout tiled; also the engine test with it)
#   bash tests/device/cuda.sh validity build, then for 0.5B and 7B: export-weights, qwenbench runs the exported
#                                           checkpoint (2048 generated), transformers runs it too, free-running and
#                                           teacher-forced on qwenbench's tokens (every step's top 5), and writes
#                                           its tokens; qwenbench runs again with --expect-tokens and the results
#                                           file records both agreements in its checks
#   bash tests/device/cuda.sh build_base  builds the qwenbench of an older commit from the source tree in
#                                           $QB_BASE_SRC (e.g. `git archive c232971`, its commit in
#                                           $QB_BASE_SRC/.qb-commit) into build-base ($QB_BASE_BUILD if set) with
#                                           the flags of build-gpu, and exports QB_BASE_BIN=build-base/qwenbench
#   bash tests/device/cuda.sh options  before/after on the same card: $QB_BASE_BIN (an older build) and
#                                           build-gpu/qwenbench, both with every default (no engine flags, no QB_*
#                                           variables: the old binary read its choices from QB_* variables), on 7B
#                                           BF16 inputs 1 and 30720, 0.5B BF16 input 1, 7B GPTQ-Int4 and GPTQ-Int8
#                                           input 1; 2048 generated, --repetitions 2 --warmup 1 (about 5.5 min of
#                                           runs on an H100 from the speeds of docs/PERFORMANCE.md; a pair is not
#                                           started past $QB_OPTIONS_BUDGET s, default 560, from the call's start).
#                                           Files $OUT/files/<name>_{base,new}.h5; a table of cell, base tok/s,
#                                           new tok/s, ratio, tokens equal (tests/compare_tokens.py), then the new
#                                           files' engine_choices. `build_base options` does both in one call (the
#                                           two builds take ~3 min with -j16: over ~8 min in all; on a warm
#                                           machine build_base's build-base stays for the next call).
# Phases combine: `bash tests/device/cuda.sh quant validity` builds once and runs both.
# Needs jansson headers carried in .carry/jansson (apt-get download libjansson-dev; dpkg -x ... .carry/jansson).
# If the engine test fails with programmatic dependent launch, the later runs take --pdl off and say so (not the
# options phase: it compares defaults).
# Before the call, here: run it from a committed snapshot, so that uncommitted edits never reach a measurement
# and the results files record the build commit (the device copy has no git history):
#   rm -rf .snap && mkdir .snap && git archive HEAD | tar -x -C .snap && git rev-parse --short=12 HEAD > .snap/.qb-commit
#   cp -r .carry .snap/      (then: carry [".snap"], command: mkdir -p build-snap && cd .snap && ln -sfn ../build-snap build-gpu && bash tests/...)
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT/files"
export NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1
T0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
date -u | tee -a "$OUT/gpu.txt"
# QB_TEST_PYTHON: the machine's python3 on PATH (numpy, h5py, torch); its /usr/bin/python3 has none of them
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DJANSSON_ROOT=$PWD/.carry/jansson \
  -DQB_TEST_PYTHON="$(command -v python3)" > "$OUT/files/build.log" 2>&1 &&
cmake --build build-gpu -j16 --target qwenbench test_cuda_kernels test_cuda_engine test_cuda_gemv_bench test_cuda_quant_engine \
  test_decode_fusion test_decode_fusion_quant \
  >> "$OUT/files/build.log" 2>&1 || { tail -30 "$OUT/files/build.log"; exit 1; }
echo "# build $(( $(date +%s) - T0 )) s"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # expect_from
step() { # name timeout command...
  local name=$1 lim=$2; shift 2
  local s=$(date +%s)
  timeout "$lim" "$@" > "$OUT/files/$name.log" 2>&1
  local rc=$?
  echo "# $name rc=$rc $(( $(date +%s) - s )) s (at $(( $(date +%s) - T0 )) s)"
  tail -n ${TAILN:-12} "$OUT/files/$name.log"
  return $rc
}
phase_quant() {
  QFIX=build-gpu/quant_fixtures
  python3 tests/make_quant_fixtures.py --fixtures tests/fixtures --out $QFIX > "$OUT/files/quant_fixtures.log" 2>&1 ||
    { echo "# quantized fixtures not made (numpy?): random-weight cases only"; tail -3 "$OUT/files/quant_fixtures.log"; QFIX=; }
  TAILN=30 step quant_engine 150 ./build-gpu/tests/test_cuda_quant_engine tests/fixtures $QFIX
  grep FAIL "$OUT/files/quant_engine.log" | head -20
  TAILN=6 step quant_engine_tiled 150 ./build-gpu/tests/test_cuda_quant_engine tests/fixtures $QFIX --quant-layout tiled
  grep FAIL "$OUT/files/quant_engine_tiled.log" | head -20
  TAILN=30 step fusion_quant 200 ./build-gpu/tests/test_decode_fusion_quant --bench
  grep FAIL "$OUT/files/fusion_quant.log" | head -20
  TAILN=4 step engine 120 ./build-gpu/tests/test_cuda_engine tests/fixtures $PDL
  grep FAIL "$OUT/files/engine.log" | head
  local q
  for q in gptq-int4 gptq-int8; do # the unfused sequence first: its tokens are what the fused run is compared with
    TAILN=6 step qb7_${q}_unfused 75 ./build-gpu/qwenbench --backend cuda --model qwen2.5-7b $PDL \
      --decode-fusion none --quant $q --context-lengths 1 --generate-length 2048 --repetitions 1 --warmup 0 \
      --out "$OUT/files/qb7_${q}_unfused.h5"
    expect_from "$OUT/files/qb7_${q}_unfused.h5" "qwenbench unfused" > "$OUT/files/qb7_${q}_unfused.json"
  done
  TAILN=6 step qb7_gptq-int4_rows 75 ./build-gpu/qwenbench --backend cuda --model qwen2.5-7b $PDL \
    --quant-layout rows --quant gptq-int4 --context-lengths 1 --generate-length 2048 --repetitions 1 --warmup 0 \
    --out "$OUT/files/qb7_gptq-int4_rows.h5" # fused GEMVs on the row layout: the tiled layout's gain
  local ex8=""
  [ -s "$OUT/files/qb7_gptq-int8_unfused.json" ] && ex8="--expect-tokens $OUT/files/qb7_gptq-int8_unfused.json"
  TAILN=6 step qb7_gptq-int8_tiled 75 ./build-gpu/qwenbench --backend cuda --model qwen2.5-7b $PDL \
    --quant-layout tiled --quant gptq-int8 --context-lengths 1 --generate-length 2048 --repetitions 1 --warmup 0 $ex8 \
    --out "$OUT/files/qb7_gptq-int8_tiled.h5" # 8 bits tiled with the fused GEMVs, against the default (unfused rows)
  for q in bf16 gptq-int4 gptq-int8 awq; do
    local ex=""
    [ -s "$OUT/files/qb7_${q}_unfused.json" ] && ex="--expect-tokens $OUT/files/qb7_${q}_unfused.json"
    TAILN=6 step qb7_$q 75 ./build-gpu/qwenbench --backend cuda --model qwen2.5-7b $PDL --quant $q --context-lengths 1 \
      --generate-length 2048 --repetitions 1 --warmup 0 $ex --out "$OUT/files/qb7_$q.h5"
  done
}
# Every ctest test that needs the GPU (and the Python tests beside them), 3 at a time: they check correctness, not
# speed, and side by side they also shake out host/stream ordering races (a fill landing after a kernel's output).
QB_GPU_TESTS="attn|cuda|kernels|fusion|gemv|nccl|allreduce|tp_exchange|fused_launch|lab|compare_tokens|memory_plan|launch_trace"
phase_gpu_tests() {
  local s=$(date +%s)
  cmake --build build-gpu -j16 >> "$OUT/files/build.log" 2>&1 || { echo "# gpu_tests: build failed"; tail -20 "$OUT/files/build.log"; return 1; }
  (cd build-gpu && timeout ${QB_GPU_TESTS_BUDGET:-480} ctest -j3 -R "$QB_GPU_TESTS" --timeout 420 > "$OUT/files/gpu_tests.log" 2>&1)
  local rc=$?
  cp build-gpu/Testing/Temporary/LastTest.log "$OUT/files/gpu_tests_LastTest.log" 2>/dev/null
  echo "# gpu_tests rc=$rc $(( $(date +%s) - s )) s (at $(( $(date +%s) - T0 )) s)"
  grep -E "tests passed|tests failed|\*\*\*|^\s+[0-9]+ - " "$OUT/files/gpu_tests.log" | tail -30
  return $rc
}
phase_tests() { # kernel + engine tests, GEMV/attention micro-benchmark
  TAILN=3 step kernels 200 ./build-gpu/tests/test_cuda_kernels; grep FAIL "$OUT/files/kernels.log" | head -20
  if ! TAILN=4 step engine 200 ./build-gpu/tests/test_cuda_engine tests/fixtures; then
    grep FAIL "$OUT/files/engine.log" | head
    echo "# engine test failed with PDL on: rerunning with --pdl off (and the later runs too)"
    PDL="--pdl off"
    QB="$QB $PDL"
    TAILN=4 step engine_nopdl 200 ./build-gpu/tests/test_cuda_engine tests/fixtures $PDL
  fi
  TAILN=3 step fusion 200 ./build-gpu/tests/test_decode_fusion --quick; grep FAIL "$OUT/files/fusion.log" | head
  TAILN=40 step gemv_bench 120 ./build-gpu/tests/test_cuda_gemv_bench
}
PDL="" # "--pdl off" once the engine test failed with programmatic dependent launch (phase_tests)
QB="./build-gpu/qwenbench --backend cuda --generate-length 2048 --warmup 0"
phase_check() {
  phase_tests
  step qb05 120 $QB --model qwen2.5-0.5b --context-lengths 1,6144 --repetitions 1 --out "$OUT/files/qb05.h5"
  step qb7 180 $QB --model qwen2.5-7b --context-lengths 1,30720 --generate-length 256 --repetitions 1
}
phase_bench() { # the benchmark of docs/PERFORMANCE.md (qwenbench side)
  TAILN=8 step bench05 150 $QB --model qwen2.5-0.5b --context-lengths 1,6144,30720 --repetitions 3 --out "$OUT/files/qb05.h5"
  TAILN=8 step bench7 260 $QB --model qwen2.5-7b --context-lengths 1,6144,30720 --repetitions 3 --out "$OUT/files/qb7.h5"
}
phase_long() { # issue 8 on one GPU: 7B at 63488 and 129024 (YaRN applied as published), 2048 generated
  TAILN=8 step long7 400 $QB --model qwen2.5-7b --context-lengths 63488,129024 --repetitions 1 --out "$OUT/files/long7.h5"
}
phase_peer() { # the transformers peer on the bench cells, as many as the call's time allows (585 s from the start)
  local PEER="python3 tests/peer_transformers.py --generate-length 2048 --repetitions 1" m n mode left
  for spec in 7b:1:compile 0.5b:1:compile 7b:6144:compile 7b:30720:compile 0.5b:6144:compile 0.5b:30720:compile \
              7b:1:eager 0.5b:1:eager; do
    IFS=: read m n mode <<< "$spec"
    left=$(( 585 - ($(date +%s) - T0) ))
    if [ $left -lt 90 ]; then echo "# peer $spec: not run ($left s left)"; continue; fi
    local q=$OUT/files/qb05.h5; [ $m = 7b ] && q=$OUT/files/qb7.h5
    TAILN=4 step peer_${m}_${n}_$mode $(( left - 5 )) $PEER --model qwen2.5-$m --context-lengths $n --mode $mode \
      --out "$OUT/files/peer_${m}_${n}_$mode.json" $( [ -f $q ] && echo --compare-tokens $q )
  done
}
phase_validity() { # issue 12: transformers runs the exported checkpoint; qwenbench's results file records agreement
  local m dir
  for m in qwen2.5-0.5b qwen2.5-7b; do
    dir=build-gpu/export/$m
    TAILN=3 step export_$m 240 ./build-gpu/qwenbench export-weights --model $m --out $dir || continue
    # qwenbench first, so that the peer can be fed its 2048 tokens (teacher-forced: every step checked)
    TAILN=3 step qb_$m 120 ./build-gpu/qwenbench --backend cuda $PDL --model $dir --context-lengths 1,37 \
      --generate-length 2048 --repetitions 1 --warmup 0 --out "$OUT/files/qb_$m.h5"
    TAILN=8 step peer_$m 240 python3 tests/peer_transformers.py --model $dir --context-lengths 1,37 \
      --generate-length 32 --repetitions 1 --mode eager --teacher-forced "$OUT/files/qb_$m.h5" \
      --out "$OUT/files/peer_$m.json"
    TAILN=12 step expect_$m 120 ./build-gpu/qwenbench --backend cuda $PDL --model $dir --context-lengths 1,37 \
      --generate-length 2048 --repetitions 1 --warmup 0 --expect-tokens "$OUT/files/peer_$m.json" \
      --out "$OUT/files/expect_$m.h5"
    ./build-gpu/qwenbench tokens "$OUT/files/expect_$m.h5" 2>&1 | head -20
    rm -rf "$dir"
  done
}
phase_build_base() { # the older commit's qwenbench from $QB_BASE_SRC into build-base, with build-gpu's flags
  if [ -z "${QB_BASE_SRC:-}" ] || [ ! -f "$QB_BASE_SRC/CMakeLists.txt" ]; then
    echo "# build_base: QB_BASE_SRC='${QB_BASE_SRC:-}' is not a source tree" \
      "(mkdir DIR && git archive COMMIT | tar -x -C DIR)"
    return 1
  fi
  local s=$(date +%s) dir=${QB_BASE_BUILD:-build-base}
  cmake -S "$QB_BASE_SRC" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DJANSSON_ROOT=$PWD/.carry/jansson > "$OUT/files/build_base.log" 2>&1 &&
  cmake --build "$dir" -j16 --target qwenbench >> "$OUT/files/build_base.log" 2>&1 ||
    { echo "# build_base failed:"; tail -30 "$OUT/files/build_base.log"; return 1; }
  export QB_BASE_BIN=$(cd "$dir" && pwd)/qwenbench
  echo "# build_base $(( $(date +%s) - s )) s: QB_BASE_BIN=$QB_BASE_BIN" \
    "(commit $(cat "$QB_BASE_SRC/.qb-commit" 2>/dev/null || echo "unrecorded: put it in \$QB_BASE_SRC/.qb-commit"))"
}
# The options phase's cells: file name, model, quant, inputs, time limit of one binary's run (s). The limits are
# about twice the run's time on an H100 (docs/PERFORMANCE.md speeds, 3 runs of 2048 tokens each, plus loading).
OPTIONS_CELLS=(
  "qb7_bf16 qwen2.5-7b bf16 1,30720 170"
  "qb05_bf16 qwen2.5-0.5b bf16 1 60"
  "qb7_gptq-int4 qwen2.5-7b gptq-int4 1 90"
  "qb7_gptq-int8 qwen2.5-7b gptq-int8 1 100"
)
phase_options() { # before/after on the same card: $QB_BASE_BIN vs build-gpu/qwenbench, both with every default
  if [ -z "${QB_BASE_BIN:-}" ] || [ ! -x "$QB_BASE_BIN" ]; then
    echo "# options: QB_BASE_BIN='${QB_BASE_BIN:-}' is not an executable qwenbench (phase build_base makes one)"
    return 1
  fi
  # defaults as defaults: no engine flag for the new binary, and no QB_* variable for either (the old one read
  # its engine choices from QB_* variables)
  local clean=(env) v
  for v in $(compgen -e); do [[ $v == QB_* ]] && clean+=(-u "$v"); done
  local budget=${QB_OPTIONS_BUDGET:-560} spec name model quant inputs lim side bin names=()
  for spec in "${OPTIONS_CELLS[@]}"; do
    read -r name model quant inputs lim <<< "$spec"
    if [ $(( $(date +%s) - T0 + 2 * lim )) -gt "$budget" ]; then
      echo "# options $name: not run (needs up to $(( 2 * lim )) s;" \
        "$(( budget - ($(date +%s) - T0) )) s of QB_OPTIONS_BUDGET=$budget left)"
      continue
    fi
    names+=("$name")
    for side in base new; do # the old binary first, then the new one, cell by cell: the same card and warmth
      bin=$QB_BASE_BIN; [ $side = new ] && bin=./build-gpu/qwenbench
      rm -f "$OUT/files/${name}_$side.h5"
      TAILN=3 step ${name}_$side $lim "${clean[@]}" "$bin" --backend cuda --model $model --quant $quant \
        --context-lengths $inputs --generate-length 2048 --repetitions 2 --warmup 1 --out "$OUT/files/${name}_$side.h5"
    done
  done
  python3 - "$(dirname "${BASH_SOURCE[0]}")/.." "$OUT/files" "${names[@]}" <<'PY'
import math, os, sys
sys.path.insert(0, sys.argv[1])
import h5py
from compare_tokens import compare

def text(v):
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)

def cells(path):  # label -> cell row (None when the file is missing or unreadable)
    try:
        with h5py.File(path, "r") as f:
            rows = f["cells"][()]
    except Exception:
        return None
    return {f"{text(r['model'])} {text(r['quant'])} input {int(r['context_len'])}": r for r in rows}

def speed(r):
    if r is None: return "not run"
    if text(r["status"]) != "VALID": return text(r["status"])
    return f"{r['speed_mean']:.2f} ± {r['speed_std']:.2f}"

d, names = sys.argv[2], sys.argv[3:]
print("| cell | base tok/s | new tok/s | new/base | tokens equal |")
print("|---|---|---|---|---|")
for name in names:
    b, n = f"{d}/{name}_base.h5", f"{d}/{name}_new.h5"
    cb, cn = cells(b), cells(n)
    if cb is None or cn is None:
        print(f"| {name} | {'unreadable' if cb is None else 'ok'} | {'unreadable' if cn is None else 'ok'} | | |")
        continue
    try:
        verdicts = dict(compare(b, n))
    except Exception as e:
        verdicts = {}
    for label in sorted(set(cb) | set(cn), key=lambda k: (k.split()[0], int(k.split()[-1]))):
        rb, rn = cb.get(label), cn.get(label)
        ratio = ""
        if rb is not None and rn is not None and rb["speed_mean"] > 0 and math.isfinite(rn["speed_mean"]):
            ratio = f"{rn['speed_mean'] / rb['speed_mean']:.3f}"
        print(f"| {label} | {speed(rb)} | {speed(rn)} | {ratio} | {verdicts.get(label, 'not compared')} |")
print("\n# the new files' engine_choices:")
for name in names:
    for label, r in (cells(f"{d}/{name}_new.h5") or {}).items():
        print(f"{label}: {text(r['engine_choices'])}")
PY
}
for mode in "${@:-check}"; do
  case $mode in
    quant) phase_quant ;;
    build_base|options) phase_$mode || failed=1 ;;
    validity) phase_validity ;;
    tests|check|bench|long|peer) phase_$mode ;;
    gpu_tests) phase_gpu_tests || failed=1 ;;
    *) echo "unknown phase $mode"; exit 2 ;;
  esac
done
tar -C "$OUT" -czf "$OUT/files.tgz" files && rm -rf "$OUT/files"
echo "# total $(( $(date +%s) - T0 )) s"
exit ${failed:-0}
