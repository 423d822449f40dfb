# tests/fuzz.cmake - libFuzzer targets for the untrusted-input parsers (issue 5) and the results reader (issue 20), only with -DQB_FUZZ=ON and
# clang (CMAKE_C_COMPILER=clang). Each target compiles the parser sources it tests itself, instrumented for
# coverage and with AddressSanitizer + UndefinedBehaviorSanitizer. Run them with tests/run_fuzz.sh.
if(QB_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "QB_FUZZ=ON needs clang: cmake -DCMAKE_C_COMPILER=clang -DQB_FUZZ=ON ...")
  endif()
  set(QB_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1)
  set(QB_FUZZ_SOURCES_safetensors ${CMAKE_SOURCE_DIR}/src/io/safetensors.c ${CMAKE_SOURCE_DIR}/src/io/printable.c
      ${CMAKE_SOURCE_DIR}/src/util/error.c)
  set(QB_FUZZ_SOURCES_config ${CMAKE_SOURCE_DIR}/src/config/model_config.c ${CMAKE_SOURCE_DIR}/src/config/model_config_resolve.c
      ${CMAKE_SOURCE_DIR}/src/io/small_file.c ${CMAKE_SOURCE_DIR}/src/io/model_dir.c ${CMAKE_SOURCE_DIR}/src/io/printable.c
      ${CMAKE_SOURCE_DIR}/src/engine/shard_plan.c ${CMAKE_SOURCE_DIR}/src/model/weight_format.c
      ${CMAKE_SOURCE_DIR}/src/model/model_family.c ${CMAKE_SOURCE_DIR}/src/model/qwen2_family.c
      ${CMAKE_SOURCE_DIR}/src/util/error.c)
  set(QB_FUZZ_SOURCES_results ${CMAKE_SOURCE_DIR}/src/results/results_read.c ${CMAKE_SOURCE_DIR}/src/results/results_schema.c
      ${CMAKE_SOURCE_DIR}/src/results/cell_columns.c
      ${CMAKE_SOURCE_DIR}/src/results/results_checksum.c ${CMAKE_SOURCE_DIR}/src/results/record.c
      ${CMAKE_SOURCE_DIR}/src/io/printable.c ${CMAKE_SOURCE_DIR}/src/util/error.c)
  foreach(target safetensors config results)
    add_executable(fuzz_${target} ${QB_TEST_DIR}/fuzz/fuzz_${target}.c ${QB_FUZZ_SOURCES_${target}})
    target_include_directories(fuzz_${target} PRIVATE ${CMAKE_SOURCE_DIR}/src ${JANSSON_INCLUDE_DIR})
    target_compile_definitions(fuzz_${target} PRIVATE _POSIX_C_SOURCE=200809L _DEFAULT_SOURCE QB_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
    target_compile_options(fuzz_${target} PRIVATE ${QB_FUZZ_FLAGS})
    target_link_options(fuzz_${target} PRIVATE ${QB_FUZZ_FLAGS})
    # The instrumented parser objects come first; anything else they reach (e.g. the quantized-checkpoint
    # probe that config resolution calls) comes uninstrumented from the core library.
    target_link_libraries(fuzz_${target} PRIVATE ${JANSSON_LIBRARY} qwenbench_core m)
    set_target_properties(fuzz_${target} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
  endforeach()
  # Seeds of fuzz_results: files from the real writer (uninstrumented; only makes the corpus).
  add_executable(make_results_seeds ${QB_TEST_DIR}/fuzz/make_results_seeds.c ${QB_TEST_DIR}/results_sample.c)
  target_include_directories(make_results_seeds PRIVATE ${CMAKE_SOURCE_DIR}/src ${QB_TEST_DIR})
  target_compile_definitions(make_results_seeds PRIVATE _POSIX_C_SOURCE=200809L _DEFAULT_SOURCE)
  target_link_libraries(make_results_seeds PRIVATE qwenbench_core m)
  set_target_properties(make_results_seeds PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
endif()
