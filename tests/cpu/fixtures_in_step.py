#!/usr/bin/env python3
"""fixtures_in_step.py - do tests/make_fixtures.py and the committed tests/fixtures still agree?

Regenerates every fixture checkpoint (numpy only, --weights-only with each fixture's recorded weight_seed)
into a temporary directory and requires byte-identical config.json, safetensors and index files, and prompts
in expected.json that follow the prompt rule. Catches a script edited without regenerating the fixtures
(the expected values come from transformers on the GPU machine and cannot be remade here).

  /usr/bin/python3 tests/cpu/fixtures_in_step.py tests/make_fixtures.py tests/fixtures
"""
import filecmp
import json
import os
import subprocess
import sys
import tempfile


def main():
    script, fixtures = sys.argv[1], sys.argv[2]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    import make_fixtures

    bad = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, script, "--out", tmp, "--weights-only", "--seeds-from", fixtures],
                       check=True, stdout=subprocess.DEVNULL)
        for m in make_fixtures.MODELS:
            name = m["name"]
            made = sorted(os.listdir(os.path.join(tmp, name)))
            committed = sorted(f for f in os.listdir(os.path.join(fixtures, name)) if f != "expected.json")
            if made != committed:
                bad.append(f"{name}: files {committed} committed, script makes {made}")
                continue
            for f in made:
                if not filecmp.cmp(os.path.join(tmp, name, f), os.path.join(fixtures, name, f), shallow=False):
                    bad.append(f"{name}/{f}: differs from what the script makes now")
            with open(os.path.join(fixtures, name, "expected.json")) as fh:
                expected = json.load(fh)
            for case in expected["cases"]:
                want = make_fixtures.prompt_tokens(case["prompt_seed"], case["prompt_len"], m["vocab"])
                if case["prompt"] != want:
                    bad.append(f"{name}: prompt of length {case['prompt_len']} does not follow src/bench/prompt.h")
    for line in bad:
        print("FAIL " + line, file=sys.stderr)
    if bad:
        print("fixtures and tests/make_fixtures.py are out of step: regenerate the fixtures on a machine with "
              "torch + transformers (see tests/fixtures/README.md)", file=sys.stderr)
        return 1
    print(f"fixtures in step with the script ({len(make_fixtures.MODELS)} models)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
