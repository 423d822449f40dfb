#!/usr/bin/env bash
# test.sh - the whole test suite, as CI runs it (bash .ci/run installs the packages, then calls this).
#   1. Release build (with the CUDA engine when nvcc and NCCL are found; then also the kernel lab of dev/) and every
#      ctest test: GPU tests, and the lab's checks (label "lab"), report "skipped: no GPU" on a machine without one.
#   2. The CPU suite again under AddressSanitizer + UndefinedBehaviorSanitizer (Debug, CPU-only build).
#   3. The libFuzzer targets for the safetensors and config.json parsers, for a bounded time, with clang.
# QB_TEST_QUICK=1 skips steps 2 and 3.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "# 1/3 build and test (Release)"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-test -j"$jobs"
ctest --test-dir build-test --output-on-failure -j"$jobs" --timeout 900
if [ -d build-test/dev ]; then echo "# kernel lab (dev/) built; its checks ran above: ctest -L lab"; fi

if [ "${QB_TEST_QUICK:-0}" = "1" ]; then exit 0; fi

echo "# 2/3 CPU suite under ASan + UBSan"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DQB_SANITIZE=ON -DQB_WITH_CUDA=OFF >/dev/null
cmake --build build-asan -j"$jobs"
# Open MPI's own allocations are not ours to chase: leak checking off, everything else fatal.
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 900 -LE no_sanitize

echo "# 3/3 fuzzers"
if [ -f tests/run_fuzz.sh ]; then bash tests/run_fuzz.sh; else echo "# no fuzzers yet"; fi
