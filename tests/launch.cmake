# tests/launch.cmake - the launch scripts (launch/) and the sweep path through a real Slurm.
#   launch_scripts: shell syntax, the mpirun wrapper's printed command, the two sbatch scripts in step.
#   sweep_mpirun_cpu_tiny: qwenbench --sweep cpu-tiny.json under launch/qwenbench-mpirun --np 2, one full file.
#   slurm_sweep:    tests/slurm/test_slurm.sh - starts a one-node Slurm (apt-get installs slurm-wlm and munge
#                   when missing), runs the cpu-tiny sweep through launch/slurm/qwenbench-1node.sbatch with
#                   2 tasks, then cancel / SIGUSR1 stop / --resume / self-requeue. Skips (77) when Slurm
#                   cannot be started and CI is not set; fails when CI is set. About 2 minutes; serial (timing-sensitive);
#                   labelled no_sanitize so the ASan pass of scripts/test.sh does not run it a second time.
add_test(NAME launch_scripts COMMAND bash ${QB_TEST_DIR}/slurm/test_launch_scripts.sh ${CMAKE_SOURCE_DIR})
add_test(NAME sweep_mpirun_cpu_tiny COMMAND bash ${QB_TEST_DIR}/slurm/test_mpirun_sweep.sh $<TARGET_FILE:qwenbench> ${CMAKE_SOURCE_DIR})
set_tests_properties(sweep_mpirun_cpu_tiny PROPERTIES TIMEOUT 300)
add_test(NAME slurm_sweep COMMAND bash ${QB_TEST_DIR}/slurm/test_slurm.sh $<TARGET_FILE:qwenbench-testhooks> ${CMAKE_SOURCE_DIR})
set_tests_properties(slurm_sweep PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE LABELS "slurm;no_sanitize")
