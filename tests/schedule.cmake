# schedule.cmake - --schedule packed: cells side by side on disjoint groups of ranks (bench/packed_schedule.h).
#   test_schedule_units:    the carving of ranks into groups per host, a cell's byte image there and back, the
#                           dealing over phases without a barrier (a TP-1 group dealt cells while a TP-2 cell
#                           runs; the CPU engine cannot give one job two TP sizes, so no MPI test has two phases),
#                           --interference's spec, dealing steps, overlap check and NOISY rule (no MPI).
#   packed_cpu:             mpirun -np 4, two groups of 2 and four groups of 1: the cells and tokens of the serial
#                           schedule, where and when each ran; a killed and a hung rank keep the cells received; a
#                           stop signal; --resume completes; a file from before the new columns reads back
#                           (tests/schedule/test_packed.py).
#   packed_namespace_hosts: two "nodes" as network + UTS namespaces made by the test, ranks launched into them
#                           through mpirun's rsh agent: groups per host, a group across hosts, a killed node,
#                           --resume (tests/schedule/test_namespace_hosts.sh; root only, else skipped: exit 77).
#   packed_interference:    --interference MODEL:FORMAT:INPUT[:TP] under mpirun -np 4 --tp 1: the cell timed alone,
#                           then beside the other groups, recorded once with its fields, checks line and overlapping
#                           runs; the NOISY rule; --resume; bad specs and --schedule serial refused
#                           (tests/schedule/test_interference.py).
qb_add_c_test(test_schedule_units schedule/test_schedule_units.c)
add_test(NAME test_schedule_units COMMAND test_schedule_units)
add_test(NAME packed_cpu COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/schedule/test_packed.py $<TARGET_FILE:qwenbench>
         ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:qwenbench-testhooks> --without EntryTp)
set_tests_properties(packed_cpu PROPERTIES ENVIRONMENT "${QB_MPI_ENV};QB_FIXTURE_DIR=${QB_FIXTURE_DIR}" TIMEOUT 900)
# packed_cpu_entry_tp: sweep entries with their own tp, and the TP-1 phase running beside the TP-2 cell (no
# barrier between phases); its cells are sized for the timing (a 3000-token prompt, 128 generated), so it runs in
# the Release build only (an -O0 sanitizer build takes over 300 s for its serial sweep alone)
add_test(NAME packed_cpu_entry_tp COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/schedule/test_packed.py
         $<TARGET_FILE:qwenbench> ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:qwenbench-testhooks> EntryTp)
set_tests_properties(packed_cpu_entry_tp PROPERTIES ENVIRONMENT "${QB_MPI_ENV};QB_FIXTURE_DIR=${QB_FIXTURE_DIR}"
                     TIMEOUT 600 LABELS no_sanitize)
add_test(NAME packed_namespace_hosts COMMAND bash ${QB_TEST_DIR}/schedule/test_namespace_hosts.sh
         $<TARGET_FILE:qwenbench> $<TARGET_FILE:qwenbench-testhooks> ${CMAKE_SOURCE_DIR})
set_tests_properties(packed_namespace_hosts PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE
                     LABELS "no_sanitize")
add_test(NAME packed_interference COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/schedule/test_interference.py
         $<TARGET_FILE:qwenbench> ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:qwenbench-testhooks>)
set_tests_properties(packed_interference PROPERTIES ENVIRONMENT "${QB_MPI_ENV};QB_FIXTURE_DIR=${QB_FIXTURE_DIR}"
                     TIMEOUT 900)
