"""test_analysis_c_writer.py - the report reads a file written by the C writer (src/results/results_file.c).

    /usr/bin/python3 tests/test_analysis_c_writer.py PATH/TO/sample.h5

The file is the results tests' sample (tests/results_sample.c: every status, strings filled to their last
byte, runs without decode steps). Every model's speed table and the CSVs must equal the file.
Exit 77 (ctest: skipped) with a message when the sample file is missing.
"""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_analysis_checks as checks  # noqa: E402

SKIP = 77
SAMPLE = None


class ReportOnCWriterFile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="qb-analysis-c-")
        cls.out = os.path.join(cls.tmp.name, "report")
        cls.proc = checks.run_report([SAMPLE, "--out", cls.out])
        if cls.proc.returncode != 0:
            raise AssertionError(f"report failed (exit {cls.proc.returncode}): {cls.proc.stderr}")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_every_model_table_equals_file(self):
        cells = checks.read_cells(SAMPLE)
        for model in dict.fromkeys(c["model"] for c in cells):
            n = checks.check_speed_table(self, SAMPLE, self.out, model, model)
            self.assertEqual(n, sum(c["model"] == model for c in cells))

    def test_csv_equals_file(self):
        checks.check_csv_equals_file(self, SAMPLE, self.out)


def main():
    global SAMPLE
    if len(sys.argv) < 2 or not os.path.isfile(sys.argv[1]):
        where = sys.argv[1] if len(sys.argv) > 1 else "(no path given)"
        print(f"SKIP: no sample results file at {where} (written by the results_roundtrip test)")
        return SKIP
    SAMPLE = os.path.abspath(sys.argv[1])
    result = unittest.main(argv=sys.argv[:1], verbosity=2, exit=False).result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
