#!/usr/bin/python3
"""dist_fault_check.py - run a job that must fail: non-zero exit, in time, with the expected words.

Usage: dist_fault_check.py MAX_SECONDS EXPECTED_TEXT -- COMMAND...
Passes when COMMAND exits non-zero within MAX_SECONDS and its output (stdout + stderr) contains
EXPECTED_TEXT. A job still running at MAX_SECONDS is killed (its whole process group) and fails the test:
that is exactly the hang the watchdog exists to prevent.
"""
import os
import signal
import subprocess
import sys
import time


def main(argv):
    if len(argv) < 4 or argv[2] != "--":
        sys.exit(__doc__)
    limit, expected, command = float(argv[0]), argv[1], argv[3:]
    start = time.monotonic()
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = job.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        output, _ = job.communicate()
        print(output.decode(errors="replace"))
        print(f"FAIL: still running after {limit:g} s: a hung or dead rank kept the job waiting", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - start
    text = output.decode(errors="replace")
    print(text)
    print(f"# exit status {job.returncode} after {elapsed:.1f} s (limit {limit:g} s)")
    if job.returncode == 0:
        print("FAIL: the job exited 0, it should have been aborted", file=sys.stderr)
        return 1
    if expected not in text:
        print(f"FAIL: the output lacks {expected!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
