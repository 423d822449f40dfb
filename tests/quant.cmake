# tests/quant.cmake - GPTQ / AWQ: packing and the quantized reference (test_quant_pack), the loader and the
# CPU engine on quantized fixtures made at test time by tests/make_quant_fixtures.py (numpy) in the build
# tree, at TP1 and under mpirun -np 2, and (with CUDA) the decode GEMV kernels against the CPU reference.
qb_add_c_test(test_quant_pack quant/test_quant_pack.c)
add_test(NAME quant_pack COMMAND test_quant_pack)
qb_add_c_test(test_quant_tile_map quant/test_quant_tile_map.c) # the fused quantized GEMVs' tiles (no GPU)
add_test(NAME quant_tile_map COMMAND test_quant_tile_map)
if(QB_TEST_PYTHON)
  set(QB_QUANT_FIXTURES ${CMAKE_BINARY_DIR}/quant_fixtures)
  add_test(NAME quant_make_fixtures
           COMMAND ${QB_TEST_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/make_quant_fixtures.py
                   --fixtures ${QB_FIXTURE_DIR} --out ${QB_QUANT_FIXTURES})
  set_tests_properties(quant_make_fixtures PROPERTIES FIXTURES_SETUP qb_quant_fixtures TIMEOUT 120)
  qb_add_c_test(test_quant_refusals quant/test_quant_refusals.c)
  add_test(NAME quant_refusals COMMAND test_quant_refusals ${QB_QUANT_FIXTURES})
  set_tests_properties(quant_refusals PROPERTIES FIXTURES_REQUIRED qb_quant_fixtures TIMEOUT 60)
  qb_add_c_test(test_quant_fixtures quant/test_quant_fixtures.c)
  foreach(v gqa_untied-gptq-int4-pow2 gqa_untied-gptq-int8-pow2 gqa_untied-awq-pow2 gqa_untied-gptq-int4-real
            gqa_untied-gptq-int8-real gqa_untied-awq-real gqa_untied-awq-pow2-padded tied_hd128-gptq-int4-pow2
            tied_hd128-awq-pow2)
    add_test(NAME quant_fixture_${v} COMMAND test_quant_fixtures ${QB_QUANT_FIXTURES}/${v})
    add_test(NAME quant_fixture_${v}_tp2
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS}
                     $<TARGET_FILE:test_quant_fixtures> ${QB_QUANT_FIXTURES}/${v} ${MPIEXEC_POSTFLAGS})
    set_tests_properties(quant_fixture_${v} quant_fixture_${v}_tp2 PROPERTIES
                         FIXTURES_REQUIRED qb_quant_fixtures ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 120
                         SKIP_RETURN_CODE 77)
  endforeach()
endif()


# Decode GEMV / prefill dequantization kernels vs the CPU reference on the Qwen2.5 shapes, and their speed
# (prints "skipped: no GPU" and exits 77 without one).
if(QB_HAVE_CUDA)
  qb_add_c_test(test_cuda_quant quant/test_cuda_quant.c)
  add_test(NAME cuda_quant_gemv COMMAND test_cuda_quant)
  set_tests_properties(cuda_quant_gemv PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()

# The command line end to end on the CPU engine: random packed weights of every format, a quantized checkpoint at
# TP1 and TP2 (checked against the reference engine), a --quant that contradicts the checkpoint, a TP size that
# would split quantization groups.
set(QB_QUANT_RUN --backend cpu --context-lengths 1,8 --generate-length 8 --repetitions 1 --warmup 0 --threads 1)
foreach(q gptq-int4 gptq-int8 awq)
  add_test(NAME quant_cli_random_${q}
           COMMAND $<TARGET_FILE:qwenbench> --model qwen2.5-tiny --quant ${q} ${QB_QUANT_RUN} --check reference:8)
  set_tests_properties(quant_cli_random_${q} PROPERTIES ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 120)
endforeach()
if(QB_TEST_PYTHON)
  add_test(NAME quant_cli_checkpoint_awq
           COMMAND $<TARGET_FILE:qwenbench> --model ${QB_QUANT_FIXTURES}/gqa_untied-awq-real --quant awq ${QB_QUANT_RUN}
                   --check reference:8)
  add_test(NAME quant_cli_checkpoint_gptq_tp2
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS} $<TARGET_FILE:qwenbench>
                   --model ${QB_QUANT_FIXTURES}/gqa_untied-gptq-int4-real --quant gptq-int4 ${QB_QUANT_RUN}
                   --check reference:8 ${MPIEXEC_POSTFLAGS})
  add_test(NAME quant_cli_checkpoint_wrong_quant
           COMMAND $<TARGET_FILE:qwenbench> --model ${QB_QUANT_FIXTURES}/gqa_untied-awq-real --quant gptq-int4
                   ${QB_QUANT_RUN})
  # no --quant: the checkpoint's own format (what a user of a GPTQ directory expects); the table names it
  add_test(NAME quant_cli_checkpoint_own_format
           COMMAND $<TARGET_FILE:qwenbench> --model ${QB_QUANT_FIXTURES}/gqa_untied-gptq-int8-real ${QB_QUANT_RUN}
                   --check reference:8)
  set_tests_properties(quant_cli_checkpoint_own_format PROPERTIES PASS_REGULAR_EXPRESSION "gptq-int8 .* VALID")
  set_tests_properties(quant_cli_checkpoint_awq quant_cli_checkpoint_gptq_tp2 quant_cli_checkpoint_wrong_quant
                       quant_cli_checkpoint_own_format
                       PROPERTIES FIXTURES_REQUIRED qb_quant_fixtures ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 120)
  set_tests_properties(quant_cli_checkpoint_wrong_quant PROPERTIES
                       PASS_REGULAR_EXPRESSION "checkpoint gqa_untied-awq-real is awq \\(its own quantization decides\\)")
endif()
add_test(NAME quant_cli_tp2_splits_groups
         COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS} $<TARGET_FILE:qwenbench>
                 --model qwen2.5-tiny --quant gptq-int4 ${QB_QUANT_RUN} ${MPIEXEC_POSTFLAGS})
set_tests_properties(quant_cli_tp2_splits_groups PROPERTIES ENVIRONMENT "${QB_MPI_ENV}" TIMEOUT 120
                     PASS_REGULAR_EXPRESSION "is not a multiple of group_size 128")
