"""qwenbench analysis: read qwenbench HDF5 results files and write the report (tables, CSV, plots).

Run:  /usr/bin/python3 -m analysis.report results.h5 --out report/
Modules: load (read + validate a file), peer_json (the transformers peer's JSON as a file), roofline (bandwidth floor), compare (published table, peer engine),
tables (markdown), plots (PNG), report (the command).
"""
