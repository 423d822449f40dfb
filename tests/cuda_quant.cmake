# tests/cuda_quant.cmake - the CUDA engine on GPTQ / AWQ weights against the CPU engine (built only with CUDA;
# prints "skipped: no GPU" and exits 77 without one). The quantized fixture checkpoints are the ones
# tests/quant.cmake makes at test time (fixture qb_quant_fixtures, needs python3 with numpy); without python3
# only the random-weight cases run.
if(QB_HAVE_CUDA)
  qb_add_c_test(test_cuda_quant_engine test_cuda_quant_engine.c)
  # cuda_quant_engine_tiled: the same with --quant-layout tiled (8-bit weights tiled and decoded by the fused GEMVs,
  # which the default keeps for 4 bits)
  if(QB_TEST_PYTHON)
    add_test(NAME cuda_quant_engine COMMAND test_cuda_quant_engine ${QB_FIXTURE_DIR} ${CMAKE_BINARY_DIR}/quant_fixtures)
    add_test(NAME cuda_quant_engine_tiled COMMAND test_cuda_quant_engine ${QB_FIXTURE_DIR}
             ${CMAKE_BINARY_DIR}/quant_fixtures --quant-layout tiled)
    set_tests_properties(cuda_quant_engine cuda_quant_engine_tiled PROPERTIES FIXTURES_REQUIRED qb_quant_fixtures)
  else()
    add_test(NAME cuda_quant_engine COMMAND test_cuda_quant_engine ${QB_FIXTURE_DIR})
    add_test(NAME cuda_quant_engine_tiled COMMAND test_cuda_quant_engine ${QB_FIXTURE_DIR} --quant-layout tiled)
  endif()
  set_tests_properties(cuda_quant_engine cuda_quant_engine_tiled PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()

# The CUDA engine's host side for quantized weights (memory plan, random and uploaded fused layouts against the
# CPU engine's weights, kernel dispatch) on host memory: runs without a GPU. Built from cuda_memory.c,
# cuda_weights.c and cuda_forward.c with host stand-ins for the CUDA calls and kernels they use, so it links the
# core library only (not the CUDA runtime).
if(QB_HAVE_CUDA)
  add_executable(test_cuda_quant_layout test_cuda_quant_layout.c cuda_layout_standins.c
                 ${CMAKE_SOURCE_DIR}/src/cuda/cuda_memory.c
                 ${CMAKE_SOURCE_DIR}/src/cuda/cuda_weights.c ${CMAKE_SOURCE_DIR}/src/cuda/cuda_forward.c
                 ${CMAKE_SOURCE_DIR}/src/cuda/cuda_quant_tiles.c ${CMAKE_SOURCE_DIR}/src/cuda/cuda_choices.c
                 ${CMAKE_SOURCE_DIR}/src/cuda/cuda_decode_plan.c)
  target_include_directories(test_cuda_quant_layout PRIVATE ${QB_TEST_DIR} ${CUDAToolkit_INCLUDE_DIRS}
                             ${NCCL_INCLUDE_DIR})
  target_link_libraries(test_cuda_quant_layout PRIVATE qwenbench_core)
  add_test(NAME cuda_quant_layout COMMAND test_cuda_quant_layout ${QB_FIXTURE_DIR})
  set_tests_properties(cuda_quant_layout PROPERTIES TIMEOUT 120)
endif()
