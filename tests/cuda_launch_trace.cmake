# tests/cuda_launch_trace.cmake - the CUDA engine's forward pass as its ordered kernel launches (every argument,
# pointers by buffer name + offset) against the golden traces of tests/golden/launch_trace/, for every format,
# TP1 / TP2 and combination of the engine options: a refactoring of src/cuda/cuda_forward.c must leave them
# identical. Runs without a GPU (host stand-ins for the kernels, tests/cuda_layout_standins.c, as
# test_cuda_quant_layout), but is built where the CUDA host sources compile (nvcc and NCCL found: their headers).
# Rewrite the golden files after an intended change: test_cuda_launch_trace <fixtures> <golden dir> --update
if(QB_HAVE_CUDA)
  add_executable(test_cuda_launch_trace test_cuda_launch_trace.c cuda_layout_standins.c
                 ${CMAKE_SOURCE_DIR}/src/cuda/cuda_memory.c
                 ${CMAKE_SOURCE_DIR}/src/cuda/cuda_weights.c ${CMAKE_SOURCE_DIR}/src/cuda/cuda_forward.c
                 ${CMAKE_SOURCE_DIR}/src/cuda/cuda_quant_tiles.c ${CMAKE_SOURCE_DIR}/src/cuda/cuda_choices.c
                 ${CMAKE_SOURCE_DIR}/src/cuda/cuda_decode_plan.c)
  target_include_directories(test_cuda_launch_trace PRIVATE ${QB_TEST_DIR} ${CUDAToolkit_INCLUDE_DIRS}
                             ${NCCL_INCLUDE_DIR})
  target_link_libraries(test_cuda_launch_trace PRIVATE qwenbench_core)
  add_test(NAME cuda_launch_trace COMMAND test_cuda_launch_trace ${QB_FIXTURE_DIR}
           ${CMAKE_CURRENT_SOURCE_DIR}/golden/launch_trace)
  set_tests_properties(cuda_launch_trace PROPERTIES TIMEOUT 300)
endif()
