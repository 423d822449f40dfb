"""test_analysis_errors.py - unusable inputs give one clear line on stderr and exit status 1, never a traceback.

Each case builds a broken file (missing file, not HDF5, a missing dataset, a malformed dataset or field, an
offset pointing outside its dataset, an unknown schema version) and checks the message names the file and the
thing at fault.
Run: /usr/bin/python3 tests/test_analysis_errors.py   (exit status 0 = pass)
"""
import os
import sys
import tempfile
import unittest

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_analysis_checks as checks  # noqa: E402
import test_analysis_synth as synth  # noqa: E402

PREFIX = "qwenbench-report: error: "


class MalformedInputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="qb-analysis-err-")
        cls.good = synth.build(synth.default_cells())

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def assert_clear_error(self, path, *fragments, extra=(), named=None, subprocess=False):
        """Run the report on path; the one stderr line must name `named` (default: path) and the fragments.
        In this process by default (fast); subprocess=True runs the real command line."""
        out = self.path("out-" + os.path.basename(path))
        run = checks.run_report if subprocess else checks.run_report_in_process
        proc = run([path, "--out", out] + list(extra))
        self.assertEqual(proc.returncode, 1, f"exit status {proc.returncode}, stderr: {proc.stderr!r}")
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, f"expected one line on stderr, got: {proc.stderr!r}")
        self.assertTrue(lines[0].startswith(PREFIX), lines[0])
        self.assertNotIn("Traceback", proc.stderr)
        for frag in (named or path,) + fragments:
            self.assertIn(frag, lines[0], f"message should name '{frag}': {lines[0]}")
        return lines[0]

    def test_missing_file(self):
        self.assert_clear_error(self.path("nope.h5"), "no such file", subprocess=True)

    def test_not_hdf5(self):
        p = self.path("text.h5")
        with open(p, "w") as f:
            f.write("model,tok_s\nqwen,1\n")
        self.assert_clear_error(p, "not an HDF5 file", subprocess=True)

    def test_empty_file(self):
        p = self.path("empty.h5")
        open(p, "w").close()
        self.assert_clear_error(p, "not an HDF5 file")

    def test_missing_datasets(self):
        for name in ("cells", "runs", "rank_memory", "step_latency_s", "generated_tokens"):
            p = self.path(f"no-{name}.h5")
            synth.write(p, skip=(name,))
            self.assert_clear_error(p, f"missing dataset /{name}")

    def test_missing_field(self):
        cells = self.good["cells"]
        names = [n for n in cells.dtype.names if n != "speed_mean"]
        p = self.path("no-speed-mean.h5")
        synth.write(p, replace={"cells": cells[names].copy()})
        self.assert_clear_error(p, "/cells", "'speed_mean'")

    def test_not_compound(self):
        p = self.path("cells-floats.h5")
        synth.write(p, replace={"cells": np.zeros(4)})
        self.assert_clear_error(p, "/cells", "not a compound dataset")

    def test_wrong_field_type(self):
        runs = self.good["runs"]
        dt = np.dtype([(n, "S8" if n == "n_gen" else runs.dtype[n]) for n in runs.dtype.names])
        bad = np.zeros(len(runs), dtype=dt)
        for n in runs.dtype.names:
            if n != "n_gen":
                bad[n] = runs[n]
        p = self.path("runs-ngen-string.h5")
        synth.write(p, replace={"runs": bad})
        self.assert_clear_error(p, "/runs", "'n_gen'", "integer")

    def test_two_dimensional_steps(self):
        p = self.path("steps-2d.h5")
        synth.write(p, replace={"step_latency_s": np.zeros((3, 2))})
        self.assert_clear_error(p, "/step_latency_s", "1-D")

    def test_step_offset_outside(self):
        runs = self.good["runs"].copy()
        runs["step_offset"][2] = len(self.good["step_latency_s"])
        p = self.path("step-offset.h5")
        synth.write(p, replace={"runs": runs})
        self.assert_clear_error(p, "/runs row 2", "/step_latency_s")

    def test_first_run_outside(self):
        cells = self.good["cells"].copy()
        cells["first_run"][0] = 10_000
        p = self.path("first-run.h5")
        synth.write(p, replace={"cells": cells})
        self.assert_clear_error(p, "/cells row 0", "/runs")

    def test_unknown_status(self):
        cells = self.good["cells"].copy()
        cells["status"][1] = b"GREAT"
        p = self.path("status.h5")
        synth.write(p, replace={"cells": cells})
        self.assert_clear_error(p, "unknown status 'GREAT'")

    def test_schema_version(self):
        p = self.path("schema-9.h5")
        synth.write(p)
        with h5py.File(p, "a") as f:
            f.attrs["schema_version"] = np.int32(9)
        self.assert_clear_error(p, "schema_version 9")
        with h5py.File(p, "a") as f:
            del f.attrs["schema_version"]
        self.assert_clear_error(p, "schema_version")

    def test_bad_peer_and_published(self):
        good = self.path("good.h5")
        synth.write(good)
        missing = self.path("no-peer.h5")
        self.assert_clear_error(good, "no such file", extra=["--peer", missing], named=missing)
        bad_csv = self.path("pub.csv")
        with open(bad_csv, "w") as f:
            f.write("model,engine\nx,y\n")
        self.assert_clear_error(good, "lacks column", extra=["--published", bad_csv], named=bad_csv)


if __name__ == "__main__":
    unittest.main(verbosity=2)
