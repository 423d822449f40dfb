# tests/dist.cmake - MPI bring-up, collectives and the watchdog (src/comm), at 1, 2 and 4 ranks (as root,
# oversubscribed: QB_MPI_ENV), and once started without mpirun (a world of one).

qb_add_c_test(test_dist_collectives comm/test_dist_collectives.c)
foreach(n 1 2 4)
  add_test(NAME dist_collectives_np${n}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n} ${MPIEXEC_PREFLAGS}
                   $<TARGET_FILE:test_dist_collectives> ${MPIEXEC_POSTFLAGS})
  set_tests_properties(dist_collectives_np${n} PROPERTIES ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 120)
endforeach()
add_test(NAME dist_collectives_singleton COMMAND test_dist_collectives)
set_tests_properties(dist_collectives_singleton PROPERTIES ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 120)

# Faults: a hung rank (rank 1 sleeps 120 s) must end the job through the others' watchdog after the 2 s
# deadline, with the message naming the operation; a dead rank (SIGKILL) is mpirun's to notice.
qb_add_c_test(test_dist_fault comm/test_dist_fault.c)
if(QB_TEST_PYTHON)
  add_test(NAME dist_watchdog_hung_rank
           COMMAND ${QB_TEST_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/comm/dist_fault_check.py 30
                   "MPI_Barrier (all ranks) did not complete within 2 s" --
                   ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 4 ${MPIEXEC_PREFLAGS}
                   $<TARGET_FILE:test_dist_fault> hang 2 ${MPIEXEC_POSTFLAGS})
  add_test(NAME dist_dead_rank
           COMMAND ${QB_TEST_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/comm/dist_fault_check.py 30 "rank 1" --
                   ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 4 ${MPIEXEC_PREFLAGS}
                   $<TARGET_FILE:test_dist_fault> die 600 ${MPIEXEC_POSTFLAGS})
  set_tests_properties(dist_watchdog_hung_rank dist_dead_rank PROPERTIES ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 60)
else()
  message(WARNING "no python3 (QB_TEST_PYTHON): the dist fault tests are not registered")
endif()

# Ranks that disagree: every rank's error gathered to rank 0 (format, verdict on every rank), fingerprints that
# name the first differing field, and the comparison with rank 0's at 1, 2 and 4 ranks.
qb_add_c_test(test_dist_errors comm/test_dist_errors.c)
foreach(n 1 2 4)
  add_test(NAME dist_errors_np${n}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n} ${MPIEXEC_PREFLAGS}
                   $<TARGET_FILE:test_dist_errors> ${MPIEXEC_POSTFLAGS})
  set_tests_properties(dist_errors_np${n} PROPERTIES ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 60)
endforeach()
