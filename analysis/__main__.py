"""python3 -m analysis FILE.h5 ... --out DIR: the same as python3 -m analysis.report."""
import sys

from analysis.report import main

sys.exit(main())
