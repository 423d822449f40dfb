"""test_analysis_compare.py - python3 -m analysis.compare on synthetic files: matching, verdicts, differing options.

A baseline file and a changed one (engine_options / engine_choices recorded), plus an older file without those
fields. The whole printed comparison is checked against GOLDEN (the file paths replaced by <tmp>/): a cell
faster, one slower, several the same within noise, n/a for an INVALID cell and a 1-run cell, a NOISY cell, the
options and choices that differ, a B-only cell of an option sweep, "not recorded" for the older file. The
verdict rule is also checked on its edges, and the CSV against the files' numbers.
Run: /usr/bin/python3 tests/test_analysis_compare.py   (exit status 0 = pass)
"""
import math
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_analysis_checks as checks  # noqa: E402
import test_analysis_synth as synth  # noqa: E402

OPTIONS = "allreduce=auto;tp_exchange=auto;decode_fusion=auto"
CHOICES = "allreduce=nccl;decode_fusion=epilogues;gemv=rows"
OPTIONS_NO_FUSION = OPTIONS.replace("decode_fusion=auto", "decode_fusion=none")
CHOICES_NO_FUSION = CHOICES.replace("decode_fusion=epilogues", "decode_fusion=none")
CHOICES_IPC = CHOICES.replace("allreduce=nccl", "allreduce=ipc-oneshot")


def cell(quant, tp, n, step_s, options=OPTIONS, choices=CHOICES, **kw):
    return synth.cell(quant=quant, tp_size=tp, context_len=n, step_s=step_s, engine_options=options,
                      engine_choices=choices, **kw)


def base_cells():
    return [cell("bf16", 2, 1, 0.005), cell("bf16", 2, 6144, 0.006), cell("gptq-int4", 1, 1, 0.004),
            cell("gptq-int4", 1, 6144, 0.005),
            cell("gptq-int8", 1, 1, 0.006, status="INVALID", reason="tokens differ"),
            cell("awq", 1, 1, 0.004, repetitions=1), cell("awq", 1, 6144, 0.005)]


def changed_cells():
    return [cell("bf16", 2, 1, 0.004, choices=CHOICES_IPC),          # 20 % faster: allreduce kernel changed
            cell("bf16", 2, 6144, 0.0061),                            # 1.4 % slower, within the noise
            cell("gptq-int4", 1, 1, 0.005, OPTIONS_NO_FUSION, CHOICES_NO_FUSION),  # slower without fusion
            cell("gptq-int4", 1, 6144, 0.005, jitter=0.3, noisy=1),   # noisy, same within its spread
            cell("gptq-int8", 1, 1, 0.006),                           # A is INVALID: n/a
            cell("awq", 1, 1, 0.003),                                 # A has 1 run: n/a
            cell("awq", 1, 6144, 0.005),                              # unchanged
            cell("awq", 1, 6144, 0.0045, OPTIONS_NO_FUSION, CHOICES_NO_FUSION)]  # option sweep: B only


GOLDEN = """\
Rule: faster/slower when |B-A| > 2 x sqrt(se_A^2 + se_B^2) (se = speed_std / sqrt(runs)) and |B/A-1| > 1%; same otherwise; n/a when a cell is not VALID or has < 2 runs. Speed = generated tokens / total time.

B = <tmp>/changed.h5
  against A = <tmp>/base.h5
  files differ in build_commit: abc123def456 -> 0123456789ab

model       format     TP  input  gen  A tok/s            B tok/s                   B/A    verdict  differs (A->B)
qwen2.5-7b  bf16       2   1      16   165.04 ± 4.85 (3)  196.19 ± 5.77 (3)         1.189  faster   choices: allreduce nccl->ipc-oneshot
qwen2.5-7b  bf16       2   6144   16   143.01 ± 4.60 (3)  141.08 ± 4.54 (3)         0.986  same     -
qwen2.5-7b  gptq-int4  1   1      16   196.71 ± 6.15 (3)  165.50 ± 5.19 (3)         0.841  slower   options: decode_fusion auto->none; choices: decode_fusion epilogues->none
qwen2.5-7b  gptq-int4  1   6144   16   165.56 ± 4.61 (3)  176.30 ± 54.91 (3) NOISY  1.065  same     -
qwen2.5-7b  gptq-int8  1   1      16   INVALID            142.69 ± 4.07 (3)         -      n/a      -
qwen2.5-7b  awq        1   1      16   202.71 ± 0.00 (1)  242.09 ± 7.66 (3)         1.194  n/a      -
qwen2.5-7b  awq        1   6144   16   165.46 ± 4.53 (3)  165.62 ± 5.50 (3)         1.001  same     -

Verdicts: 1 faster, 1 slower, 3 same, 2 n/a (7 matched cells)
n/a because:
  qwen2.5-7b gptq-int8 TP1 input 1: n/a (A INVALID)
  qwen2.5-7b awq TP1 input 1: n/a (A has 1 run(s): no spread)
B only: qwen2.5-7b awq TP1 input 6144 gen 16 [cuda] {allreduce=auto;tp_exchange=auto;decode_fusion=none}

B = <tmp>/older.h5
  against A = <tmp>/base.h5
  B records no engine_options / engine_choices (an older file)

model       format     TP  input  gen  A tok/s            B tok/s            B/A    verdict  differs (A->B)
qwen2.5-7b  bf16       2   1      16   165.04 ± 4.85 (3)  196.19 ± 5.77 (3)  1.189  faster   not recorded
qwen2.5-7b  gptq-int4  1   1      16   196.71 ± 6.15 (3)  196.93 ± 6.30 (3)  1.001  same     not recorded

Verdicts: 1 faster, 0 slower, 1 same, 0 n/a (2 matched cells)
A only: qwen2.5-7b bf16 TP2 input 6144 gen 16 [cuda] {allreduce=auto;tp_exchange=auto;decode_fusion=auto}
A only: qwen2.5-7b gptq-int4 TP1 input 6144 gen 16 [cuda] {allreduce=auto;tp_exchange=auto;decode_fusion=auto}
A only: qwen2.5-7b gptq-int8 TP1 input 1 gen 16 [cuda] {allreduce=auto;tp_exchange=auto;decode_fusion=auto}
A only: qwen2.5-7b awq TP1 input 1 gen 16 [cuda] {allreduce=auto;tp_exchange=auto;decode_fusion=auto}
A only: qwen2.5-7b awq TP1 input 6144 gen 16 [cuda] {allreduce=auto;tp_exchange=auto;decode_fusion=auto}
"""


