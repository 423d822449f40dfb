# tests/cpu.cmake - the CPU reference engine: each op against direct formulas, and the whole engine against
# the golden fixtures made by transformers (tests/make_fixtures.py), at TP1 and under mpirun -np 2 at TP2.
qb_add_c_test(test_cpu_ops cpu/test_cpu_ops.c)
add_test(NAME cpu_ops COMMAND test_cpu_ops)

qb_add_c_test(test_cpu_fixtures cpu/test_cpu_fixtures.c)
foreach(fixture gqa_untied tied_hd128 yarn sharded)
  add_test(NAME cpu_fixture_${fixture} COMMAND test_cpu_fixtures ${QB_FIXTURE_DIR}/${fixture})
  add_test(NAME cpu_fixture_${fixture}_tp2
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS}
                   $<TARGET_FILE:test_cpu_fixtures> ${QB_FIXTURE_DIR}/${fixture} ${MPIEXEC_POSTFLAGS})
  set_tests_properties(cpu_fixture_${fixture} cpu_fixture_${fixture}_tp2 PROPERTIES
                       ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 120 SKIP_RETURN_CODE 77)
endforeach()

qb_add_c_test(test_cpu_random cpu/test_cpu_random.c)
add_test(NAME cpu_random_tp1 COMMAND test_cpu_random)
add_test(NAME cpu_random_tp2_vs_tp1
         COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS}
                 $<TARGET_FILE:test_cpu_random> ${MPIEXEC_POSTFLAGS})
set_tests_properties(cpu_random_tp1 cpu_random_tp2_vs_tp1 PROPERTIES ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 120)

# The committed fixtures are what tests/make_fixtures.py makes (numpy part; the expected values need torch).
if(QB_TEST_PYTHON)
  add_test(NAME cpu_fixtures_in_step
           COMMAND ${QB_TEST_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/cpu/fixtures_in_step.py
                   ${CMAKE_CURRENT_SOURCE_DIR}/make_fixtures.py ${QB_FIXTURE_DIR})
endif()
