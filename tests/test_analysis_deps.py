"""test_analysis_deps.py - the analysis under a python3 that lacks h5py/pandas/matplotlib: one line, exit 2.

Two interpreters without the packages: Debian's python3 with a sitecustomize.py (first on PYTHONPATH) that
makes the imports of h5py and pandas fail, and a venv made from it without system packages (skipped when the
venv module is missing). `python3 -m analysis.report`, `-m analysis` and `-m analysis.compare` must each print
exactly one line on stderr naming the missing modules, the interpreter and the fix, and exit with status 2;
a library import (`import analysis.load`) raises MissingPackages (an ImportError) with the same text.
Run: /usr/bin/python3 tests/test_analysis_deps.py   (exit status 0 = pass)
"""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_analysis_checks as checks  # noqa: E402

FIX = "apt-get install python3-h5py python3-pandas python3-matplotlib"
BLOCKER = '''
import sys
class _Blocked:
    """Refuse h5py and pandas as if they were not installed."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("h5py", "pandas"):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return None
sys.meta_path.insert(0, _Blocked())
'''
COMMANDS = (("analysis.report", "qwenbench-report"), ("analysis", "qwenbench-report"),
            ("analysis.compare", "qwenbench-compare"))


class MissingPackages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="qb-deps-")
        cls.site = os.path.join(cls.tmp.name, "site")
        os.makedirs(cls.site)
        with open(os.path.join(cls.site, "sitecustomize.py"), "w") as f:
            f.write(BLOCKER)
        cls.h5 = os.path.join(cls.tmp.name, "results.h5")
        with open(cls.h5, "wb") as f:
            f.write(b"not read: the check comes first")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_python(self, python, args, pythonpath):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(pythonpath), PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONHOME", None)
        return subprocess.run([python] + args, cwd=checks.ROOT, env=env, capture_output=True, text=True,
                              timeout=120)

    def check_commands(self, python, pythonpath, missing, run_with_hint):
        for module, prog in COMMANDS:
            args = ["-m", module, self.h5, self.h5] + (["--out", self.tmp.name] if module != "analysis.compare" else [])
            proc = self.run_python(python, args, pythonpath)
            where = f"{python} -m {module}"
            self.assertEqual(proc.returncode, 2, f"{where}: exit {proc.returncode}, stderr {proc.stderr}")
            lines = proc.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, f"{where}: not one line: {proc.stderr}")
            line = lines[0]
            self.assertTrue(line.startswith(f"{prog}: error: missing Python module(s) {missing} in {python} "
                                            "(Python 3."), f"{where}: {line}")
            self.assertIn(FIX, line)
            self.assertEqual("or run with /usr/bin/python3" in line, run_with_hint, f"{where}: {line}")
            self.assertEqual(proc.stdout, "")
        proc = self.run_python(python, ["-c", "import analysis.load"], pythonpath)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn(f"analysis.deps.MissingPackages: missing Python module(s) {missing}", proc.stderr)

    def test_imports_blocked_by_sitecustomize(self):
        self.assertTrue(os.path.exists("/usr/bin/python3"))
        self.check_commands("/usr/bin/python3", [self.site, checks.ROOT], "h5py, pandas", run_with_hint=False)

    def test_venv_without_system_packages(self):
        venv = os.path.join(self.tmp.name, "venv")
        made = subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", venv], capture_output=True,
                              text=True, timeout=120)
        python = os.path.join(venv, "bin", "python3")
        if made.returncode != 0 or not os.path.exists(python):
            self.skipTest(f"cannot make a venv: {made.stderr.strip()[-200:]}")
        probe = self.run_python(python, ["-c", "import numpy"], [])
        missing = "h5py, pandas, matplotlib" if probe.returncode == 0 else "numpy, h5py, pandas, matplotlib"
        self.check_commands(python, [checks.ROOT], missing, run_with_hint=True)

    def test_packages_present_no_message(self):
        proc = self.run_python("/usr/bin/python3", ["-c", "import analysis.deps as d; print(d.missing_modules())"],
                               [checks.ROOT])
        self.assertEqual(proc.stdout.strip(), "[]", proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
