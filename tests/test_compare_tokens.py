#!/usr/bin/python3
"""test_compare_tokens.py - tests/compare_tokens.py on small results files written here with h5py (only the
fields it reads: /cells model, quant, context_len, tp_size; /runs cell, repetition, n_gen, token_offset;
/generated_tokens): equal files, a token that differs in the second run, a missing cell, an unreadable file.

    python3 tests/test_compare_tokens.py
"""
import os
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "compare_tokens.py")

CELL = np.dtype([("model", "S128"), ("quant", "S16"), ("context_len", "<i4"), ("tp_size", "<i4")])
RUN = np.dtype([("cell", "<i4"), ("repetition", "<i4"), ("n_gen", "<i4"), ("token_offset", "<i8")])


def write(path, cells):
    """cells: [(model, quant, context_len, [tokens of run 0, tokens of run 1, ...])]"""
    cell_rows, run_rows, tokens = [], [], []
    for i, (model, quant, n, runs) in enumerate(cells):
        cell_rows.append((model.encode(), quant.encode(), n, 1))
        for rep, t in enumerate(runs):
            run_rows.append((i, rep, len(t), len(tokens)))
            tokens.extend(t)
    with h5py.File(path, "w") as f:
        f["cells"] = np.array(cell_rows, dtype=CELL)
        f["runs"] = np.array(run_rows, dtype=RUN)
        f["generated_tokens"] = np.array(tokens, dtype="<i4")


def run(a, b):
    p = subprocess.run([sys.executable, SCRIPT, a, b], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


class CompareTokens(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.base = os.path.join(self.dir.name, "base.h5")
        self.new = os.path.join(self.dir.name, "new.h5")
        write(self.base, [("qwen2.5-7b", "bf16", 1, [[5, 6, 7], [5, 6, 7]]),
                          ("qwen2.5-7b", "bf16", 30720, [[9, 9, 9], [9, 9, 9]])])

    def tearDown(self):
        self.dir.cleanup()

    def test_equal(self):
        write(self.new, [("qwen2.5-7b", "bf16", 1, [[5, 6, 7], [5, 6, 7]]),
                         ("qwen2.5-7b", "bf16", 30720, [[9, 9, 9], [9, 9, 9]])])
        rc, out, _ = run(self.base, self.new)
        self.assertEqual(rc, 0)
        self.assertEqual(out, "qwen2.5-7b bf16 input 1: equal\nqwen2.5-7b bf16 input 30720: equal\n")

    def test_first_difference(self):
        write(self.new, [("qwen2.5-7b", "bf16", 1, [[5, 6, 7], [5, 6, 8]]),
                         ("qwen2.5-7b", "bf16", 30720, [[9, 9, 9], [9, 9, 9]])])
        rc, out, _ = run(self.base, self.new)
        self.assertEqual(rc, 1)
        self.assertIn("qwen2.5-7b bf16 input 1: first difference at step 2 (run 1): base 7, new 8\n", out)
        self.assertIn("input 30720: equal", out)

    def test_missing_cell(self):
        write(self.new, [("qwen2.5-7b", "bf16", 1, [[5, 6, 7], [5, 6, 7]])])
        rc, out, _ = run(self.base, self.new)
        self.assertEqual(rc, 1)
        self.assertIn("input 30720: missing in the new file", out)

    def test_unreadable(self):
        with open(self.new, "w") as f:
            f.write("not hdf5")
        rc, out, err = run(self.base, self.new)
        self.assertEqual(rc, 2)
        self.assertEqual(out, "")
        self.assertEqual(len(err.strip().splitlines()), 1)


if __name__ == "__main__":
    unittest.main()
