"""test_analysis_timeline.py - the report's timeline (Gantt chart) of a sweep from the runs' start/end times.

    /usr/bin/python3 tests/test_analysis_timeline.py                        # synthetic files (h5py)
    /usr/bin/python3 tests/test_analysis_timeline.py PATH/TO/qwenbench PATH/TO/mpirun    # a real packed sweep

Synthetic: a file whose four cells ran on two groups of ranks at known times gives the timeline's rows, the
runs' offsets from the first start, each cell's share of time beside another group's runs (cells.csv
beside_others_pct) and the summary line (groups, span, runs at once, cells beside others); a file without the
per-run times, or with NaN times, gets a note instead of a plot, and the report still succeeds.
Real: `qwenbench --backend cpu --schedule packed` under mpirun -np 2 (two models: one per group), then the
report: a timeline with both groups and every timed run. Exit 77 (ctest: skipped) when the binary is missing.
"""
import os
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_analysis_checks as checks  # noqa: E402
import test_analysis_synth as synth  # noqa: E402

SKIP = 77
QWENBENCH = MPIRUN = None
FIX = os.environ.get("QB_FIXTURE_DIR", os.path.join(checks.HERE, "fixtures"))
T0 = 1_765_000_000.0  # an arbitrary Unix time: the timeline counts from the first start
# (group of ranks, [(start, end) of each run, seconds after T0]) of each of the four cells, in file order
PLACED = [("0", [(0.0, 1.0), (1.0, 2.0)]), ("1", [(0.5, 1.5), (1.5, 2.5)]),
          ("0", [(3.0, 4.0), (4.0, 5.0)]), ("1", [(3.0, 4.5), (4.5, 6.0)])]
PLACEMENT_FIELDS = [("ranks", "S64"), ("hosts", "S256"), ("devices", "S512")]
TIME_FIELDS = [("start_unix_s", "<f8"), ("end_unix_s", "<f8")]


def with_fields(array, fields, values):
    """A copy of a structured array with fields added; values: {field: sequence}."""
    out = np.zeros(array.shape, dtype=np.dtype(array.dtype.descr + fields))
    for name in array.dtype.names:
        out[name] = array[name]
    for name, column in values.items():
        out[name] = column
    return out


def write_placed(path, times=True, nan_times=False):
    """Four cells (bf16/gptq-int4 x input 1/6144, TP1, two runs each) placed as PLACED; times: write the run
    time fields (NaN when nan_times)."""
    cells = [synth.cell(quant=q, context_len=n, repetitions=2) for q in ("bf16", "gptq-int4") for n in (1, 6144)]
    data = synth.build(cells)
    groups = [g for g, _ in PLACED]
    data["cells"] = with_fields(data["cells"], PLACEMENT_FIELDS, {
        "ranks": [g.encode() for g in groups], "hosts": [b"node-a"] * 4,
        "devices": [f"GPU-{g}a2b3c4d-0000".encode() for g in groups]})
    if times:
        spans = [s for _, runs in PLACED for s in runs]
        start = [np.nan if nan_times else T0 + s for s, _ in spans]
        end = [np.nan if nan_times else T0 + e for _, e in spans]
        data["runs"] = with_fields(data["runs"], TIME_FIELDS, {"start_unix_s": start, "end_unix_s": end})
    with h5py.File(path, "w") as f:
        for k, v in synth.DEFAULT_META.items():
            f.attrs[k] = v
        f.attrs["schema_version"] = np.int32(1)
        f.attrs["copy_bandwidth_gbps"] = np.float64(3000.0)
        for name in ("cells", "rank_memory", "runs", "step_latency_s", "generated_tokens"):
            f.create_dataset(name, data=data[name])


def timeline_section(out_dir):
    with open(os.path.join(out_dir, "report.md"), encoding="utf-8") as f:
        md = f.read()
    assert "## Timeline" in md, "report.md has no timeline section"
    return md.split("## Timeline", 1)[1].split("\n## ", 1)[0].split("Roofline not computed", 1)[0]


