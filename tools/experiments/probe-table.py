"""Prints a Markdown table of the length-generalization probes of training runs (metrics.jsonl "probe" lines):
for each run, the last probe's sequence accuracy (symbol accuracy in brackets; then the sequence accuracy with
dropout on, where the probe measured it) at every probed size, and the
best sequence accuracy any probe of the run reached at 2x or more. The training size comes from each run's
config.json (train_length); --train-size overrides it. Runs of different training sizes go in separate calls.

    python3 tools/experiments/probe-table.py zoo/experiments/size10/*/ [--train-size 10]
    python3 tools/experiments/probe-table.py zoo/runs/dngpu-ref-badd-s*/
"""
import json
import os
import sys


def main(argv):
    train_size = None
    if "--train-size" in argv:
        i = argv.index("--train-size")
        train_size = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    rows, sizes = [], set()
    for run in argv:
        path = os.path.join(run, "metrics.jsonl")
        if not os.path.exists(path):
            if os.path.exists(os.path.join(run, "config.json")):
                print(f"error: {path} does not exist; pass run folders that hold metrics.jsonl", file=sys.stderr)
                return 2
            continue  # not a run folder (a glob also matches e.g. graded/)
        probes, last_step = [], 0
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if "probe" in record:
                    probes.append(record)
                else:
                    last_step = max(last_step, record["step"])
        for p in probes:
            sizes.update(int(s) for s in p["probe"])
        config_path = os.path.join(run, "config.json")
        if os.path.exists(config_path):
            with open(config_path) as f:
                run_size = json.load(f).get("train_length")
            if train_size is None:
                train_size = run_size
            elif run_size is not None and run_size != train_size and "--train-size" not in sys.argv:
                print(f"error: {run} trains at size {run_size}, the runs before it at {train_size}; table them separately", file=sys.stderr)
                return 2
        rows.append((os.path.basename(os.path.normpath(run)), last_step, probes))
    sizes = sorted(sizes)
    if train_size is None:
        train_size = 10  # no config.json: the size-10 experiment's runs
    header = ["run", "steps", "probed at"] + [f"{s} ({s / train_size:g}x)" for s in sizes] + ["best seq at >= 2x (step)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, steps, probes in rows:
        if not probes:
            print(f"| {name} | {steps:,} | - |" + " - |" * (len(sizes) + 1))
            continue
        last = probes[-1]
        cells = []
        for s in sizes:
            p = last["probe"].get(str(s))
            cell = "-" if p is None else f"{p['sequence_accuracy'] * 100:.0f}% ({p['symbol_accuracy'] * 100:.1f}%)"
            if p is not None and "dropout_sequence_accuracy" in p:
                cell += f", dropout on {p['dropout_sequence_accuracy'] * 100:.0f}%"
            cells.append(cell)
        best, best_step = -1.0, None
        for p in probes:
            for s, v in p["probe"].items():
                if int(s) >= 2 * train_size and v["sequence_accuracy"] > best:
                    best, best_step = v["sequence_accuracy"], p["step"]
        best_cell = "-" if best < 0 else f"{best * 100:.0f}% ({best_step:,})"
        print(f"| {name} | {steps:,} | {last['step']:,} | " + " | ".join(cells) + f" | {best_cell} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
