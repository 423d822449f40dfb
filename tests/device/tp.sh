#!/bin/bash
# tests/device/tp.sh - what one call on a multi-GPU machine (2 or 4 GPUs) runs for tensor parallelism (not a ctest
# test; the device tool runs it from the repository root, carrying .carry/jansson for the jansson headers).
#   bash tests/device/tp.sh PHASE...      phases run in order after one build; default: allreduce tp7 faults big
#   allreduce  all-reduce latency at 2-16 KB for nccl and ipc-oneshot on 2 GPUs and on all GPUs (NCCL's symmetric
#              windows: dev/comm, the lab)
#   tp7        7B BF16 input 1 (2048 generated): TP1 tokens, then TP2 (and TP4 on 4 GPUs) with each all-reduce
#              implementation; generated tokens compared with TP1
#   faults     qwenbench itself on 2 GPUs: one rank killed in its second cell, then one rank hung (the NCCL
#              watchdog); the job must end non-zero, quickly, with the first cell kept in the results file
#   big        32B BF16 at TP2 (inputs 1, 30720) and TP4 (input 1); 72B BF16 at TP4 (inputs 1, 6144, 30720)
#   quant      quantized fixture checkpoints at TP2 (--check reference), 7B GPTQ-Int4 at TP1 and TP2 (tokens
#              compared), 72B GPTQ-Int4 and AWQ at TP2, input 1, and 72B GPTQ-Int4 unfused (--decode-fusion none)
#   long       32B BF16 and 72B GPTQ-Int4 at TP2, inputs 63488 and 129024 (issue 8)
#   formats    7B in bf16, gptq-int4, gptq-int8 and awq on one GPU, input 1
#   xchg       the decode's residual exchange (kernels/comm/tp_exchange.cuh): its kernel test on one GPU, the bf16 fixture
#              checkpoint at TP2 (--check reference), then 7B BF16 (tokens vs TP1), 32B BF16 and 72B GPTQ-Int4 at
#              TP2, input 1, each with the exchange and without (--tp-exchange on / off)
#   x4         4 GPUs: 7B BF16 TP4 with and without the exchange (tokens vs TP1), 72B BF16 TP4 input 1
#   slices     7B and 32B with half the heads, intermediate size and vocabulary on one GPU: TP2 without communication
# Everything goes to $OUT/tp.log (a one-line summary of every results file included); results files to $OUT/h5.tgz.
# $QB_TP_BUDGET (seconds, default 570) stops starting new steps once the call's time is nearly spent.
# $TP7_IMPLS (default "nccl ipc-oneshot", values of --allreduce; NAME+2step runs it with --allreduce-norm two-step,
# the others with fused) and $BIG_INPUTS (default 1,30720) narrow tp7 and big; $BIG_2STEP=1 adds 32B TP2 input 1
# with --allreduce-norm two-step. The engine's choices are flags; the fault steps run the test build
# build-gpu/tests/qwenbench-testhooks, the only one that reads QWENBENCH_TEST_FAULT.
# Before the call, here: run it from a committed snapshot, so that uncommitted edits never reach a measurement
# and the results files record the build commit (the device copy has no git history):
#   rm -rf .snap && mkdir .snap && git archive HEAD | tar -x -C .snap && git rev-parse --short=12 HEAD > .snap/.qb-commit
#   cp -r .carry .snap/      (then: carry [".snap"], command: mkdir -p build-snap && cd .snap && ln -sfn ../build-snap build-gpu && bash tests/...)
set -o pipefail
OUT=${OUT:-$PWD/out}
H5=$OUT/h5
mkdir -p "$OUT" "$H5"
export NCCL_NVLS_ENABLE=0 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PYTHONUNBUFFERED=1
exec > >(tee -a "$OUT/tp.log") 2>&1
T0=$(date +%s)
BUDGET=${QB_TP_BUDGET:-570}
NGPU=$(nvidia-smi -L | wc -l)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
nvidia-smi topo -m
date -u
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DJANSSON_ROOT=$PWD/.carry/jansson \
  > "$OUT/build.log" 2>&1 &&
cmake --build build-gpu -j32 --target qwenbench qwenbench-testhooks bench_allreduce test_tp_exchange >> "$OUT/build.log" 2>&1 ||
  { tail -40 "$OUT/build.log"; exit 1; }
