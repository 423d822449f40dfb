# tests/tp_exchange.cmake - the tensor-parallel residual exchange of the decode step (kernels/comm/tp_exchange.cuh) with
# 2 and 4 ranks simulated on one GPU, against the CPU reference (built only with CUDA; exits 77 without a GPU).
# `--quick`: the 0.5B and 7B TP2 slices; the device scripts run every shape.
if(QB_HAVE_CUDA)
  qb_add_c_test(test_tp_exchange test_tp_exchange.c)
  add_test(NAME tp_exchange COMMAND test_tp_exchange --quick)
  set_tests_properties(tp_exchange PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()

# The fused launchers' shared host side (input mode, exchange and RoPE parameters): host code, runs without a GPU.
if(QB_HAVE_CUDA)
  qb_add_c_test(test_fused_launch_args test_fused_launch_args.cu)
  add_test(NAME fused_launch_args COMMAND test_fused_launch_args)
endif()
