# e2e.cmake - the qwenbench binary end to end: command line, CPU runs, MPI ranks, faults and --resume.
add_test(NAME cli COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/test_cli.py $<TARGET_FILE:qwenbench>)
set_tests_properties(cli PROPERTIES ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 300)
# the command-line cases that run qwen2.5-0.5b cells (list-valued --model/--quant, the short CPU job)
add_test(NAME cli_cpu_jobs COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/test_cli.py $<TARGET_FILE:qwenbench> CpuJobs)
# (Release only: qwen2.5-0.5b cells in the -O0 sanitizer build take too long; the quick product test in cli runs there)
set_tests_properties(cli_cpu_jobs PROPERTIES ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 900 LABELS no_sanitize)
# The test build: the same program with fault injection (src/bench/test_hooks.h), never installed.
add_executable(qwenbench-testhooks ${CMAKE_SOURCE_DIR}/src/main.c ${QB_TEST_DIR}/test_hooks_env.c)
target_link_libraries(qwenbench-testhooks PRIVATE ${QB_ENGINE_LIBS})
add_test(NAME e2e_cpu COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/test_e2e.py $<TARGET_FILE:qwenbench> ${MPIEXEC_EXECUTABLE}
         $<TARGET_FILE:qwenbench-testhooks>)
set_tests_properties(e2e_cpu PROPERTIES ENVIRONMENT "${QB_MPI_ENV};QB_FIXTURE_DIR=${QB_FIXTURE_DIR}" TIMEOUT 900)
add_test(NAME engine_options COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/test_engine_options.py $<TARGET_FILE:qwenbench>)
set_tests_properties(engine_options PROPERTIES ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 300)
# The live progress line on a pty, and the first / second Ctrl-C or SIGTERM (bench/progress.h, bench/stop_signals.h).
add_test(NAME progress_signals COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/test_progress_signals.py
         $<TARGET_FILE:qwenbench-testhooks>)
set_tests_properties(progress_signals PROPERTIES ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 600)
