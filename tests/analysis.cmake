# analysis.cmake - the Python report (analysis/): synthetic files, malformed inputs, the roofline, a real CPU run,
# the run comparison (compare), the one-line message under a python3 without the packages (deps) and the
# sweep's timeline from the runs' start/end times (timeline: synthetic files; timeline_packed: a real packed sweep).
# Needs Debian's python3-h5py, python3-pandas, python3-numpy, python3-matplotlib under QB_TEST_PYTHON (tests/CMakeLists.txt).
set(QB_ANALYSIS_ENV "MPLBACKEND=Agg;MPLCONFIGDIR=${CMAKE_BINARY_DIR}/mplconfig;PYTHONDONTWRITEBYTECODE=1")
foreach(name report errors roofline peer_json compare deps timeline)
  add_test(NAME analysis_${name} COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/test_analysis_${name}.py)
  set_tests_properties(analysis_${name} PROPERTIES ENVIRONMENT "${QB_ANALYSIS_ENV}" TIMEOUT 300)
endforeach()
# the report test writes a dozen reports with plots: about 90 s on an idle machine
set_tests_properties(analysis_report PROPERTIES TIMEOUT 600)
# A real results file from the CPU backend; exit 77 = skipped while the qwenbench binary is missing.
add_test(NAME analysis_cpu_run COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/test_analysis_cpu_run.py
         $<TARGET_FILE:qwenbench>)
set_tests_properties(analysis_cpu_run PROPERTIES ENVIRONMENT "${QB_ANALYSIS_ENV};${QB_MPI_ENV}" TIMEOUT 600
                     SKIP_RETURN_CODE 77)
# A file from the C writer: the results tests' sample (written by their results_roundtrip fixture).
add_test(NAME analysis_c_writer COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/test_analysis_c_writer.py
         ${CMAKE_CURRENT_BINARY_DIR}/results_test_files/sample.h5)
set_tests_properties(analysis_c_writer PROPERTIES ENVIRONMENT "${QB_ANALYSIS_ENV}" TIMEOUT 300
                     FIXTURES_REQUIRED results_sample_file SKIP_RETURN_CODE 77)
# The timeline of a real sweep: --schedule packed on the CPU engine under mpirun -np 2 (exit 77 without the binary).
add_test(NAME analysis_timeline_packed COMMAND ${QB_TEST_PYTHON} ${QB_TEST_DIR}/test_analysis_timeline.py
         $<TARGET_FILE:qwenbench> ${MPIEXEC_EXECUTABLE})
set_tests_properties(analysis_timeline_packed PROPERTIES
                     ENVIRONMENT "${QB_ANALYSIS_ENV};${QB_MPI_ENV};QB_FIXTURE_DIR=${QB_FIXTURE_DIR}" TIMEOUT 600
                     SKIP_RETURN_CODE 77)
