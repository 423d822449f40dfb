# tests/device/lib.sh - shell functions shared by the GPU-machine scripts (tests/device/cuda.sh,
# tests/device/tp.sh); sourced, not run.
expect_from() { # results file, engine name -> --expect-tokens JSON of its cells' first run's generated tokens
  python3 - "$@" <<'PY'
import sys, json, h5py
f = h5py.File(sys.argv[1])
cells, runs, toks = f["cells"][()], f["runs"][()], f["generated_tokens"][()]
out = []
for i, c in enumerate(cells):
    r = next(r for r in runs if r["cell"] == i)
    t = toks[int(r["token_offset"]): int(r["token_offset"]) + int(r["n_gen"])].tolist()
    out.append({"model": c["model"].decode(), "context_len": int(c["context_len"]), "tokens": t})
print(json.dumps({"engine": sys.argv[2], "cells": out}))
PY
}
