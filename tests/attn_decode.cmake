# tests/attn_decode.cmake - the split-KV decode attention kernels (kernels/attention/attention_decode.cuh).
# attn_decode_fragments (CPU, always): a numpy model of the tensor-core kernel's per-lane fragment indices against
# exact attention (needs python3-numpy under QB_TEST_PYTHON).
# cuda_attn_decode (CUDA builds): the product's split kernel against the CPU reference on the Qwen2.5 head shapes;
# prints "skipped: no GPU" and exits 77 (skipped) where no GPU is visible. The lab's old kernel and the benchmark
# (old vs new) run from dev/ (dev_attention_decode, CTest lab_attention_decode; tests/device/attn_decode.sh).
add_test(NAME attn_decode_fragments COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/test_attn_decode_fragments.py)
set_tests_properties(attn_decode_fragments PROPERTIES ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1" TIMEOUT 120)
if(QB_HAVE_CUDA)
  qb_add_c_test(test_cuda_attn_decode test_cuda_attn_decode.c)
  add_test(NAME cuda_attn_decode COMMAND test_cuda_attn_decode --check)
  set_tests_properties(cuda_attn_decode PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
