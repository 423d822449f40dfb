# tests/energy.cmake - the NVML energy meter (src/bench/energy.h) against a stand-in libnvidia-ml built here.
add_library(qb_fake_nvml SHARED ${QB_TEST_DIR}/energy/fake_nvml.c)
qb_add_c_test(test_energy ${QB_TEST_DIR}/energy/test_energy.c)
add_dependencies(test_energy qb_fake_nvml)
add_test(NAME energy_meter COMMAND test_energy $<TARGET_FILE:qb_fake_nvml>)
