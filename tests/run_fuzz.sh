#!/usr/bin/env bash
# run_fuzz.sh - build the libFuzzer targets with clang (ASan + UBSan) and fuzz the safetensors and config.json
# parsers and the results-file reader for a bounded time, starting from generated seed corpora (results:
# files from the real writer, tests/fuzz/make_results_seeds.c); then replay the hostile-input corpus
# (tests/make_bad_checkpoints.py) through the same instrumented parsers. Any crash, leak, sanitizer report
# or failed invariant is a non-zero exit; the reproducer is left in build-fuzz/findings/.
#   bash tests/run_fuzz.sh [TOTAL_SECONDS]      (default 90, split between the three targets)
# Needs: clang, libclang-rt-14-dev (Debian), jansson, the project's build dependencies for configuring.
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-${QB_FUZZ_SECONDS:-90}}
per=$(( total / 3 )); [ "$per" -ge 1 ] || per=1
build=${QB_FUZZ_BUILD:-build-fuzz}
export PYTHONDONTWRITEBYTECODE=1

echo "# building fuzzers in $build"
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DQB_FUZZ=ON -DQB_WITH_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" --target fuzz_safetensors fuzz_config fuzz_results make_results_seeds -j"$(nproc)"

seeds="$build/fuzz_seeds"
python3 tests/fuzz/make_seeds.py "$seeds" "$PWD"
python3 tests/make_bad_checkpoints.py "$build/bad_corpus" >/dev/null
mkdir -p "$seeds/results" && "$build/make_results_seeds" "$seeds/results"
mkdir -p "$build/findings" "$build/corpus/safetensors" "$build/corpus/config" "$build/corpus/results"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for target in safetensors config results; do
  echo "# fuzz_$target for ${per}s"
  # corpus/ (new inputs, kept between runs) first, then the read-only seeds
  if ! "$build/fuzz_$target" "$build/corpus/$target" "$seeds/$target" -max_total_time="$per" -max_len=131072 \
       -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$build/findings/${target}-" \
       2>"$build/fuzz_$target.log"; then
    tail -40 "$build/fuzz_$target.log"
    echo "FAILED: fuzz_$target found a problem (reproducer in $build/findings/)"
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$build/fuzz_$target.log" | sed "s/^/# fuzz_$target /"
  fi
done

# Replay the hostile corpus (whole files, no size cap) through the instrumented parsers.
echo "# replaying the hostile corpus under the sanitizers"
st_files=$(awk -F'\t' '$1 == "st" {print $2}' "$build/bad_corpus/cases.tsv")
cfg_files=$(awk -F'\t' '$1 == "config" {print $2}' "$build/bad_corpus/cases.tsv")
# shellcheck disable=SC2086
"$build/fuzz_safetensors" -runs=1 -rss_limit_mb=4096 $st_files >"$build/replay_safetensors.log" 2>&1 \
  || { tail -20 "$build/replay_safetensors.log"; echo "FAILED: replay of the safetensors corpus"; status=1; }
# shellcheck disable=SC2086
"$build/fuzz_config" -runs=1 -rss_limit_mb=4096 $cfg_files >"$build/replay_config.log" 2>&1 \
  || { tail -20 "$build/replay_config.log"; echo "FAILED: replay of the config corpus"; status=1; }
[ "$status" -eq 0 ] && echo "# fuzzers: no findings"
exit "$status"
