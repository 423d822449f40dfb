# output_formats.cmake - -o/--output-format md|csv|json|jsonl on stdout and `qwenbench export` of a results file.
add_test(NAME output_formats COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/test_output_formats.py $<TARGET_FILE:qwenbench>
         ${MPIEXEC_EXECUTABLE})
set_tests_properties(output_formats PROPERTIES ENVIRONMENT "${QB_MPI_ENV};QB_FIXTURE_DIR=${QB_FIXTURE_DIR}" TIMEOUT 600)
