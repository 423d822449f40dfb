# dev/comm/comm.cmake - the communication lab (dev/comm/README.md), included from dev/CMakeLists.txt (built only
# with the CUDA engine, which brings NCCL). Not part of the product.
#   dev_allreduce_symmetric  NCCL's symmetric-window all-reduce vs plain ncclAllReduce (allreduce_symmetric.c)
# CTest lab_allreduce_symmetric (label "lab"): 2 ranks under mpirun; fails on a wrong element; skipped ("skipped:
# no GPU" / "skipped: fewer GPUs than ranks on a node") without 2 GPUs.
if(QB_HAVE_CUDA)
  add_executable(dev_allreduce_symmetric ${CMAKE_CURRENT_LIST_DIR}/allreduce_symmetric.c)
  target_include_directories(dev_allreduce_symmetric PRIVATE ${NCCL_INCLUDE_DIR})
  target_link_libraries(dev_allreduce_symmetric PRIVATE MPI::MPI_C CUDA::cudart ${NCCL_LIBRARY})
  target_compile_definitions(dev_allreduce_symmetric PRIVATE _POSIX_C_SOURCE=200809L)
  set_target_properties(dev_allreduce_symmetric PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  add_test(NAME lab_allreduce_symmetric COMMAND ${MPIEXEC_EXECUTABLE} --oversubscribe -np 2 -x NCCL_NVLS_ENABLE=0
           $<TARGET_FILE:dev_allreduce_symmetric>)
  set_tests_properties(lab_allreduce_symmetric PROPERTIES LABELS lab SKIP_REGULAR_EXPRESSION "skipped: " TIMEOUT 300
    ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;NCCL_NVLS_ENABLE=0")
endif()
