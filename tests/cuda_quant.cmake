# tests/cuda_quant.cmake - the CUDA engine on GPTQ / AWQ weights against the CPU engine (built only with CUDA;
# prints "skipped: no GPU" and exits 77 without one). The quantized fixture checkpoints are the ones
# tests/quant.cmake makes at test time (fixture qb_quant_fixtures, needs python3 with numpy); without python3
# only the random-weight cases run.
if(QB_HAVE_CUDA)
  qb_add_c_test(test_cuda_quant_engine test_cuda_quant_engine.c)
  find_program(QB_CUDA_QUANT_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(QB_CUDA_QUANT_PYTHON3)
    add_test(NAME cuda_quant_engine COMMAND test_cuda_quant_engine ${QB_FIXTURE_DIR} ${CMAKE_BINARY_DIR}/quant_fixtures)
    set_tests_properties(cuda_quant_engine PROPERTIES FIXTURES_REQUIRED qb_quant_fixtures)
  else()
    add_test(NAME cuda_quant_engine COMMAND test_cuda_quant_engine ${QB_FIXTURE_DIR})
  endif()
  set_tests_properties(cuda_quant_engine PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
