#!/bin/sh
# results_disk_full.sh - a real "disk full": results_refusal_test disk-full on a 96 KiB tmpfs.
# Usage: results_disk_full.sh EXE DIR
# The tmpfs is mounted over DIR in a private mount namespace (unshare -m), so nothing outside this test
# sees it and it vanishes with the test. Needs root; where unshare or mount is not allowed the test is
# skipped (exit 77, SKIP_RETURN_CODE in tests/results.cmake) rather than passed.
exe=$1
dir=$2
mkdir -p "$dir" || exit 1
if ! unshare -m true 2>/dev/null; then
    echo "results_disk_full: unshare -m not allowed here: skipped"
    exit 77
fi
exec unshare -m sh -c '
    mount -t tmpfs -o size=96k qwenbench-disk-full "$2" 2>/dev/null || { echo "results_disk_full: mount not allowed: skipped"; exit 77; }
    exec "$1" "$2" disk-full' sh "$exe" "$dir"
