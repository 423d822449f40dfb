#!/usr/bin/env bash
# bootstrap.sh - on a fresh Debian 12 / Ubuntu machine: install the dependencies, build qwenbench, and run the
# main job on its defaults (a GPU: Qwen2.5-7B BF16 at the default input lengths; no GPU: the CPU reference
# engine on a short Qwen2.5-0.5B job, and it says so). Results go to results.h5 and a report to report/.
#   bash scripts/bootstrap.sh            (as root, or with sudo available)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
./build/qwenbench --out results.h5 --overwrite
/usr/bin/python3 -m analysis.report results.h5 --out report
echo "# done: results.h5 (see docs/RESULTS.md), report/report.md"
