# tests/attn_decode.cmake - the split-KV decode attention kernels (kernels/attention_decode.cuh) against the CPU
# reference on the Qwen2.5 head shapes; built only with CUDA. Prints "skipped: no GPU" and exits 77 (skipped)
# where no GPU is visible. The benchmark half (old vs new kernel) runs from tests/device_attn_decode.sh.
if(QB_HAVE_CUDA)
  qb_add_c_test(test_cuda_attn_decode test_cuda_attn_decode.c)
  add_test(NAME cuda_attn_decode COMMAND test_cuda_attn_decode --check)
  set_tests_properties(cuda_attn_decode PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
