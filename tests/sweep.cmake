# tests/sweep.cmake - the sweep-config loader (src/config/sweep.c) and the shipped configs/sweeps/*.json.
qb_add_c_test(test_sweep ${QB_TEST_DIR}/test_sweep.c)
add_test(NAME sweep_loader COMMAND test_sweep ${CMAKE_SOURCE_DIR})
