#!/bin/bash
# device_attn_prefill.sh - what one call on the GPU machine runs for the prefill attention kernels (not a ctest
# test; run from the repository root): builds test_cuda_attn_prefill; runs its correctness check (each kernel
# variant vs the CPU reference) and micro-benchmark for old vs fa2 (the default) in one process; the same for old
# vs the experimental wgmma kernels (wg, wgp) in a second process; then PyTorch's scaled_dot_product_attention at
# the same shapes as the peer figure (if torch imports).
# Exit 0: all correct; 1: old or fa2 failed (or the build); 3: only wg or wgp failed.
# Logs: $OUT/attn_prefill.log (test program), $OUT/attn_prefill_torch.log (peer). Summary on stdout.
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.max.sm,driver_version --format=csv,noheader
# configure (again, with the cached settings, where build-gpu exists: a tree configured before this test's files
# existed has no target for it yet)
if [ ! -f build-gpu/CMakeCache.txt ]; then
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DJANSSON_ROOT=$PWD/.carry/jansson \
    > "$OUT/attn_prefill.log" 2>&1 || { tail -20 "$OUT/attn_prefill.log"; exit 1; }
else
  cmake -S . -B build-gpu > "$OUT/attn_prefill.log" 2>&1 || { tail -20 "$OUT/attn_prefill.log"; exit 1; }
fi
cmake --build build-gpu -j16 --target test_cuda_attn_prefill >> "$OUT/attn_prefill.log" 2>&1 ||
  { tail -30 "$OUT/attn_prefill.log"; exit 1; }
echo "# build $(( $(date +%s) - T0 )) s"

summary() { # log max_lines: the passing check lines counted, everything else as is
  echo "check: $(grep -c '^check .* ok$' "$1") check groups ok"
  grep -v '^$' "$1" | grep -v '^check .* ok$' | head -"$2"
}
# 1: the fallback (old) and the default (fa2): correctness, then speed. Decides the exit status.
timeout 60 build-gpu/tests/test_cuda_attn_prefill --check --bench --variants old,fa2 > /tmp/attn_prefill_run.log 2>&1
rc=$?
cat /tmp/attn_prefill_run.log >> "$OUT/attn_prefill.log"
summary /tmp/attn_prefill_run.log 22
echo "# test_cuda_attn_prefill old,fa2 rc=$rc at $(( $(date +%s) - T0 )) s"
# 2: the experimental wgmma kernels (wg, wgp) in their own process (a crash there cannot hide the results above).
timeout 40 build-gpu/tests/test_cuda_attn_prefill --check --bench --variants old,wg,wgp > /tmp/attn_prefill_wg.log 2>&1
rc_wg=$?
{ echo "==== variants old,wg,wgp"; cat /tmp/attn_prefill_wg.log; } >> "$OUT/attn_prefill.log"
summary /tmp/attn_prefill_wg.log 20
echo "# test_cuda_attn_prefill old,wg,wgp rc=$rc_wg at $(( $(date +%s) - T0 )) s"

if python3 -c "import torch" 2>/dev/null; then
  timeout 30 python3 - > "$OUT/attn_prefill_torch.log" 2>&1 <<'EOF'
# PyTorch SDPA (its flash backend where it applies) on the same shapes: GQA heads expanded beforehand.
import torch, torch.nn.functional as F
torch.manual_seed(0)
def bench(fn, reps):
    fn(); torch.cuda.synchronize()
    ts = []
    for _ in range(5):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps): fn()
        b.record(); b.synchronize()
        ts.append(a.elapsed_time(b) / 1e3 / reps)
    return sorted(ts)[2]
print("torch", torch.__version__, torch.cuda.get_device_name())
for name, hq, hkv, hd in [("7B", 28, 4, 128), ("0.5B", 14, 2, 64)]:
    for n, start in [(4096, 0), (8192, 0), (16384, 0), (32768, 0), (4096, 126976)]:
        T = start + n
        q = torch.randn(1, hq, n, hd, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, hq, T, hd, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(1, hq, T, hd, device="cuda", dtype=torch.bfloat16)
        flops = 4.0 * hd * hq * (n * start + n * (n + 1) / 2)
        try:
            if start == 0:
                fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                from torch.nn.attention.bias import causal_lower_right
                mask = causal_lower_right(n, T)
                fn = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            reps = max(2, min(32, int(0.03 / (flops / 300e12))))
            t = bench(fn, reps)
            print(f"torch sdpa {name:8s} {hq:2d}/{hkv}/{hd:3d} n={n:5d} start={start:6d} |"
                  f" {t*1e3:8.3f} ms {flops/t/1e12:4.0f} TF/s")
        except Exception as e:
            print(f"torch sdpa {name:8s} n={n} start={start}: n/a ({type(e).__name__}: {str(e)[:80]})")
        del q, k, v
        torch.cuda.empty_cache()
EOF
  echo "# torch peer rc=$? at $(( $(date +%s) - T0 )) s"
  grep -v '^$' "$OUT/attn_prefill_torch.log" | head -12
else
  echo "# torch not importable: no peer figure"
fi
# exit: 0 all passed; 1 the default or fallback kernel failed; 3 only an experimental wgmma kernel (wg, wgp) failed
[ $rc -ne 0 ] && exit 1
[ $rc_wg -ne 0 ] && exit 3
exit 0
