"""Where a binary-addition model's failures lie relative to the 1s of the answer: for each failure of a
`toolchain eval` report (failures.jsonl; its windows are truncated, so each example is regenerated whole with
`toolchain sample`, from the suite, level, family and index the failure names), the positions of the 1s of
the expected sum (least significant digit first), the first wrong position and the count of wrong symbols.
Made for the `powers_of_two` failures of docs/results.md (2026-11-29), where the answer has two 1s and the
model writes PAD where the zeros below the upper 1 should be.

    python3 tools/experiments/ones-failures.py EVAL_DIR/failures.jsonl SUITE.yaml [--family powers_of_two] [--toolchain PATH]

SUITE.yaml is the suite the report was graded on (the same seed and level gives the same examples). Prints a
Markdown table, one row per failure.
"""
import json
import os
import re
import subprocess
import sys


USAGE = "usage: ones-failures.py FAILURES.jsonl SUITE.yaml [--family F] [--toolchain PATH]"


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(2)


def main(argv):
    family, tool = "powers_of_two", None
    for flag in ("--family", "--toolchain"):
        if flag in argv:
            i = argv.index(flag)
            if i + 1 >= len(argv):
                fail(f"error: {flag} needs a value; {USAGE}")
            if flag == "--family":
                family = argv[i + 1]
            else:
                tool = argv[i + 1]
            argv = argv[:i] + argv[i + 2:]
    if len(argv) != 2:
        fail(USAGE)
    failures_path, suite = argv
    here = os.path.dirname(os.path.abspath(__file__))
    tool = tool or os.path.join(here, "..", "toolchain", "bin", "Release", "net10.0", "toolchain")
    for path, what in ((failures_path, "failures file"), (suite, "suite file"), (tool, "toolchain build (dotnet build tools/toolchain -c Release, or --toolchain PATH)")):
        if not os.path.exists(path):
            fail(f"error: {path}: no such {what}")
    print("| level | index | 1s of the sum at | first wrong | wrong symbols | distance from the first wrong to the next 1 above |")
    print("|---|---:|---|---:|---:|---:|")
    with open(failures_path) as f:
        for line in f:
            d = json.loads(line)
            if d.get("family") != family:
                continue
            sample = subprocess.run([tool, "sample", "badd", "-k", str(d["size"]), "--suite", suite, "--level", d["level"],
                                     "--family", family, "--index", str(d["index"]), "-n", "1"], capture_output=True, text=True)
            m = re.search(r"target: (\S+)", sample.stdout)
            if sample.returncode != 0 or not m:
                fail(f"error: {suite}: toolchain sample could not regenerate {d['level']} {family} #{d['index']}: {sample.stderr.strip()}")
            ones = [i for i, c in enumerate(m.group(1)) if c == "1"]
            above = [p for p in ones if p > d["first_wrong"]]
            reach = str(above[0] - d["first_wrong"]) if above else "none above"
            print(f"| {d['level']} | {d['index']} | {', '.join(map(str, ones))} | {d['first_wrong']} | {d['wrong_symbols']} | {reach} |")


if __name__ == "__main__":
    main(sys.argv[1:])
