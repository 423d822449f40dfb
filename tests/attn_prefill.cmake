# tests/attn_prefill.cmake - the prefill attention kernels vs the CPU reference, and their micro-benchmark
# (tests/device_attn_prefill.sh runs both on the GPU machine). Exits 77 (skipped) where no GPU is visible.
if(QB_HAVE_CUDA)
  qb_add_c_test(test_cuda_attn_prefill test_cuda_attn_prefill.c)
  add_test(NAME cuda_attn_prefill COMMAND test_cuda_attn_prefill --check)
  set_tests_properties(cuda_attn_prefill PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
