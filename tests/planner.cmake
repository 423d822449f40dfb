# tests/planner.cmake - the per-rank memory planner (src/bench/planner.c): parameter-count and KV cross-checks,
# the tensor-parallel size chosen for known cells, DOES_NOT_FIT messages. Pure C, no GPU.
qb_add_c_test(planner_test ${QB_TEST_DIR}/planner_test.c)
add_test(NAME planner COMMAND planner_test)
