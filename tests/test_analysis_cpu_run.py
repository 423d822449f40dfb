"""test_analysis_cpu_run.py - a real results file from a CPU run of qwenbench goes through the report.

    /usr/bin/python3 tests/test_analysis_cpu_run.py PATH/TO/qwenbench

Runs `qwenbench --backend cpu --model qwen2.5-tiny --context-lengths 1,16 --generate-length 8 --repetitions 2`,
then the report, and checks the tables and CSVs equal the file and the plots are non-empty PNGs; then a second
run (input 1 only) and `python3 -m analysis.compare` of the two real files: the matched cell's ratio and
verdict, the unmatched one listed.
Exit 77 (ctest: skipped) with a message when the qwenbench binary is missing (not built yet).
"""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_analysis_checks as checks  # noqa: E402

SKIP = 77
QWENBENCH = None


class ReportOnCpuRun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="qb-analysis-cpu-")
        cls.h5 = os.path.join(cls.tmp.name, "cpu.h5")
        cls.out = os.path.join(cls.tmp.name, "report")
        run = subprocess.run([QWENBENCH, "--backend", "cpu", "--model", "qwen2.5-tiny", "--threads", "1",
                              "--context-lengths", "1,16", "--generate-length", "8", "--repetitions", "2",
                              "--out", cls.h5], capture_output=True, text=True, timeout=600)
        if run.returncode != 0:
            raise AssertionError(f"qwenbench CPU run failed (exit {run.returncode}): {run.stderr.strip()}")
        cls.proc = checks.run_report([cls.h5, "--out", cls.out])
        if cls.proc.returncode != 0:
            raise AssertionError(f"report failed (exit {cls.proc.returncode}): {cls.proc.stderr}")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_tables_equal_file(self):
        self.assertEqual(checks.check_speed_table(self, self.h5, self.out, "qwen2.5-tiny", "qwen2.5-tiny"), 2)

    def test_csv_equals_file(self):
        checks.check_csv_equals_file(self, self.h5, self.out)

    def test_roofline_has_a_floor(self):
        import pandas as pd
        cells = pd.read_csv(os.path.join(self.out, "cells.csv"))
        self.assertTrue((cells["bytes_per_token"] > 0).all(), "tiny model shapes come from configs/models")
        if cells["bandwidth_gbps"].notna().all() and (cells["bandwidth_gbps"] > 0).all():
            self.assertTrue(cells["floor_tok_s"].notna().all())

    def test_compare_two_real_files(self):
        second = os.path.join(self.tmp.name, "cpu-second.h5")
        run = subprocess.run([QWENBENCH, "--backend", "cpu", "--model", "qwen2.5-tiny", "--threads", "1",
                              "--context-lengths", "1", "--generate-length", "8", "--repetitions", "2",
                              "--out", second], capture_output=True, text=True, timeout=600)
        self.assertEqual(run.returncode, 0, run.stderr)
        env = dict(os.environ, PYTHONPATH=checks.ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.run([checks.PYTHON, "-m", "analysis.compare", self.h5, second], cwd=checks.ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        a = next(c for c in checks.read_cells(self.h5) if c["context_len"] == 1)
        b = checks.read_cells(second)[0]
        row = next(line for line in proc.stdout.splitlines() if line.startswith("qwen2.5-tiny "))
        fields = row.split()
        self.assertEqual(fields[1:5], ["bf16", "1", "1", "8"], row)
        rest = [f for f in fields[[i for i, f in enumerate(fields) if f == "(2)"][1] + 1:] if f != "NOISY"]
        ratio, verdict = float(rest[0]), rest[1]  # after B's "mean ± std (2)"
        self.assertLessEqual(abs(ratio - b["speed_mean"] / a["speed_mean"]), 0.0005 + 1e-9, row)
        self.assertIn(verdict, ("faster", "slower", "same"), row)
        self.assertIn("A only: qwen2.5-tiny bf16 TP1 input 16 gen 8 [cpu]", proc.stdout)
        self.assertIn("(1 matched cells)", proc.stdout)

    def test_plots(self):
        for name in ("speed_qwen2.5-tiny.png", "step_latency_qwen2.5-tiny.png"):
            checks.check_png(self, os.path.join(self.out, name))


def main():
    global QWENBENCH
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        where = sys.argv[1] if len(sys.argv) > 1 else "(no path given)"
        print(f"SKIP: qwenbench binary not found at {where}: build it first (cmake --build BUILD --target "
              "qwenbench)")
        return SKIP
    QWENBENCH = os.path.abspath(sys.argv[1])
    result = unittest.main(argv=sys.argv[:1], verbosity=2, exit=False).result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
