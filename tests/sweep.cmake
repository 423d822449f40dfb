# tests/sweep.cmake - the sweep-config loader (src/config/sweep.c: formats, limits, cell limit, duplicate check,
# FIFO/oversized files refused without waiting) and the shipped configs/sweeps/*.json.
qb_add_c_test(test_sweep ${QB_TEST_DIR}/test_sweep.c)
add_test(NAME sweep_loader COMMAND test_sweep ${CMAKE_SOURCE_DIR})
set_tests_properties(sweep_loader PROPERTIES TIMEOUT 60)