echo "# build $(( $(date +%s) - T0 )) s, $NGPU GPUs"
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
step() { # name timeout command...: skipped when the call's budget cannot cover the timeout
  local name=$1 lim=$2; shift 2
  if [ "$(left)" -lt "$lim" ]; then echo "### $name SKIPPED: $(left) s left, needs up to $lim s"; return 99; fi
  echo "### $name (at $(( $(date +%s) - T0 )) s): $*"
  timeout "$lim" "$@"
  local rc=$?
  echo "### $name rc=$rc (at $(( $(date +%s) - T0 )) s)"
  return $rc
}
MPI="mpirun --bind-to none -np" # one node: the ranks inherit the environment (QWENBENCH_TEST_FAULT)
QB=./build-gpu/qwenbench
QB_HOOKS=./build-gpu/tests/qwenbench-testhooks # the test build (tests/e2e.cmake): fault injection
R="--backend cuda --generate-length 2048 --repetitions 1 --warmup 0"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # expect_from
compare_tokens() { # two results files: how many generated tokens of the first cell agree
  python3 - "$@" <<'PY'
import sys, h5py
t = [h5py.File(p)["generated_tokens"][()][:2048].tolist() for p in sys.argv[1:]]
s = next((i for i, (a, b) in enumerate(zip(*t)) if a != b), len(t[0]))
print(f"# {sys.argv[2]} vs {sys.argv[1]}: first {s} of {len(t[0])} generated tokens equal")
PY
}
summary() { # results file -> one line per cell
  python3 - "$@" <<'PY'
import sys, h5py
for p in sys.argv[1:]:
    try:
        c = h5py.File(p)["cells"][()]
    except Exception as e:
        print(f"# {p}: {e}"); continue
    for r in c:
        d = lambda k: r[k].decode() if isinstance(r[k], bytes) else r[k]
        print(f"# {d('model')} {d('quant')} tp{r['tp_size']} input {r['context_len']}: {d('status')} "
              f"{r['speed_mean']:.2f} tok/s ttft {r['ttft_s_mean']:.3f} s mem {r['peak_mem_total_gib']:.2f} GiB "
              f"{d('reason')[:120]} | {d('checks')[:300]}")
PY
}
onoff() { [ "$1" = 1 ] && echo on || echo off; } # 1 / 0 (the steps' and files' names) -> --tp-exchange value
phase_allreduce() {
  step allreduce_2 100 $MPI 2 ./build-gpu/tests/bench_allreduce
  [ "$NGPU" -ge 4 ] && step allreduce_$NGPU 120 $MPI "$NGPU" ./build-gpu/tests/bench_allreduce
}
tp1_7b_reference() { # 7B BF16 TP1 input 1 once per call: the tokens TP2/TP4 record agreement with (top-5 rule)
  [ -f "$H5/tp1_7b.json" ] && return 0
  step tp1_7b 60 $MPI 1 $QB $R --model qwen2.5-7b --tp 1 --context-lengths 1 --out "$H5/tp1_7b.h5"
  summary "$H5/tp1_7b.h5"
  expect_from "$H5/tp1_7b.h5" "qwenbench TP1" > "$H5/tp1_7b.json"
}
phase_tp7() {
  tp1_7b_reference
  local n impl
  step tp2_7b_unfused 60 $MPI 2 $QB $R --decode-fusion none --model qwen2.5-7b --tp 2 --context-lengths 1 \
    --out "$H5/tp2_7b_unfused.h5" && summary "$H5/tp2_7b_unfused.h5"
  for n in 2 4; do
    [ "$NGPU" -ge $n ] || continue
    for impl in ${TP7_IMPLS:-nccl ipc-oneshot}; do # NAME+2step: --allreduce-norm two-step
      local norm=fused; [ "${impl%+2step}" != "$impl" ] && norm=two-step
      step tp${n}_7b_$impl 60 $MPI $n $QB $R --allreduce ${impl%+2step} --allreduce-norm $norm --model qwen2.5-7b \
        --tp $n --context-lengths 1 --expect-tokens "$H5/tp1_7b.json" --out "$H5/tp${n}_7b.h5" --overwrite &&
        summary "$H5/tp${n}_7b.h5" && compare_tokens "$H5/tp1_7b.h5" "$H5/tp${n}_7b.h5"
    done
  done
}
phase_faults() {
  local f=$OUT/fault.h5
  rm -f "$f"
  QWENBENCH_TEST_FAULT=kill:1:1 step kill_rank 90 $MPI 2 $QB_HOOKS $R --model qwen2.5-7b --tp 2 --context-lengths 1,6 \
    --generate-length 256 --deadline 20 --out "$f"
  echo "# killed rank: exit above must be non-zero; cells kept:"; summary "$f"
  rm -f "$f"
  QWENBENCH_TEST_FAULT=hang:1:1 step hang_rank 120 $MPI 2 $QB_HOOKS $R --model qwen2.5-7b --tp 2 --context-lengths 1,6 \
    --generate-length 256 --deadline 20 --out "$f"
  echo "# hung rank: exit above must be non-zero; cells kept:"; summary "$f"
  rm -f "$f"
}
phase_big() {
  step tp2_32b 200 $MPI 2 $QB $R --model qwen2.5-32b --tp 2 --context-lengths ${BIG_INPUTS:-1,30720} --out "$H5/big.h5"
  [ -n "$BIG_2STEP" ] && step tp2_32b_2step 90 $MPI 2 $QB $R --allreduce-norm two-step --model qwen2.5-32b --tp 2 \
    --context-lengths 1 --out "$H5/big_2step.h5" && summary "$H5/big_2step.h5"
  [ "$NGPU" -ge 4 ] || { summary "$H5/big.h5"; return 0; }
  step tp4_32b 90 $MPI 4 $QB $R --model qwen2.5-32b --tp 4 --context-lengths 1 --out "$H5/tp4_32b.h5"
  step tp4_72b 240 $MPI 4 $QB $R --model qwen2.5-72b --tp 4 --context-lengths 1,6144,30720 --out "$H5/tp4_72b.h5"
  summary "$H5/big.h5" "$H5/tp4_32b.h5" "$H5/tp4_72b.h5"
}
phase_quant() {
  local Q="$R --context-lengths 1" QFIX=build-gpu/quant_fixtures v
  # quantized checkpoints (made from the tiny fixtures) at TP2 on CUDA, checked against the CPU reference engine
  if python3 tests/make_quant_fixtures.py --fixtures tests/fixtures --out $QFIX > /dev/null 2>&1; then
    for v in gptq-int4-real gptq-int8-real awq-real; do
      step tp2_ckpt_$v 60 $MPI 2 $QB --backend cuda --model $QFIX/gqa_untied-$v --tp 2 --context-lengths 1,9 \
        --generate-length 16 --repetitions 1 --warmup 0 --check reference:8 --out "$H5/ckpt_tp2_$v.h5" &&
        summary "$H5/ckpt_tp2_$v.h5"
    done
  else
    echo "# quantized fixtures not made (numpy?): no checkpoint runs"
  fi
  step tp1_7b_int4 60 $MPI 1 $QB $Q --quant gptq-int4 --model qwen2.5-7b --tp 1 --out "$H5/q7_tp1.h5"
  step tp2_7b_int4 60 $MPI 2 $QB $Q --quant gptq-int4 --model qwen2.5-7b --tp 2 --out "$H5/q7_tp2.h5"
  compare_tokens "$H5/q7_tp1.h5" "$H5/q7_tp2.h5"
  summary "$H5/q7_tp1.h5" "$H5/q7_tp2.h5"
  step tp2_72b_int4 150 $MPI 2 $QB $Q --quant gptq-int4 --model qwen2.5-72b --tp 2 --out "$H5/q72.h5"
  step tp2_72b_awq 150 $MPI 2 $QB $Q --quant awq --model qwen2.5-72b --tp 2 --out "$H5/q72awq.h5"
  step tp2_72b_int4_unfused 150 $MPI 2 $QB $Q --decode-fusion none --quant gptq-int4 --model qwen2.5-72b --tp 2 \
    --out "$H5/q72_unfused.h5"
  summary "$H5/q72.h5" "$H5/q72awq.h5" "$H5/q72_unfused.h5"
}
phase_formats() { # 7B in every format on one GPU, input 1 (the quantized table of docs/PERFORMANCE.md)
  local q
  for q in bf16 gptq-int4 gptq-int8 awq; do
    step tp1_7b_$q 60 $MPI 1 $QB $R --quant $q --model qwen2.5-7b --tp 1 --context-lengths 1 --out "$H5/f7_$q.h5"
  done
  summary "$H5"/f7_*.h5
}
phase_long() { # issue 8's multi-GPU cells: 32B BF16 and 72B GPTQ-Int4 at TP2, inputs 63488 and 129024
  step tp2_32b_long 280 $MPI 2 $QB $R --model qwen2.5-32b --tp 2 --context-lengths 63488,129024 --out "$H5/long.h5"
  step tp2_72b_int4_long 300 $MPI 2 $QB $R --quant gptq-int4 --model qwen2.5-72b --tp 2 --context-lengths 63488,129024 \
    --out "$H5/long72.h5"
  summary "$H5/long.h5" "$H5/long72.h5"
}
phase_xchg() {
  step tp_exchange_kernels 180 ./build-gpu/tests/test_tp_exchange
  step tp2_ckpt_bf16 60 $MPI 2 $QB --backend cuda --model tests/fixtures/gqa_untied --tp 2 --context-lengths 1,9 \
    --generate-length 16 --repetitions 1 --warmup 0 --check reference:8 --out "$H5/ckpt_tp2_bf16.h5" &&
    summary "$H5/ckpt_tp2_bf16.h5"
  tp1_7b_reference
  local x
  for x in 1 0; do
    step tp2_7b_xchg$x 60 $MPI 2 $QB $R --tp-exchange $(onoff $x) --model qwen2.5-7b --tp 2 --context-lengths 1 \
      --expect-tokens "$H5/tp1_7b.json" --out "$H5/x7_$x.h5" && compare_tokens "$H5/tp1_7b.h5" "$H5/x7_$x.h5"
  done
  for x in 1 0; do
    step tp2_32b_xchg$x 90 $MPI 2 $QB $R --tp-exchange $(onoff $x) --model qwen2.5-32b --tp 2 --context-lengths 1 \
      --out "$H5/x32_$x.h5"
  done
  for x in 1 0; do
    step tp2_72b_int4_xchg$x 150 $MPI 2 $QB $R --tp-exchange $(onoff $x) --quant gptq-int4 --model qwen2.5-72b --tp 2 \
      --context-lengths 1 --out "$H5/x72q_$x.h5"
  done
  summary "$H5"/tp1_7b.h5 "$H5"/x7_*.h5 "$H5"/x32_*.h5 "$H5"/x72q_*.h5
}
phase_x4() { # 4 GPUs: 7B BF16 TP4 with the exchange forced on and off (tokens vs TP1), 72B BF16 TP4 input 1
  tp1_7b_reference
  local x
  for x in 1 0; do
    step tp4_7b_xchg$x 60 $MPI 4 $QB $R --tp-exchange $(onoff $x) --model qwen2.5-7b --tp 4 --context-lengths 1 \
      --expect-tokens "$H5/tp1_7b.json" --out "$H5/x4_7_$x.h5"
  done
  step tp4_72b 150 $MPI 4 $QB $R --model qwen2.5-72b --tp 4 --context-lengths 1 --out "$H5/x4_72.h5"
  summary "$H5"/tp1_7b.h5 "$H5"/x4_*.h5
}
phase_slices() { # one GPU running what one rank of TP2 reads (7B and 32B with half the heads, the intermediate size
  # and the vocabulary): the speed TP2 would have with free communication
  local cfg=$OUT/slice_cfg
  mkdir -p "$cfg" && cp configs/models/*.json "$cfg"/
  python3 - "$cfg" <<'PY'
import json, sys
d = sys.argv[1]
for name, src in (("slice-7b-tp2", "qwen2.5-7b"), ("slice-32b-tp2", "qwen2.5-32b")):
    c = json.load(open(f"{d}/{src}.json"))
    c["head_dim"] = c["hidden_size"] // c["num_attention_heads"]
    for k in ("num_attention_heads", "num_key_value_heads", "intermediate_size", "vocab_size"):
        c[k] //= 2
    json.dump(c, open(f"{d}/{name}.json", "w"))
PY
  local m
  for m in slice-7b-tp2 slice-32b-tp2; do
    QWENBENCH_CONFIG_DIR=$cfg step tp1_$m 90 $MPI 1 $QB $R --model $m --tp 1 --context-lengths 1 --out "$H5/$m.h5"
  done
  summary "$H5"/slice-*.h5
}
for phase in ${@:-allreduce tp7 faults big}; do
  case $phase in
    allreduce|tp7|faults|big|quant|long|formats|xchg|slices|x4) phase_$phase ;;
    *) echo "unknown phase $phase"; exit 2 ;;
  esac
done
tar -C "$OUT" -czf "$OUT/h5.tgz" h5 && rm -rf "$H5"
echo "# total $(( $(date +%s) - T0 )) s"
