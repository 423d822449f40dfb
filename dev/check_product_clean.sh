#!/bin/sh
# check_product_clean.sh - the kernel lab stays out of the product (CTest lab_not_in_product, dev/CMakeLists.txt):
#   1. the release binary holds none of the lab's kernels or launchers (nm);
#   2. the kernel files of the moved variants read no environment variable (the engine's choices are options).
# Usage: check_product_clean.sh <qwenbench binary> <kernels dir>. Exit 0 clean, 1 with each offender named.
bin=$1
kdir=$2
if [ ! -f "$bin" ] || [ ! -d "$kdir" ]; then
  echo "usage: $0 <qwenbench binary> <kernels dir>" >&2
  exit 2
fi
rc=0
lab_symbols='qb_lab_|qb_gemv_q_tc_async_kernel|qb_attn_prefill_old_kernel|qb_attn_prefill_wg_kernel<128>|qb_attn_decode_split_kernel'
found=$(nm -C "$bin" | grep -E "$lab_symbols" | head -5)
if [ -n "$found" ]; then
  echo "FAIL: lab kernels linked into $bin:"
  echo "$found"
  rc=1
fi
for f in attention/attention_prefill.cu attention/attention_prefill_wg.cu attention/attention_prefill_wg_kernels.cuh \
         attention/attention_prefill_mma.cuh attention/attention_decode.cu linear/gemv_quant.cu linear/gemv.cu; do
  if grep -n 'getenv' "$kdir/$f"; then
    echo "FAIL: $kdir/$f reads the environment (getenv)"
    rc=1
  fi
done
[ $rc -eq 0 ] && echo "product clean: no lab kernel in $(basename "$bin"), no getenv in the moved variants' kernel files"
exit $rc
