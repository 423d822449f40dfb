# tests/results.cmake - the HDF5 results file (round trip, pandas, refusals, disk full, kill) and the table.
set(QB_RESULTS_TEST_DIR ${CMAKE_CURRENT_BINARY_DIR}/results_test_files)
# One subdirectory per test, so tests running in parallel never see each other's temporary files.
file(MAKE_DIRECTORY ${QB_RESULTS_TEST_DIR} ${QB_RESULTS_TEST_DIR}/roundtrip ${QB_RESULTS_TEST_DIR}/foreign)

qb_add_c_test(results_roundtrip_test results_roundtrip_test.c results_sample.c)
add_test(NAME results_roundtrip
         COMMAND results_roundtrip_test ${QB_RESULTS_TEST_DIR}/roundtrip ${QB_RESULTS_TEST_DIR}/sample.h5
                 ${QB_RESULTS_TEST_DIR}/expected.txt)
set_tests_properties(results_roundtrip PROPERTIES FIXTURES_SETUP results_sample_file)

if(QB_TEST_PYTHON)
  # Debian's python3-h5py and python3-pandas (QB_TEST_PYTHON, tests/CMakeLists.txt).
  add_test(NAME results_pandas_read
           COMMAND ${QB_TEST_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/results_pandas_check.py
                   ${QB_RESULTS_TEST_DIR}/sample.h5 ${QB_RESULTS_TEST_DIR}/expected.txt)
  set_tests_properties(results_pandas_read PROPERTIES FIXTURES_REQUIRED results_sample_file)
endif()

qb_add_c_test(results_refusal_test results_refusal_test.c results_sample.c)
add_test(NAME results_refusals COMMAND results_refusal_test ${QB_RESULTS_TEST_DIR}/refusals refusals)
add_test(NAME results_disk_full
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/results_disk_full.sh $<TARGET_FILE:results_refusal_test>
                 ${QB_RESULTS_TEST_DIR}/disk_full)
set_tests_properties(results_disk_full PROPERTIES SKIP_RETURN_CODE 77)

qb_add_c_test(results_kill_test results_kill_test.c results_sample.c)
add_test(NAME results_kill_during_write COMMAND results_kill_test ${QB_RESULTS_TEST_DIR}/kill)
set_tests_properties(results_kill_during_write PROPERTIES TIMEOUT 120)

qb_add_c_test(results_table_test results_table_test.c results_sample.c)
add_test(NAME results_table COMMAND results_table_test)

# The column list (src/results/cell_columns.h) against the /cells compound: shipped fields kept, offsets and
# sizes consistent with the HDF5 types, every column survives record -> row -> record.
qb_add_c_test(results_columns_test results_columns_test.c)
add_test(NAME results_columns COMMAND results_columns_test)

# A file written by h5py from the documented schema (tests/test_analysis_synth.py, 12 cells) reads in C and
# rewrites to the same records: the C side and the documented layout agree.
if(QB_TEST_PYTHON)
  add_test(NAME results_foreign_write
           COMMAND ${QB_TEST_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_analysis_synth.py
                   ${QB_RESULTS_TEST_DIR}/h5py_written.h5)
  set_tests_properties(results_foreign_write PROPERTIES FIXTURES_SETUP results_h5py_file)
  qb_add_c_test(results_foreign_test results_foreign_test.c results_sample.c)
  add_test(NAME results_foreign_read
           COMMAND results_foreign_test ${QB_RESULTS_TEST_DIR}/h5py_written.h5 12 ${QB_RESULTS_TEST_DIR}/foreign)
  set_tests_properties(results_foreign_read PROPERTIES FIXTURES_REQUIRED results_h5py_file)
endif()

# Hostile output paths (issue 20): links planted at the temporary names, FIFO / device / link targets.
qb_add_c_test(results_paths_test results_paths_test.c results_sample.c)
add_test(NAME results_hostile_paths COMMAND results_paths_test ${QB_RESULTS_TEST_DIR}/paths)
# Damaged files through `qwenbench tokens` and --resume (byte flips, truncations, changed data), and
# FIFO / link targets through the command line: never a crash, a hang or a replaced special file.
if(QB_TEST_PYTHON)
  add_test(NAME results_damaged_files
           COMMAND ${QB_TEST_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/results_damage_test.py $<TARGET_FILE:qwenbench>
                   ${QB_RESULTS_TEST_DIR}/damage)
  set_tests_properties(results_damaged_files PROPERTIES ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 900)
endif()
