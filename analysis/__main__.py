"""python3 -m analysis FILE.h5 ... --out DIR: the same as python3 -m analysis.report."""
import sys

from analysis.deps import require

require(__name__, "qwenbench-report")

from analysis.report import main  # noqa: E402  (after the package check)

sys.exit(main())
