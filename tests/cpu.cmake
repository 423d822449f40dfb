# tests/cpu.cmake - the CPU reference engine: each op against direct formulas, and the whole engine against
# the golden fixtures made by transformers (tests/make_fixtures.py), at TP1 and under mpirun -np 2 at TP2.
qb_add_c_test(test_cpu_ops cpu/test_cpu_ops.c)
add_test(NAME cpu_ops COMMAND test_cpu_ops)
