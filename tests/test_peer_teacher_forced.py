#!/usr/bin/env python3
"""test_peer_teacher_forced.py - the teacher-forced peer comparison without torch (issue 21 item 9).

  /usr/bin/python3 tests/test_peer_teacher_forced.py PATH/TO/qwenbench

1. tests/peer_transformers.py's comparison (teacher_forced_summary, top5_of_logits) on numpy stand-in logits.
2. qwenbench --expect-tokens with a hand-written peer JSON carrying "teacher_forced": the cell's checks record
   the top-1 agreement and the top-5 outcome, and validity stays with the free-running comparison.
3. A malformed "teacher_forced" object: exit 2, one line naming the field, before any cell.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_transformers as peer  # noqa: E402  (imports no torch at module level)

QB = None
TINY = ["--backend", "cpu", "--model", "qwen2.5-tiny", "--threads", "1", "--context-lengths", "8",
        "--generate-length", "12", "--repetitions", "1"]


def stand_in_logits(forced, vocab, rank_at):
    """Logits whose order puts forced[s] at rank rank_at.get(s, 0) (0 = top 1) of step s."""
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(len(forced), vocab))
    for s, tok in enumerate(forced):
        order = [t for t in np.argsort(-rows[s]) if t != tok]
        order.insert(rank_at.get(s, 0), tok)
        rows[s, order] = np.linspace(10.0, -10.0, vocab)
    return rows


class PeerSide(unittest.TestCase):
    def test_summary_from_stand_in_logits(self):
        forced = [3, 17, 42, 8, 99, 5, 61, 0, 12, 77]
        logits = stand_in_logits(forced, 128, {2: 1, 5: 4, 7: 9})
        top5 = peer.top5_of_logits(logits)
        self.assertEqual([t[0] for i, t in enumerate(top5) if i not in (2, 5, 7)],
                         [f for i, f in enumerate(forced) if i not in (2, 5, 7)])
        tf = peer.teacher_forced_summary(top5, forced)
        self.assertEqual(tf, {"top1_rate": 0.7, "top5_all": False, "first_outside_top5": 7, "steps": 10})
        tf = peer.teacher_forced_summary(peer.top5_of_logits(stand_in_logits(forced, 128, {4: 3})), forced)
        self.assertEqual(tf, {"top1_rate": 0.9, "top5_all": True, "first_outside_top5": None, "steps": 10})

    def test_forced_tokens_from_json_and_results_file(self):
        with tempfile.TemporaryDirectory() as d:
            j = os.path.join(d, "tokens.json")
            with open(j, "w") as f:
                json.dump({"cells": [{"context_len": 1, "tokens": [1, 2]}, {"context_len": 8, "tokens": [4, 5, 6]}]}, f)
            self.assertEqual(peer.forced_tokens_from(j, 8), [4, 5, 6])
            self.assertIsNone(peer.forced_tokens_from(j, 9))
            h5 = os.path.join(d, "r.h5")
            p = subprocess.run([QB, *TINY, "--out", h5], capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            with h5py.File(h5, "r") as f:
                want = f["generated_tokens"][()].tolist()[:12]
            self.assertEqual(peer.forced_tokens_from(h5, 8), want)


class QwenbenchSide(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="qb-tf-")
        out = os.path.join(cls.tmp.name, "ours.h5")
        p = subprocess.run([QB, *TINY, "--out", out], capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise AssertionError(p.stderr)
        with h5py.File(out, "r") as f:
            cls.ours = f["generated_tokens"][()].tolist()[:12]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_with(self, name, tokens, tf):
        path = os.path.join(self.tmp.name, name + ".json")
        with open(path, "w") as f:
            json.dump({"engine": "peer", "cells": [{"model": "", "context_len": 8, "tokens": tokens,
                                                    "teacher_forced": tf}]}, f)
        out = os.path.join(self.tmp.name, name + ".h5")
        p = subprocess.run([QB, *TINY, "--expect-tokens", path, "--out", out], capture_output=True, text=True,
                           timeout=300)
        return p, out

    def cell(self, out):
        with h5py.File(out, "r") as f:
            c = f["cells"][0]
            return c["status"].decode(), c["checks"].decode()

    def test_every_token_in_the_peer_top5(self):
        p, out = self.run_with("all", self.ours, {"top1_rate": 0.973, "top5_all": True, "first_outside_top5": None,
                                                  "steps": 12})
        self.assertEqual(p.returncode, 0, p.stderr)
        status, checks = self.cell(out)
        self.assertEqual(status, "VALID")
        self.assertIn("peer teacher-forced (peer) over 12 steps: top-1 agreement 97.3 %, every token in the peer's "
                      "top 5", checks)

    def test_a_step_outside_the_peer_top5_is_recorded_not_judged(self):
        """Validity stays with the free-running comparison: equal tokens keep the cell VALID."""
        p, out = self.run_with("outside", self.ours, {"top1_rate": 0.5, "top5_all": False, "first_outside_top5": 4})
        self.assertEqual(p.returncode, 0, p.stderr)
        status, checks = self.cell(out)
        self.assertEqual(status, "VALID", checks)
        self.assertIn("peer teacher-forced (peer): top-1 agreement 50.0 %, step 4 outside the peer's top 5", checks)

    def test_malformed_teacher_forced_exits_2(self):
        cases = [({"top1_rate": 1.5, "top5_all": True}, "cells[0].teacher_forced.top1_rate"),
                 ({"top1_rate": 0.5, "top5_all": "yes"}, "cells[0].teacher_forced.top5_all"),
                 ({"top1_rate": 0.5, "top5_all": False, "first_outside_top5": -3},
                  "cells[0].teacher_forced.first_outside_top5"),
                 ({"top1_rate": 0.5, "top5_all": True, "first_outside_top5": 3}, "null exactly when top5_all"),
                 ({"top1_rate": 0.5, "top5_all": False}, "null exactly when top5_all"),
                 ([1], "cells[0].teacher_forced: must be an object")]
        for i, (tf, want) in enumerate(cases):
            with self.subTest(want=want):
                p, out = self.run_with(f"bad{i}", self.ours, tf)
                self.assertEqual(p.returncode, 2, p.stderr)
                lines = [l for l in p.stderr.strip().splitlines() if not l.startswith("#")]  # notes aside
                self.assertEqual(len(lines), 1, p.stderr)
                self.assertIn("--expect-tokens", lines[0])
                self.assertIn(want, lines[0])
                self.assertFalse(os.path.exists(out), "no cell may run")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: test_peer_teacher_forced.py PATH/TO/qwenbench")
    QB = sys.argv.pop(1)
    unittest.main()
