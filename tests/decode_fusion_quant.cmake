# tests/decode_fusion_quant.cmake - the fused decode GEMVs on quantized weights (kernels/linear/gemv_quant_fused.cu)
# against the unfused quantized kernels (built only with CUDA; exits 77 without a GPU). `--quick`: the small
# shapes with every stage count and the 7B one; tests/device/decode_fusion.sh runs every shape and --bench.
if(QB_HAVE_CUDA)
  qb_add_c_test(test_decode_fusion_quant test_decode_fusion_quant.c)
  add_test(NAME decode_fusion_quant COMMAND test_decode_fusion_quant --quick)
  set_tests_properties(decode_fusion_quant PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
