"""mpi_ranks.py - how the packed-schedule tests start qwenbench under mpirun (imported by test_packed.py and
test_interference.py): the release binary, or the test build when a QWENBENCH_TEST_* fault variable is set."""
import os
import subprocess


def run(qb, qb_hooks, mpirun, *args, np_=4, timeout=300, env=None):
    hooked = any(k.startswith("QWENBENCH_TEST_") for k in (env or {}))
    cmd = [mpirun, "-np", str(np_), "--oversubscribe", "--bind-to", "none", qb_hooks if hooked else qb, *args]
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e)
