#!/usr/bin/python3
"""compare_tokens.py - do two qwenbench results files hold the same generated tokens?

    python3 tests/compare_tokens.py BASE.h5 NEW.h5

Cells are matched by (model, quant, context_len, tp_size); each cell's runs are compared in repetition order
(greedy decoding: every run of a cell gives the same tokens). Prints one line per cell of BASE:
"<model> <quant> input <n>: equal", or "... first difference at step S (run R): base T, new U", or "... missing
in NEW". Exit 0 when every cell is equal, 1 when one differs or is missing, 2 when a file cannot be read.
Used by tests/device/cuda.sh's `options` phase (the before/after comparison of two builds); it reads only
the fields both the old and the new results layout have.
"""
import sys

import h5py


def _text(value):
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def read_cells(path):
    """{(model, quant, context_len, tp_size): [token list of each run, in repetition order]}"""
    with h5py.File(path, "r") as f:
        cells, runs, tokens = f["cells"][()], f["runs"][()], f["generated_tokens"][()]
    out = {}
    for i, c in enumerate(cells):
        key = (_text(c["model"]), _text(c["quant"]), int(c["context_len"]), int(c["tp_size"]))
        mine = sorted((r for r in runs if int(r["cell"]) == i), key=lambda r: int(r["repetition"]))
        out[key] = [tokens[int(r["token_offset"]): int(r["token_offset"]) + int(r["n_gen"])].tolist() for r in mine]
    return out


def first_difference(base_runs, new_runs):
    """None when equal, else (run, step, base token, new token); a token is None past the end of its run."""
    for run, (a, b) in enumerate(zip(base_runs, new_runs)):
        for step in range(max(len(a), len(b))):
            ta = a[step] if step < len(a) else None
            tb = b[step] if step < len(b) else None
            if ta != tb:
                return (run, step, ta, tb)
    return None


def compare(base_path, new_path):
    """[(cell label, verdict)] for each cell of base_path; verdict starts with "equal" when the tokens agree."""
    base, new = read_cells(base_path), read_cells(new_path)
    result = []
    for key, base_runs in base.items():
        label = f"{key[0]} {key[1]} input {key[2]}" + (f" tp{key[3]}" if key[3] != 1 else "")
        if key not in new:
            result.append((label, "missing in the new file"))
            continue
        d = first_difference(base_runs, new[key])
        if not base_runs or len(base_runs) != len(new[key]):
            result.append((label, f"runs differ in number: base {len(base_runs)}, new {len(new[key])}"))
        elif d is None:
            result.append((label, "equal"))
        else:
            result.append((label, f"first difference at step {d[1]} (run {d[0]}): base {d[2]}, new {d[3]}"))
    return result


def main(argv):
    if len(argv) != 3:
        print("usage: compare_tokens.py BASE.h5 NEW.h5", file=sys.stderr)
        return 2
    try:
        verdicts = compare(argv[1], argv[2])
    except (OSError, KeyError, ValueError) as e:
        print(f"compare_tokens.py: {ascii(str(e))}", file=sys.stderr)
        return 2
    for label, verdict in verdicts:
        print(f"{label}: {verdict}")
    return 0 if verdicts and all(v == "equal" for _, v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
