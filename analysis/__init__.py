"""qwenbench analysis: read qwenbench HDF5 results files and write the report (tables, CSV, plots).

Run:  /usr/bin/python3 -m analysis.report results.h5 --out report/
Compare runs: /usr/bin/python3 -m analysis.compare A.h5 B.h5
Modules: deps (the package check), load (read + validate a file), peer_json (the transformers peer's JSON as a
file), roofline (bandwidth floor), compare (another run, published table, peer engine), tables (markdown),
plots (PNG), report (the command).
"""
