#!/bin/bash
# tests/device/attn_prefill.sh - what one call on the GPU machine runs for the prefill attention kernels (not a ctest
# test; run from the repository root): builds test_cuda_attn_prefill (the product's kernels) and the kernel lab's
# dev_attention_prefill (dev/: plus the lab's old kernel and wg at head_dim 128); runs the product's correctness
# check (each kernel vs the CPU reference) and micro-benchmark for fa2, wg (head_dim 64) and wgp in one process;
# the lab's fa2 vs old in a second, the lab's known-wrong wg128 (check only, reported, not counted) in a third;
# then PyTorch's scaled_dot_product_attention at the same shapes as the peer figure (if torch imports).
# Exit 0: the product's kernels correct; 1: one of them failed (or the build); 3: only the lab's old kernel failed.
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
cmake --build build-gpu -j16 --target test_cuda_attn_prefill dev_attention_prefill >> "$OUT/attn_prefill.log" 2>&1 ||
  { tail -30 "$OUT/attn_prefill.log"; exit 1; }
echo "# build $(( $(date +%s) - T0 )) s"

summary() { # log max_lines: the passing check lines counted, everything else as is
  echo "check: $(grep -c '^check .* ok$' "$1") check groups ok"
  grep -v '^$' "$1" | grep -v '^check .* ok$' | head -"$2"
}
# 1: the product's kernels (fa2, wg at head_dim 64, wgp): correctness, then speed. Decides the exit status.
timeout 60 build-gpu/tests/test_cuda_attn_prefill --check --bench --variants fa2,wg,wgp > /tmp/attn_prefill_run.log 2>&1
rc=$?
cat /tmp/attn_prefill_run.log >> "$OUT/attn_prefill.log"
summary /tmp/attn_prefill_run.log 22
echo "# test_cuda_attn_prefill fa2,wg,wgp rc=$rc at $(( $(date +%s) - T0 )) s"
# 2: the lab's first kernel (old) against fa2, in its own process (a crash there cannot hide the results above).
timeout 40 build-gpu/dev/dev_attention_prefill --check --bench --variants fa2,old > /tmp/attn_prefill_lab.log 2>&1
rc_lab=$?
{ echo "==== lab: variants fa2,old"; cat /tmp/attn_prefill_lab.log; } >> "$OUT/attn_prefill.log"
summary /tmp/attn_prefill_lab.log 20
echo "# dev_attention_prefill fa2,old rc=$rc_lab at $(( $(date +%s) - T0 )) s"
# 3: the lab's known-wrong wg at head_dim 128: its check result is reported, never counted.
timeout 20 build-gpu/dev/dev_attention_prefill --check --variants wg128 > /tmp/attn_prefill_wg128.log 2>&1
rc_wg128=$?
{ echo "==== lab: wg128 (known wrong)"; cat /tmp/attn_prefill_wg128.log; } >> "$OUT/attn_prefill.log"
n_fail=$(grep -c '^FAIL' /tmp/attn_prefill_wg128.log)
echo "# dev_attention_prefill wg128 (known wrong) rc=$rc_wg128 at $(( $(date +%s) - T0 )) s: $n_fail FAIL lines"

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
# exit: 0 the product's kernels passed; 1 one of them failed; 3 only the lab's old kernel failed
[ $rc -ne 0 ] && exit 1
[ $rc_lab -ne 0 ] && exit 3
exit 0
