#!/usr/bin/env python3
"""test_interference.py - --schedule packed --interference MODEL:FORMAT:INPUT[:TP] on the CPU engine.

Run by ctest: /usr/bin/python3 tests/schedule/test_interference.py PATH/TO/qwenbench PATH/TO/mpirun PATH/TO/qwenbench-testhooks
Four tiny models x five input lengths under mpirun -np 4 --tp 1 (four groups of one rank), qwen2.5-tiny bf16 input 1
timed alone, then beside the other groups (bench/interference.h). The numbers mean nothing on a shared CPU; the
mechanics are what is checked: the cell is recorded once, with alone_speed_mean, alone_speed_std and
interference_ratio finite and the ratio their quotient, its checks line, every beside run overlapping a run of
another group in /runs, no other cell twice and none missing, the NOISY rule applied as the fields say, the spec in
the settings (so --resume completes only a file made with it); a bad spec, one naming no cell or several, and
--interference with --schedule serial are refused with one line and exit status 2; analysis.report prints the
ratio under its timeline. Environment from ctest:
OMPI_ALLOW_RUN_AS_ROOT*, QB_FIXTURE_DIR.
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import unittest

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpi_ranks  # noqa: E402

QB = MPIRUN = QB_HOOKS = None
FIX = os.environ.get("QB_FIXTURE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
NAMES = ["qwen2.5-tiny", "gqa_untied", "sharded", "tied_hd128"]
MODELS = ",".join([NAMES[0]] + [os.path.join(FIX, n) for n in NAMES[1:]])
LENGTHS = [1, 16, 32, 48, 64]
# the chosen cell is the cheapest, so that the other groups' runs are as long as its own or longer
SPEC = "qwen2.5-tiny:bf16:1"
SWEEP = ["--backend", "cpu", "--model", MODELS, "--threads", "1", "--context-lengths", ",".join(map(str, LENGTHS)),
         "--generate-length", "32", "--repetitions", "3", "--warmup", "1", "--tp", "1", "--schedule", "packed"]
LINE = re.compile(r"interference: beside (\d+) groups: ([0-9.]+) of alone \(alone ([0-9.]+) ± ([0-9.]+) tok/s\)")


def qb(*args, np_=4, timeout=300, env=None):
    return mpi_ranks.run(QB, QB_HOOKS, MPIRUN, *args, np_=np_, timeout=timeout, env=env)


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def read(path):
    """[cell dict with its runs' (start, end)], the settings JSON; refuses a cell present twice."""
    with h5py.File(path, "r") as f:
        cells, runs = f["cells"][()], f["runs"][()]
        settings = json.loads(text(f.attrs["settings_json"]))
    out, seen = [], set()
    for i, c in enumerate(cells):
        key = (text(c["model"]), text(c["quant"]), int(c["context_len"]), int(c["tp_size"]))
        if key in seen:
            raise AssertionError(f"cell {key} twice in {path}")
        seen.add(key)
        out.append({"key": key, "ranks": text(c["ranks"]), "checks": text(c["checks"]), "status": text(c["status"]),
                    "noisy": int(c["noisy"]), "n_runs": int(c["n_runs"]), "speed_mean": float(c["speed_mean"]),
                    "speed_std": float(c["speed_std"]), "alone_mean": float(c["alone_speed_mean"]),
                    "alone_std": float(c["alone_speed_std"]), "ratio": float(c["interference_ratio"]),
                    "times": [(float(r["start_unix_s"]), float(r["end_unix_s"])) for r in runs[runs["cell"] == i]]})
    return out, settings


def expected_keys():
    return sorted((m, "bf16", n, 1) for m in NAMES for n in LENGTHS)


def slowed(c):
    """The NOISY rule of docs/SCHEDULING.md, from the recorded fields."""
    se = math.sqrt((c["alone_std"] ** 2 + c["speed_std"] ** 2) / c["n_runs"])
    return c["ratio"] < 1 - max(2 * se / c["alone_mean"], 0.01)


class Interference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.path = os.path.join(cls.tmp.name, "itf.h5")
        cls.job = qb(*SWEEP, "--interference", SPEC, "--out", cls.path)
        assert cls.job.returncode == 0, cls.job.stderr
        cls.cells, cls.settings = read(cls.path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def chosen(self, cells=None):
        measured = [c for c in (cells or self.cells) if math.isfinite(c["alone_mean"])]
        self.assertEqual(len(measured), 1, "exactly one cell measured alone")
        return measured[0]

    def test_the_cell_is_recorded_once_with_its_three_fields(self):
        self.assertEqual(sorted(c["key"] for c in self.cells), expected_keys(), "every cell once, none twice")
        c = self.chosen()
        self.assertEqual(c["key"], ("qwen2.5-tiny", "bf16", 1, 1))
        self.assertEqual(c["status"], "VALID", c["checks"])
        for f in ("alone_mean", "alone_std", "ratio"):
            self.assertTrue(math.isfinite(c[f]), (f, c["checks"]))
        self.assertGreater(c["alone_mean"], 0)
        self.assertAlmostEqual(c["ratio"], c["speed_mean"] / c["alone_mean"], delta=1e-12 * c["ratio"])
        for other in self.cells:
            if other is not c:
                self.assertTrue(all(math.isnan(other[f]) for f in ("alone_mean", "alone_std", "ratio")), other["key"])
        self.assertIn("# interference: qwen2.5-tiny bf16 input 1 alone:", self.job.stderr)

    def test_checks_has_the_line(self):
        c = self.chosen()
        m = LINE.search(c["checks"])
        self.assertIsNotNone(m, c["checks"])
        groups, ratio, alone, spread = int(m.group(1)), float(m.group(2)), float(m.group(3)), float(m.group(4))
        self.assertTrue(1 <= groups <= 3, groups)
        self.assertAlmostEqual(ratio, c["ratio"], places=4)
        self.assertAlmostEqual(alone, c["alone_mean"], places=2)
        self.assertAlmostEqual(spread, c["alone_std"], places=2)

    def test_every_beside_run_overlaps_another_groups_cell(self):
        c = self.chosen()
        self.assertEqual(len(c["times"]), 3)
        # another group's cell in progress: from its first run's start to its last run's end
        others = [(min(s for s, _ in o["times"]), max(e for _, e in o["times"]))
                  for o in self.cells if o["ranks"] != c["ranks"] and o["times"]]
        for start, end in c["times"]:
            self.assertTrue(any(s < end and start < e for s, e in others),
                            f"beside run {start:.4f}-{end:.4f} overlaps no cell of another group in /runs")

    def test_the_noisy_rule_is_applied_as_the_fields_say(self):
        c = self.chosen()
        if slowed(c):
            self.assertIn("slower beyond noise: packed cells NOISY", c["checks"])
            for o in self.cells:
                self.assertEqual(o["noisy"], 1, o["key"])
                if o is not c:
                    self.assertIn("NOISY: packed, and --interference measured qwen2.5-tiny input 1 at", o["checks"])
        else:
            self.assertIn("no slow-down beyond noise", c["checks"])
            self.assertFalse(any("--interference measured" in o["checks"] for o in self.cells))

    def test_settings_name_the_spec_and_resume_needs_the_same(self):
        self.assertEqual(self.settings.get("interference"), SPEC)
        self.assertEqual(self.settings.get("schedule"), "packed")
        p = qb(*SWEEP, "--interference", "gqa_untied:bf16:16", "--out", self.path, "--resume")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("other settings", p.stderr)
        self.assertIn("interference", p.stderr)
        p = qb(*SWEEP, "--interference", SPEC, "--out", self.path, "--resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("0 to run", p.stderr)

    def test_resume_after_a_killed_rank_measures_the_cell_once(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.h5")
            args = [*SWEEP, "--interference", SPEC, "--deadline", "20", "--out", path]
            p = qb(*args, env={"QWENBENCH_TEST_FAULT": "kill:3:2"}, timeout=120)
            self.assertNotEqual(p.returncode, 0, "a dead rank must fail the job")
            if os.path.exists(path):  # else no cell had come back yet: --resume starts the file
                self.assertLess(len(read(path)[0]), 20, "the fault came mid-sweep")
            p = qb(*args, "--resume")
            self.assertEqual(p.returncode, 0, p.stderr)
            cells, _ = read(path)
            self.assertEqual(sorted(c["key"] for c in cells), expected_keys(), "every cell once after --resume")
            c = self.chosen(cells)
            self.assertTrue(math.isfinite(c["alone_mean"]), c["checks"])
            self.assertIn("interference: ", c["checks"])

    def test_the_report_prints_the_ratio_under_the_timeline(self):
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        with tempfile.TemporaryDirectory() as d:
            p = subprocess.run([sys.executable, "-m", "analysis.report", self.path, "--out", d], cwd=root,
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(os.path.join(d, "report.md")) as f:
                report = f.read()
        c = self.chosen()
        timeline = report.split("## Timeline")[1]
        self.assertIn(f"Interference (`--interference`): qwen2.5-tiny bf16 input 1 ran beside the other groups at "
                      f"{c['speed_mean']:.2f} tok/s, alone at {c['alone_mean']:.2f} ± {c['alone_std']:.2f} tok/s: "
                      f"{c['ratio']:.4f} of its speed alone", timeline)

    def refused(self, *args):
        """One line on stderr and exit status 2 (a single rank: no mpirun text around it)."""
        p = subprocess.run([QB, "--backend", "cpu", "--model", MODELS, "--threads", "1", "--context-lengths", "1,16",
                            "--generate-length", "4", *args], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 2, p.stderr)
        lines = [l for l in p.stderr.strip().splitlines() if not l.startswith("# warning: debug build")]
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertTrue(lines[0].startswith("qwenbench: error: --interference"), lines[0])
        return lines[0]

    def test_a_spec_naming_no_cell_is_refused(self):
        line = self.refused("--schedule", "packed", "--interference", "qwen2.5-tiny:bf16:2")
        self.assertIn("names none of the sweep's 8 cells", line)
        self.refused("--schedule", "packed", "--interference", "qwen2.5-tiny:bf16:1:2")

    def test_a_spec_naming_several_cells_is_refused(self):
        line = self.refused("--schedule", "packed", "--allreduce", "auto,nccl", "--interference", "sharded:bf16:16")
        self.assertIn("names 2 cells of the sweep", line)

    def test_a_malformed_spec_is_refused(self):
        for bad in ("qwen2.5-tiny:bf16", ":bf16:1", "qwen2.5-tiny:bf99:1", "qwen2.5-tiny:bf16:1:0"):
            self.refused("--schedule", "packed", "--interference", bad)

    def test_serial_is_refused(self):
        line = self.refused("--interference", SPEC)
        self.assertIn("needs --schedule packed", line)
        self.refused("--schedule", "serial", "--interference", SPEC)

    def test_help_documents_it(self):
        p = subprocess.run([QB, "--help"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("--interference MODEL:FORMAT:INPUT[:TP]", p.stdout)
        self.assertIn("with --schedule packed", p.stdout)


if __name__ == "__main__":
    QB, MPIRUN, QB_HOOKS = sys.argv[1:4]
    unittest.main(argv=sys.argv[:1] + sys.argv[4:], verbosity=2)
