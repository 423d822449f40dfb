# tests/io.cmake - model configs and presets, shard plans, safetensors, checkpoints, weights (random and
# loaded), and the corpus of hostile checkpoints (tests/make_bad_checkpoints.py). Scratch files go to
# the build tree.
set(QB_IO_SCRATCH ${CMAKE_CURRENT_BINARY_DIR}/io_scratch)
file(MAKE_DIRECTORY ${QB_IO_SCRATCH})

qb_add_c_test(test_model_config ${QB_TEST_DIR}/io/test_model_config.c)
add_test(NAME io_model_config COMMAND test_model_config ${CMAKE_SOURCE_DIR} ${QB_IO_SCRATCH}/config)

qb_add_c_test(test_shard_plan ${QB_TEST_DIR}/io/test_shard_plan.c)
add_test(NAME io_shard_plan COMMAND test_shard_plan ${CMAKE_SOURCE_DIR})

qb_add_c_test(test_printable ${QB_TEST_DIR}/io/test_printable.c)
add_test(NAME io_printable COMMAND test_printable)

qb_add_c_test(test_safetensors ${QB_TEST_DIR}/io/test_safetensors.c)
add_test(NAME io_safetensors COMMAND test_safetensors ${QB_IO_SCRATCH}/safetensors)

qb_add_c_test(test_weights ${QB_TEST_DIR}/io/test_weights.c)
add_test(NAME io_weights COMMAND test_weights ${CMAKE_SOURCE_DIR} ${QB_IO_SCRATCH}/weights)

# The golden fixtures written by transformers (tests/fixtures, made by tests/make_fixtures.py).
file(GLOB QB_IO_FIXTURES LIST_DIRECTORIES true ${QB_FIXTURE_DIR}/*)
list(FILTER QB_IO_FIXTURES EXCLUDE REGEX "\\.(md|json|py)$")
if(QB_IO_FIXTURES)
  qb_add_c_test(test_fixture_load ${QB_TEST_DIR}/io/test_fixture_load.c)
  add_test(NAME io_fixture_load COMMAND test_fixture_load ${QB_IO_FIXTURES})
endif()

# Hostile inputs (issue 5): the corpus is generated into the build tree, then every case must fail with its
# expected one-line message (controls must load).
find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_Interpreter_FOUND)
  add_test(NAME io_bad_corpus_generate
           COMMAND ${Python3_EXECUTABLE} ${QB_TEST_DIR}/make_bad_checkpoints.py ${CMAKE_CURRENT_BINARY_DIR}/bad_corpus)
  set_tests_properties(io_bad_corpus_generate PROPERTIES FIXTURES_SETUP qb_bad_corpus)
  qb_add_c_test(test_bad_checkpoints ${QB_TEST_DIR}/io/test_bad_checkpoints.c)
  add_test(NAME io_bad_checkpoints COMMAND test_bad_checkpoints ${CMAKE_CURRENT_BINARY_DIR}/bad_corpus)
  set_tests_properties(io_bad_checkpoints PROPERTIES FIXTURES_REQUIRED qb_bad_corpus TIMEOUT 300)
endif()

# Hostile model directories through the binary (issue 20 items 8, 11): names with control and bidi characters
# escaped in the table, progress, errors and `tokens`; NaN weights FAILED naming the tensor; overflowing
# logits INVALID.
add_test(NAME io_hostile_model_dir COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/io/test_hostile_model_dir.py $<TARGET_FILE:qwenbench>)
set_tests_properties(io_hostile_model_dir PROPERTIES ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 300)
