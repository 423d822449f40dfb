#!/bin/bash
# device_attn_prefill.sh - what one call on the GPU machine runs for the prefill attention kernels (not a ctest
# test; run from the repository root): builds test_cuda_attn_prefill, runs its correctness check (every kernel
# variant vs the CPU reference; exits non-zero on a failure), its micro-benchmark (old vs fa2 in one process),
# then PyTorch's scaled_dot_product_attention at the same shapes as the peer figure (if torch imports).
# Logs: $OUT/attn_prefill.log (test program), $OUT/attn_prefill_torch.log (peer). Summary on stdout.
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.max.sm,driver_version --format=csv,noheader
if [ ! -f build-gpu/CMakeCache.txt ]; then
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DJANSSON_ROOT=$PWD/.carry/jansson \
    > "$OUT/attn_prefill.log" 2>&1 || { tail -20 "$OUT/attn_prefill.log"; exit 1; }
fi
cmake --build build-gpu -j16 --target test_cuda_attn_prefill >> "$OUT/attn_prefill.log" 2>&1 ||
  { tail -30 "$OUT/attn_prefill.log"; exit 1; }
echo "# build $(( $(date +%s) - T0 )) s"

timeout 80 build-gpu/test_cuda_attn_prefill --check --bench > /tmp/attn_prefill_run.log 2>&1
rc=$?
cat /tmp/attn_prefill_run.log >> "$OUT/attn_prefill.log"
grep -v '^$' /tmp/attn_prefill_run.log | head -45
echo "# test_cuda_attn_prefill rc=$rc at $(( $(date +%s) - T0 )) s"

if python3 -c "import torch" 2>/dev/null; then
  timeout 40 python3 - > "$OUT/attn_prefill_torch.log" 2>&1 <<'EOF'
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
for name, hq, hkv, hd in [("7B", 28, 4, 128), ("0.5B", 14, 2, 64), ("72B/tp8", 8, 1, 128)]:
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
            print(f"torch sdpa {name:8s} {hq:2d}/{hkv}/{hd:3d} n={n:5d} start={start:6d} | {t*1e3:8.3f} ms {flops/t/1e12:4.0f} TF/s")
        except Exception as e:
            print(f"torch sdpa {name:8s} n={n} start={start}: n/a ({type(e).__name__}: {str(e)[:80]})")
        del q, k, v
        torch.cuda.empty_cache()
EOF
  echo "# torch peer rc=$? at $(( $(date +%s) - T0 )) s"
  grep -v '^$' "$OUT/attn_prefill_torch.log" | head -16
else
  echo "# torch not importable: no peer figure"
fi
exit $rc
