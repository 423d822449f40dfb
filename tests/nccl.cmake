# tests/nccl.cmake - the multi-GPU pieces of the CUDA engine (src/comm/cuda/nccl_comm.h): the all-reduce latency
# benchmark with its correctness checks, under mpirun -np 2 (17.01 KB: 8709 values, a count that is not a
# multiple of 8, for the kernels' tail paths). Built only with CUDA; without a GPU it prints
# "skipped: no GPU" and exits 77, which ctest reports as skipped.
if(QB_HAVE_CUDA)
  qb_add_c_test(test_nccl_host ${QB_TEST_DIR}/comm/test_nccl_host.c)
  add_test(NAME nccl_host COMMAND test_nccl_host)
  qb_add_c_test(bench_allreduce ${QB_TEST_DIR}/bench/bench_allreduce.c)
  add_test(NAME bench_allreduce
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS} -x NCCL_NVLS_ENABLE
                   $<TARGET_FILE:bench_allreduce> ${MPIEXEC_POSTFLAGS} --replays 5 --sizes-kb 2,4,8,16,17.01)
  set_tests_properties(bench_allreduce PROPERTIES ENVIRONMENT "${QB_MPI_ENV};NCCL_NVLS_ENABLE=0"
                       SKIP_RETURN_CODE 77 TIMEOUT 300)
  # the watchdog: rank 1 stops answering, rank 0 must abort the job with its message (exit status is non-zero
  # by design, so the message decides); each implementation, since each waits differently (NCCL kernel,
  # one-shot kernel's own timeout)
  foreach(impl nccl ipc-oneshot)
    add_test(NAME bench_allreduce_fault_hang_${impl}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS} -x NCCL_NVLS_ENABLE
                     $<TARGET_FILE:bench_allreduce> ${MPIEXEC_POSTFLAGS} --fault-hang --impl ${impl} --deadline 5)
    set_tests_properties(bench_allreduce_fault_hang_${impl} PROPERTIES ENVIRONMENT "${QB_MPI_ENV};NCCL_NVLS_ENABLE=0"
                         PASS_REGULAR_EXPRESSION "NCCL communicator aborted" SKIP_REGULAR_EXPRESSION "skipped: no GPU"
                         TIMEOUT 120)
  endforeach()
endif()
