# tests/nccl.cmake - the multi-GPU pieces of the CUDA engine (src/cuda/nccl_comm.h): the all-reduce latency
# benchmark with its correctness checks, under mpirun -np 2. Built only with CUDA; without a GPU it prints
# "skipped: no GPU" and exits 77, which ctest reports as skipped.
if(QB_HAVE_CUDA)
  qb_add_c_test(bench_allreduce ${QB_TEST_DIR}/bench_allreduce.c)
  add_test(NAME bench_allreduce
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS} -x NCCL_NVLS_ENABLE
                   $<TARGET_FILE:bench_allreduce> ${MPIEXEC_POSTFLAGS} --replays 5)
  set_tests_properties(bench_allreduce PROPERTIES ENVIRONMENT "${QB_MPI_ENV};NCCL_NVLS_ENABLE=0"
                       SKIP_RETURN_CODE 77 TIMEOUT 300)
endif()
