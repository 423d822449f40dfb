# tests/decode_fusion.cmake - the fused decode GEMVs (--decode-fusion) against the CPU reference (built only with
# CUDA; prints "skipped: no GPU" and exits 77 without one). `--quick`: the 0.5B and 1.5B shapes plus the awkward
# sizes; tests/device/decode_fusion.sh runs all seven sizes and the benchmark (--bench) on the GPU machine.
if(QB_HAVE_CUDA)
  qb_add_c_test(test_decode_fusion test_decode_fusion.c)
  add_test(NAME decode_fusion COMMAND test_decode_fusion --quick)
  set_tests_properties(decode_fusion PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
