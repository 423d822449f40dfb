#!/usr/bin/python3
"""results_pandas_check.py - a results file read by h5py + pandas gives the numbers qwenbench wrote.

Usage: /usr/bin/python3 results_pandas_check.py SAMPLE.h5 EXPECTED.txt
SAMPLE.h5 and EXPECTED.txt come from results_roundtrip_test (EXPECTED.txt: "name value" lines printed by
the C side with %.17g, so floats compare exactly: tolerance 0, the file holds the same IEEE doubles).
/cells is read with the one line documented in docs/RESULTS.md; strings in compounds come back as bytes,
root attributes as str. Exits 1 listing the first mismatches.
"""
import sys

import h5py
import pandas


def main(path, expected_path):
    cells = pandas.DataFrame(h5py.File(path)["cells"][()])  # the documented one-line recipe
    f = h5py.File(path, "r")
    runs = pandas.DataFrame(f["runs"][()])
    arrays = {"step_latency_s": f["step_latency_s"][()], "generated_tokens": f["generated_tokens"][()]}
    tables = {"cells": cells, "runs": runs}
    mismatches, checked = [], 0
    with open(expected_path, encoding="utf-8") as lines:
        for line in lines:
            key, _, want = line.rstrip("\n").partition(" ")
            parts = key.split(".")
            if parts[0] == "attr":
                got = f.attrs[parts[1]]
            elif parts[0] in tables:
                got = tables[parts[0]].loc[int(parts[1]), parts[2]]
            else:
                got = arrays[parts[0]][int(parts[1])]
            if isinstance(got, bytes):
                ok = got.decode("utf-8") == want
            elif isinstance(got, str):
                ok = got == want
            else:
                ok = float(got) == float(want) if "." in want or "e" in want else int(got) == int(want)
            checked += 1
            if not ok:
                mismatches.append(f"{key}: file has {got!r}, C wrote {want!r}")
    if len(arrays["step_latency_s"]) != sum(1 for k in open(expected_path) if k.startswith("step_latency_s.")):
        mismatches.append("step_latency_s: length differs from the values the C side wrote")
    if mismatches:
        print(f"FAIL: {len(mismatches)} of {checked} values differ (exact comparison):", file=sys.stderr)
        for m in mismatches[:10]:
            print("  " + m, file=sys.stderr)
        return 1
    print(f"results_pandas_check: {checked} values equal; {len(cells)} cells, {len(runs)} runs read by pandas")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