class SyntheticTimeline(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="qb-timeline-")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def report(self, name, *paths):
        out = os.path.join(self.tmp.name, name)
        proc = checks.run_report([*paths, "--out", out, "--published", "none"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return out, proc

    def test_rows_and_offsets(self):
        path = os.path.join(self.tmp.name, "placed-frame.h5")
        write_placed(path)
        if checks.ROOT not in sys.path:
            sys.path.insert(0, checks.ROOT)
        from analysis import plots, report
        from analysis.load import load_results
        cells, runs = report.combine([load_results(path)], [False], None)
        times = plots.run_times(cells, runs)
        self.assertEqual(len(times), 8)
        self.assertEqual(list(times["where"]), [f"ranks {g} on node-a [{g}a2b3c4d]" for g, r in PLACED for _ in r])
        self.assertEqual(list(times["cell"][::2]), ["bf16 TP1 in 1", "bf16 TP1 in 6144", "gptq-int4 TP1 in 1",
                                                    "gptq-int4 TP1 in 6144"])
        want = [s for _, r in PLACED for s in r]
        np.testing.assert_allclose(times[["start_s", "end_s"]].to_numpy(), want, atol=1e-6)
        self.assertEqual(plots.most_at_once(times), 2)
        beside = plots.beside_others_pct(times)
        np.testing.assert_allclose([beside[f"0:{k}"] for k in range(4)], [75.0, 75.0, 100.0, 200.0 / 3], atol=1e-9)

    def test_report_plots_the_timeline(self):
        path = os.path.join(self.tmp.name, "placed.h5")
        write_placed(path)
        out, proc = self.report("placed", path)
        self.assertIn("timeline.png", proc.stdout)
        checks.check_png(self, os.path.join(out, "timeline.png"))
        section = timeline_section(out)
        self.assertIn("`placed.h5`: 8 timed runs of 4 cells on 2 groups of ranks over 6 s; at most 2 runs at once; "
                      "4 of 4 cells ran beside another group's runs (all their timed runs: 1;", section)
        import pandas as pd
        csv = pd.read_csv(os.path.join(out, "cells.csv"), float_precision="round_trip")
        np.testing.assert_allclose(csv["beside_others_pct"], [75.0, 75.0, 100.0, 200.0 / 3], atol=1e-9)
        self.assertIn("![timeline.png](timeline.png)", section)

    def test_runs_one_after_another_are_one_at_once(self):
        path = os.path.join(self.tmp.name, "serial.h5")
        synth_cells = [synth.cell(context_len=n, repetitions=2) for n in (1, 6144)]
        data = synth.write(path, cells=synth_cells)
        starts = T0 + np.arange(len(data["runs"]), dtype=float)
        runs = with_fields(data["runs"], TIME_FIELDS, {"start_unix_s": starts, "end_unix_s": starts + 1.0})
        with h5py.File(path, "a") as f:
            del f["runs"]
            f.create_dataset("runs", data=runs)
        out, _ = self.report("serial", path)
        section = timeline_section(out)
        self.assertIn("`serial.h5`: 4 timed runs of 2 cells on 1 group of ranks over 4 s; at most 1 run at once; "
                      "0 of 2 cells ran beside another group's runs", section)
        checks.check_png(self, os.path.join(out, "timeline.png"))

    def check_note(self, name, path):
        out, _ = self.report(name, path)
        self.assertIn(f"Not plotted for `{os.path.basename(path)}`: its runs have no start/end times",
                      timeline_section(out))
        self.assertFalse(any(n.startswith("timeline") for n in os.listdir(out)), os.listdir(out))
        import pandas as pd
        self.assertTrue(pd.read_csv(os.path.join(out, "cells.csv"))["beside_others_pct"].isna().all())

    def test_file_without_run_times_gets_a_note(self):
        path = os.path.join(self.tmp.name, "untimed.h5")
        write_placed(path, times=False)
        self.check_note("untimed", path)

    def test_nan_run_times_get_a_note(self):
        path = os.path.join(self.tmp.name, "nan.h5")
        write_placed(path, nan_times=True)
        self.check_note("nan", path)

    def test_several_files_each_on_its_own_clock(self):
        a, b = os.path.join(self.tmp.name, "a.h5"), os.path.join(self.tmp.name, "b.h5")
        write_placed(a)
        write_placed(b, times=False)
        out, _ = self.report("two", a, b)
        section = timeline_section(out)
        self.assertIn("`a.h5`: 8 timed runs", section)
        self.assertIn("Not plotted for `b.h5`", section)
        checks.check_png(self, os.path.join(out, "timeline_1_a.h5.png"))


class PackedTimeline(unittest.TestCase):
    def test_packed_cpu_sweep(self):
        with tempfile.TemporaryDirectory(prefix="qb-timeline-packed-") as tmp:
            h5 = os.path.join(tmp, "packed.h5")
            run = subprocess.run([MPIRUN, "-np", "2", "--oversubscribe", "--bind-to", "none", QWENBENCH,
                                  "--backend", "cpu", "--model", "qwen2.5-tiny," + os.path.join(FIX, "gqa_untied"),
                                  "--threads", "1", "--context-lengths", "1,8", "--generate-length", "4",
                                  "--repetitions", "2", "--schedule", "packed", "--out", h5],
                                 capture_output=True, text=True, timeout=300)
            self.assertEqual(run.returncode, 0, run.stderr)
            out = os.path.join(tmp, "report")
            proc = checks.run_report([h5, "--out", out, "--published", "none"])
            self.assertEqual(proc.returncode, 0, proc.stderr)
            checks.check_png(self, os.path.join(out, "timeline.png"))
            with h5py.File(h5, "r") as f:
                n_runs = len(f["runs"])
            self.assertEqual(n_runs, 8)
            # two units (one per model) and two groups: each group starts one unit
            self.assertIn(f"`packed.h5`: {n_runs} timed runs of 4 cells on 2 groups of ranks", timeline_section(out))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        QWENBENCH, MPIRUN = sys.argv[1], sys.argv[2]
        if not os.path.isfile(QWENBENCH):
            print(f"skipped: {QWENBENCH} not built", file=sys.stderr)
            sys.exit(SKIP)
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(PackedTimeline)
    else:
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(SyntheticTimeline)
    sys.exit(0 if unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful() else 1)
