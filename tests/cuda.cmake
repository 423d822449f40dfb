# tests/cuda.cmake - the CUDA engine's tests (built only with CUDA). Each prints "skipped: no GPU" and exits
# 77 (ctest reports it as skipped) where no GPU is visible, as on the developer and CI machines.
if(QB_HAVE_CUDA)
  qb_add_c_test(test_cuda_kernels test_cuda_kernels.c)
  add_test(NAME cuda_kernels COMMAND test_cuda_kernels)
  set_tests_properties(cuda_kernels PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)

  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_cuda_engine.c)
    qb_add_c_test(test_cuda_engine test_cuda_engine.c)
    add_test(NAME cuda_engine COMMAND test_cuda_engine ${QB_FIXTURE_DIR})
    set_tests_properties(cuda_engine PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
    # The same comparison with engine options (the unfused decode without PDL); the options are parsed before the
    # GPU check, so a bad one is refused with one line and exit 2 on any machine.
    add_test(NAME cuda_engine_options COMMAND test_cuda_engine ${QB_FIXTURE_DIR} --decode-fusion none --pdl off)
    set_tests_properties(cuda_engine_options PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
    add_test(NAME cuda_engine_bad_option COMMAND sh -c "\"$1\" \"$2\" --decode-fusion sometimes; echo \"exit $?\""
             sh $<TARGET_FILE:test_cuda_engine> ${QB_FIXTURE_DIR})
    set_tests_properties(cuda_engine_bad_option PROPERTIES
                         PASS_REGULAR_EXPRESSION "--decode-fusion: unknown value 'sometimes' [^\n]*\nexit 2")
  endif()

  # Not a test: the decode GEMV against cuBLAS and the copy bandwidth, for docs/PERFORMANCE.md.
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_cuda_gemv_bench.c)
    qb_add_c_test(test_cuda_gemv_bench test_cuda_gemv_bench.c)
    target_link_libraries(test_cuda_gemv_bench PRIVATE CUDA::cublas)
  endif()
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_cuda_bench.c)
    qb_add_c_test(test_cuda_bench test_cuda_bench.c)
  endif()
endif()

# qwenbench vs transformers on the same safetensors (first 32 greedy tokens, top-5 rule); GPU machine only.
if(QB_HAVE_CUDA)
  add_test(NAME cuda_peer_tokens COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_cuda_peer_tokens.sh
           $<TARGET_FILE:qwenbench> ${CMAKE_SOURCE_DIR})
  set_tests_properties(cuda_peer_tokens PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900)
endif()

# compare_tokens.py (the generated tokens of two results files, for tests/device/cuda.sh's `options` phase) on
# small files written by the test; runs everywhere.
add_test(NAME compare_tokens COMMAND ${QB_TEST_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_compare_tokens.py)
set_tests_properties(compare_tokens PROPERTIES TIMEOUT 120)
