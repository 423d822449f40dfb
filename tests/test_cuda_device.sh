#!/bin/bash
# test_cuda_device.sh - what one call on the GPU machine runs for the CUDA engine (not a ctest test; the device
# tool runs it from the repository root). Logs and results under $OUT (default ./out).
#   bash tests/test_cuda_device.sh tests    build, kernel + engine tests, GEMV/attention micro-benchmark
#   bash tests/test_cuda_device.sh check    tests, then short qwenbench runs
#   bash tests/test_cuda_device.sh bench    the benchmark of docs/PERFORMANCE.md: qwenbench 0.5B and 7B BF16 at
#                                           inputs 1, 6144, 30720 (2048 generated, 3 repetitions, no warm-up as in
#                                           the seed protocol)
#   bash tests/test_cuda_device.sh peer     the transformers peer (compile mode on every bench cell, then eager at
#                                           input 1) as far as the call's time allows; tokens checked against the
#                                           bench files when they are there
#   bash tests/test_cuda_device.sh long     7B BF16 at inputs 63488 and 129024 (issue 8)
#   bash tests/test_cuda_device.sh quant    build, the quantized engine test (random GPTQ-Int4/Int8/AWQ weights and the
#                                           quantized fixture checkpoints vs the CPU engine), the fused quantized
#                                           decode GEMVs vs the unfused kernels (all shapes, then --bench), the bf16
#                                           engine test, then qwenbench 7B at input 1 (2048 generated, 1 repetition)
#                                           in bf16, gptq-int4, gptq-int8 and awq on the same card
#                                           (docs/PERFORMANCE.md), and Int4 / Int8 unfused (QB_DECODE_FUSION=0)
#                                           with the fused runs' tokens compared to the unfused ones, and Int4
#                                           fused on the row layout (QB_QUANT_LAYOUT=rows)
#   bash tests/test_cuda_device.sh validity build, then for 0.5B and 7B: export-weights, transformers runs the exported
#                                           checkpoint and writes its tokens, qwenbench runs the same checkpoint
#                                           with --expect-tokens and the results file records the agreement
# Phases combine: `bash tests/test_cuda_device.sh quant validity` builds once and runs both.
# Needs jansson headers carried in .carry/jansson (apt-get download libjansson-dev; dpkg -x ... .carry/jansson).
# If the engine test fails with programmatic dependent launch, the runs continue with QB_CUDA_PDL=0 and say so.
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
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DJANSSON_ROOT=$PWD/.carry/jansson \
  > "$OUT/files/build.log" 2>&1 &&
cmake --build build-gpu -j16 --target qwenbench test_cuda_kernels test_cuda_engine test_cuda_gemv_bench test_cuda_quant_engine \
  test_decode_fusion test_decode_fusion_quant \
  >> "$OUT/files/build.log" 2>&1 || { tail -30 "$OUT/files/build.log"; exit 1; }
echo "# build $(( $(date +%s) - T0 )) s"
. "$(dirname "${BASH_SOURCE[0]}")/device_lib.sh" # expect_from
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
  TAILN=30 step fusion_quant 200 ./build-gpu/tests/test_decode_fusion_quant --bench
  grep FAIL "$OUT/files/fusion_quant.log" | head -20
  TAILN=4 step engine 120 ./build-gpu/tests/test_cuda_engine tests/fixtures; grep FAIL "$OUT/files/engine.log" | head
  local q
  for q in gptq-int4 gptq-int8; do # the unfused sequence first: its tokens are what the fused run is compared with
    QB_DECODE_FUSION=0 TAILN=6 step qb7_${q}_unfused 75 ./build-gpu/qwenbench --backend cuda --model qwen2.5-7b \
      --quant $q --context-lengths 1 --generate-length 2048 --repetitions 1 --warmup 0 \
      --out "$OUT/files/qb7_${q}_unfused.h5"
    expect_from "$OUT/files/qb7_${q}_unfused.h5" "qwenbench unfused" > "$OUT/files/qb7_${q}_unfused.json"
  done
  QB_QUANT_LAYOUT=rows TAILN=6 step qb7_gptq-int4_rows 75 ./build-gpu/qwenbench --backend cuda --model qwen2.5-7b \
    --quant gptq-int4 --context-lengths 1 --generate-length 2048 --repetitions 1 --warmup 0 \
    --out "$OUT/files/qb7_gptq-int4_rows.h5" # fused GEMVs on the row layout: the tiled layout's gain
  for q in bf16 gptq-int4 gptq-int8 awq; do
    local ex=""
    [ -s "$OUT/files/qb7_${q}_unfused.json" ] && ex="--expect-tokens $OUT/files/qb7_${q}_unfused.json"
    TAILN=6 step qb7_$q 75 ./build-gpu/qwenbench --backend cuda --model qwen2.5-7b --quant $q --context-lengths 1 \
      --generate-length 2048 --repetitions 1 --warmup 0 $ex --out "$OUT/files/qb7_$q.h5"
  done
}
phase_tests() { # kernel + engine tests, GEMV/attention micro-benchmark
  TAILN=3 step kernels 200 ./build-gpu/tests/test_cuda_kernels; grep FAIL "$OUT/files/kernels.log" | head -20
  if ! TAILN=4 step engine 200 ./build-gpu/tests/test_cuda_engine tests/fixtures; then
    grep FAIL "$OUT/files/engine.log" | head
    echo "# engine test failed with PDL on: rerunning with QB_CUDA_PDL=0"
    export QB_CUDA_PDL=0
    TAILN=4 step engine_nopdl 200 ./build-gpu/tests/test_cuda_engine tests/fixtures
  fi
  TAILN=3 step fusion 200 ./build-gpu/tests/test_decode_fusion --quick; grep FAIL "$OUT/files/fusion.log" | head
  TAILN=40 step gemv_bench 120 ./build-gpu/tests/test_cuda_gemv_bench
}
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
    TAILN=6 step peer_$m 240 python3 tests/peer_transformers.py --model $dir --context-lengths 1,37 \
      --generate-length 32 --repetitions 1 --mode eager --out "$OUT/files/peer_$m.json"
    TAILN=12 step expect_$m 120 ./build-gpu/qwenbench --backend cuda --model $dir --context-lengths 1,37 \
      --generate-length 2048 --repetitions 1 --warmup 0 --expect-tokens "$OUT/files/peer_$m.json" \
      --out "$OUT/files/expect_$m.h5"
    ./build-gpu/qwenbench tokens "$OUT/files/expect_$m.h5" 2>&1 | head -20
    rm -rf "$dir"
  done
}
for mode in "${@:-check}"; do
  case $mode in
    quant) phase_quant ;;
    validity) phase_validity ;;
    tests|check|bench|long|peer) phase_$mode ;;
    *) echo "unknown phase $mode"; exit 2 ;;
  esac
done
tar -C "$OUT" -czf "$OUT/files.tgz" files && rm -rf "$OUT/files"
echo "# total $(( $(date +%s) - T0 )) s"
