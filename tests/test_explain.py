#!/usr/bin/env python3
"""test_explain.py - qwenbench --explain: each cell's engine is created and its plan printed (the CUDA engine's
decode plan, src/cuda/cuda_decode_plan.c; the CPU engine's one loop), nothing is timed and no results file is
written, exit 0. Runs the CPU engine (the CUDA one needs a GPU: its plan's content is checked by
test_cuda_launch_trace's engine_choices and by the GPU tests).

Run by ctest: /usr/bin/python3 tests/test_explain.py PATH/TO/qwenbench
"""
import os
import subprocess
import sys
import tempfile
import unittest

QB = None
TINY = ["--backend", "cpu", "--model", "qwen2.5-tiny", "--generate-length", "2", "--repetitions", "1"]


def run(*args, timeout=120):
    return subprocess.run([QB, *args], capture_output=True, text=True, timeout=timeout)


class Explain(unittest.TestCase):
    def test_prints_each_cells_plan_and_runs_nothing(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.h5")
            p = run("--explain", *TINY, "--context-lengths", "4,8", "--quant", "bf16,gptq-int4", "--out", out)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertFalse(os.path.exists(out), "--explain wrote a results file")
        for quant in ["bf16", "gptq-int4"]:
            for n in [4, 8]:
                self.assertIn(f"## qwen2.5-tiny {quant} input {n} tp 1", p.stdout)
        self.assertEqual(p.stdout.count("engine cpu: prefill and decode"), 4, p.stdout)
        self.assertIn("silu*up", p.stdout)
        self.assertIn("(dequantized)", p.stdout)
        self.assertNotIn("tok/s", p.stdout + p.stderr)  # no timing table, no runs

    def test_help_lists_the_flag(self):
        p = run("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--explain", p.stdout)

    def test_bad_engine_option_still_one_line(self):
        p = run("--explain", *TINY, "--decode-fusion", "bogus")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)


if __name__ == "__main__":
    QB = sys.argv.pop(1)
    unittest.main()
