# tests/attn_prefill.cmake - the product's prefill attention kernels (fa2, wg at head_dim 64, wgp) vs the CPU
# reference, and their micro-benchmark (tests/device/attn_prefill.sh runs both on the GPU machine; the lab's old and
# wg128 kernels run from dev/, dev_attention_prefill). First, without a GPU too: the automatic rule and the refusals
# (wg at head_dim 128, unknown variants); then exits 77 (skipped) where no GPU is visible.
if(QB_HAVE_CUDA)
  qb_add_c_test(test_cuda_attn_prefill test_cuda_attn_prefill.c)
  add_test(NAME cuda_attn_prefill COMMAND test_cuda_attn_prefill --check)
  set_tests_properties(cuda_attn_prefill PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
