"""deps.py - the third-party packages the analysis needs, checked before they are imported.

A python3 without them (e.g. a pyenv interpreter ahead of Debian's on PATH) gets one line naming the missing
modules, the interpreter and the fix, instead of a ModuleNotFoundError traceback:

    qwenbench-report: error: missing Python module(s) h5py, pandas in /root/.pyenv/versions/3.11.7/bin/python3
    (Python 3.11.7): apt-get install python3-h5py python3-pandas python3-matplotlib, or run with /usr/bin/python3

Commands (python3 -m analysis.report / .compare) call require(__name__, PROG) before their other imports: run as
__main__ it prints that line on stderr and exits with status 2. Imported as a library, the same text is raised as
MissingPackages (an ImportError).
"""
import importlib
import os
import sys

REQUIRED_MODULES = ("numpy", "h5py", "pandas", "matplotlib")
SYSTEM_PYTHON = "/usr/bin/python3"
INSTALL_HINT = "apt-get install python3-h5py python3-pandas python3-matplotlib"
EXIT_MISSING = 2


class MissingPackages(ImportError):
    """Some of REQUIRED_MODULES cannot be imported; the message is the one line to show."""


def missing_modules(modules=REQUIRED_MODULES):
    """The modules of `modules` that this interpreter cannot import (a broken install counts as missing)."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # ImportError, or an install that fails while importing
            missing.append(name)
    return missing


def missing_message(missing):
    """The one line: which modules, which interpreter, and how to fix it."""
    python = sys.executable or "python3"
    fix = INSTALL_HINT
    if os.path.abspath(python) != SYSTEM_PYTHON and os.path.exists(SYSTEM_PYTHON):  # a venv's python too
        fix += f", or run with {SYSTEM_PYTHON}"
    version = ".".join(str(v) for v in sys.version_info[:3])
    return f"missing Python module(s) {', '.join(missing)} in {python} (Python {version}): {fix}"


def require(module_name, prog="qwenbench-analysis"):
    """Stop early when a required package is missing: exit 2 with one line when module_name is '__main__'
    (the module runs as a command), else raise MissingPackages."""
    missing = missing_modules()
    if not missing:
        return
    text = missing_message(missing)
    if module_name == "__main__":
        print(f"{prog}: error: {text}", file=sys.stderr)
        sys.exit(EXIT_MISSING)
    raise MissingPackages(text)
