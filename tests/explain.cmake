# tests/explain.cmake - qwenbench --explain: each cell's engine plan printed, nothing run or written (CPU engine).
# (QB_TEST_PYTHON: tests/CMakeLists.txt; QB_MPI_ENV: tests/CMakeLists.txt)
add_test(NAME explain COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/test_explain.py $<TARGET_FILE:qwenbench>)
set_tests_properties(explain PROPERTIES ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 120)
