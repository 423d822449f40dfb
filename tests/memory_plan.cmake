# tests/memory_plan.cmake - the one memory plan (src/engine/memory_plan.c): consistency for every Qwen2.5 size,
# format, tensor-parallel size and a few lengths, the planner's numbers against it and, with CUDA, the CUDA engine's
# cudaMalloc requests against it (cuda_memory.c and cuda_quant_tiles.c over the host stand-ins of
# cuda_layout_standins.c: runs without a GPU, links the core library only).
if(QB_HAVE_CUDA)
  add_executable(test_memory_plan test_memory_plan.c cuda_layout_standins.c
                 ${CMAKE_SOURCE_DIR}/src/cuda/cuda_memory.c ${CMAKE_SOURCE_DIR}/src/cuda/cuda_quant_tiles.c)
  target_include_directories(test_memory_plan PRIVATE ${QB_TEST_DIR} ${CUDAToolkit_INCLUDE_DIRS} ${NCCL_INCLUDE_DIR})
  target_link_libraries(test_memory_plan PRIVATE qwenbench_core)
else()
  qb_add_c_test(test_memory_plan test_memory_plan.c)
endif()
add_test(NAME memory_plan COMMAND test_memory_plan)
set_tests_properties(memory_plan PROPERTIES TIMEOUT 300)