def run_compare(args):
    env = dict(os.environ, PYTHONPATH=checks.ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([checks.PYTHON, "-m", "analysis.compare"] + list(args), cwd=checks.ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


class CompareRuns(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="qb-compare-")
        d = cls.tmp.name
        cls.base, cls.changed, cls.older = (os.path.join(d, n) for n in ("base.h5", "changed.h5", "older.h5"))
        synth.write(cls.base, cells=base_cells())
        synth.write(cls.changed, cells=changed_cells(), meta={"build_commit": "0123456789ab"})
        synth.write(cls.older, cells=[synth.cell(quant="bf16", tp_size=2, context_len=1, step_s=0.004),
                                      synth.cell(quant="gptq-int4", tp_size=1, context_len=1, step_s=0.004)])
        cls.csv = os.path.join(d, "pairs.csv")
        cls.proc = run_compare([cls.base, cls.changed, cls.older, "--csv", cls.csv])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_golden_output(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        got = self.proc.stdout.replace(self.tmp.name + "/", "<tmp>/")
        got = got.replace("wrote <tmp>/pairs.csv\n", "")
        self.maxDiff = None
        self.assertEqual(got.rstrip("\n") + "\n", GOLDEN)

    def test_csv_holds_the_files_numbers(self):
        import pandas as pd
        pairs = pd.read_csv(self.csv, float_precision="round_trip", keep_default_na=False,
                            na_values={"ratio": ["", "nan"], "diff": ["", "nan"]})
        a, b = checks.read_cells(self.base), checks.read_cells(self.changed)
        mine = pairs[pairs["b_file"] == self.changed]
        self.assertEqual(len(mine), 7)
        for _, p in mine.iterrows():
            ca, cb = a[int(p["a_cell"])], b[int(p["b_cell"])]
            for k in ("quant", "tp_size", "context_len"):
                self.assertEqual(ca[k], cb[k], "a pair of cells of different keys")
            self.assertEqual(p["a_speed_mean"], ca["speed_mean"])
            self.assertEqual(p["b_speed_mean"], cb["speed_mean"])
            if ca["status"] == "VALID":
                self.assertEqual(p["ratio"], cb["speed_mean"] / ca["speed_mean"])
        fast = mine[mine["verdict"] == "faster"].iloc[0]
        self.assertEqual((fast["quant"], fast["context_len"]), ("bf16", 1))
        self.assertEqual(fast["choices_differ"], "allreduce nccl->ipc-oneshot")

    def test_errors_are_one_line(self):
        for args, what in (([self.base], "at least two"), ([self.base, self.base + ".missing"], "no such file"),
                           ([self.base, self.changed, "--min-diff-pct", "-1"], "--min-diff-pct")):
            proc = run_compare(args)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
            self.assertIn(what, proc.stderr)
            self.assertTrue(proc.stderr.startswith("qwenbench-compare: error: "), proc.stderr)


class VerdictRule(unittest.TestCase):
    """The rule's edges on hand-made cells: 2 x the combined standard error, the minimum difference, n/a."""

    @staticmethod
    def c(mean, std, runs=4, status="VALID"):
        import pandas as pd
        return pd.Series({"speed_mean": mean, "speed_std": std, "n_runs": runs, "status": status})

    def test_edges(self):
        sys.path.insert(0, checks.ROOT)
        from analysis.compare import verdict
        # se = 2 / sqrt(4) = 1 on each side, combined sqrt(2) = 1.414: the threshold is 2.83 tok/s
        self.assertEqual(verdict(self.c(100, 2), self.c(102.9, 2))[0], "faster")
        self.assertEqual(verdict(self.c(100, 2), self.c(102.7, 2))[0], "same")
        self.assertEqual(verdict(self.c(100, 2), self.c(97.1, 2))[0], "slower")
        # beyond the noise but under the 1 % minimum: same; a 0 % minimum calls it
        self.assertEqual(verdict(self.c(1000, 0.1), self.c(1009, 0.1))[0], "same")
        self.assertEqual(verdict(self.c(1000, 0.1), self.c(1009, 0.1), min_diff_pct=0)[0], "faster")
        self.assertEqual(verdict(self.c(100, 0, runs=1), self.c(200, 0))[0], "n/a")
        self.assertEqual(verdict(self.c(100, 1), self.c(200, 1, status="FAILED")), ("n/a", "B FAILED"))
        self.assertTrue(math.isclose(float(self.c(100, 2)["speed_std"]), 2.0))


if __name__ == "__main__":
    unittest.main(verbosity=2)
