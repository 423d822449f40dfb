# tests/energy.cmake - the NVML energy meter (src/bench/energy.h) against a stand-in libnvidia-ml built here.
add_library(qb_fake_nvml SHARED ${QB_TEST_DIR}/energy/fake_nvml.c)
qb_add_c_test(test_energy ${QB_TEST_DIR}/energy/test_energy.c)
add_dependencies(test_energy qb_fake_nvml)
add_test(NAME energy_meter COMMAND test_energy $<TARGET_FILE:qb_fake_nvml>)
# The energy fields of a CPU run (no GPU: unavailable), end to end.
add_test(NAME energy_cpu_run COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/test_energy_cpu.py $<TARGET_FILE:qwenbench>)
set_tests_properties(energy_cpu_run PROPERTIES ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 300)
# The teacher-forced peer comparison (issue 21 item 9): the peer script's side on stand-in logits, and
# --expect-tokens recording it in the checks.
add_test(NAME peer_teacher_forced COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/test_peer_teacher_forced.py
         $<TARGET_FILE:qwenbench>)
set_tests_properties(peer_teacher_forced PROPERTIES ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 300)
# A results file from before the energy fields (h5py, the documented schema without them) reads as not recorded.
qb_add_c_test(test_energy_old_file ${QB_TEST_DIR}/energy/test_energy_old_file.c)
add_test(NAME energy_old_file
         COMMAND sh -c "\"$0\" -c 'import sys; sys.path.insert(0, sys.argv[1]); import test_analysis_synth as s; s.write(sys.argv[2])' \"$1\" \"$2\" && \"$3\" \"$2\""
                 ${QB_TEST_PYTHON} ${QB_TEST_DIR} ${CMAKE_CURRENT_BINARY_DIR}/energy_old_file.h5 $<TARGET_FILE:test_energy_old_file>)
