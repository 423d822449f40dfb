# tests/gemv_quant_bench.cmake - the 4-bit tensor-core decode GEMV (kernels/linear/gemv_quant.cu):
#   gemv_quant_tc_model: a host model of its lane arithmetic and mma fragments vs the direct sum (no GPU needed);
#   test_cuda_gemv_quant_bench (GPU only; exits 77 without one): the product's kernels (the rule, the CUDA-core and
#   the tensor-core kernel) vs a double reference on the Qwen2.5 7B and 72B-TP2 shapes, then their speed. The lab's
#   variants (cp.async, warps by shape) are timed by dev_gemv_quant (dev/; tests/device/gemv_quant.sh).
qb_add_c_test(test_gemv_quant_tc_model test_gemv_quant_tc_model.c)
add_test(NAME gemv_quant_tc_model COMMAND test_gemv_quant_tc_model)
set_tests_properties(gemv_quant_tc_model PROPERTIES TIMEOUT 60)

if(QB_HAVE_CUDA)
  qb_add_c_test(test_cuda_gemv_quant_bench test_cuda_gemv_quant_bench.c)
  add_test(NAME cuda_gemv_quant COMMAND test_cuda_gemv_quant_bench --check-only)
  set_tests_properties(cuda_gemv_quant PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
