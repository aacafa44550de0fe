"""Plots training runs' sequence accuracy against the step, from their metrics.jsonl: the training batch of the
largest bin (dropout on, mean over each 200-step window), and every length probe: at each probed size in
inference mode (the model that is exported and graded), and, where the probe measured it, the same examples
with dropout on as in training. Steps that were never probed have no point (a gap, not a 0).

    python3 tools/experiments/probe_plot.py --out docs/img/dngpu-ref-badd-probes.svg zoo/runs/dngpu-ref-badd-s1/ zoo/runs/dngpu-ref-badd-s2/
"""
import html
import json
import os
import sys

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 980, 460, 70, 360, 40, 60
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
WINDOW = 200


class InputError(Exception):
    """Bad input: one `error:` line and exit code 2."""


def metrics_records(run):
    """The records of a run folder's metrics.jsonl, in order; InputError for a missing file or a line that is not JSON."""
    path = os.path.join(run, "metrics.jsonl")
    if not os.path.exists(path):
        raise InputError(f"{path} does not exist; pass training run folders that hold metrics.jsonl")
    with open(path) as f:
        for number, line in enumerate(f, 1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                raise InputError(f"{path}:{number} is not a JSON line; repair or remove that line")


def split_out(argv, usage):
    """(the --out value, the other arguments), or None after one `error:` usage line."""
    if "--out" not in argv or argv.index("--out") + 1 >= len(argv):
        print(f"error: usage: {usage}", file=sys.stderr)
        return None
    i = argv.index("--out")
    return argv[i + 1], argv[:i] + argv[i + 2:]


def load(run):
    train, probes = {}, {}
    for record in metrics_records(run):
        if "probe" in record:
            probes[record["step"]] = record["probe"]  # a resumed run repeats steps: the last record wins
        elif "sequence_accuracy" in record:
            train[record["step"]] = record["sequence_accuracy"]
    config = os.path.join(run, "config.json")
    try:
        with open(config) as f:
            size = int(json.load(f)["train_length"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"{config} is missing or has no train_length; pass the run folder that training wrote")
    windows = {}
    for step, seq in train.items():
        windows.setdefault((step - 1) // WINDOW, []).append(seq)
    train_curve = sorted(((w + 1) * WINDOW, sum(v) / len(v)) for w, v in windows.items())
    return size, train_curve, dict(sorted(probes.items()))


def series_of(run):
    name = os.path.basename(os.path.normpath(run))
    size, train_curve, probes = load(run)
    out = [(f"{name}: training batch, size {size}, dropout on (mean of {WINDOW} steps)", train_curve, "train")]
    sizes = sorted({int(s) for p in probes.values() for s in p})
    for s in sizes:
        if s > 2 * size:
            continue
        points = [(step, p[str(s)]["sequence_accuracy"]) for step, p in probes.items() if str(s) in p]
        out.append((f"{name}: probe size {s} ({s / size:g}x), inference (exported)", points, "probe"))
        dropout = [(step, p[str(s)]["dropout_sequence_accuracy"]) for step, p in probes.items()
                   if str(s) in p and "dropout_sequence_accuracy" in p[str(s)]]
        if dropout:
            out.append((f"{name}: probe size {s} ({s / size:g}x), dropout on", dropout, "dropout"))
    return out


def wrap(label, width=44):
    lines, line = [], ""
    for w in label.split(" "):
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = (line + " " + w).strip()
    return lines + [line]


def svg(all_series, title):
    max_step = max((x for _, pts, _ in all_series for x, _ in pts), default=1)
    legend_height = sum(14 * len(wrap(label)) + 8 for label, _, _ in all_series)
    height = max(HEIGHT, TOP + legend_height + 10)  # the legend never runs off the picture
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def X(step):
        return LEFT + pw * step / max_step

    def Y(acc):
        return TOP + ph * (1 - acc)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
             f'<text x="{LEFT}" y="22" font-size="15">{html.escape(title)}</text>']
    for i in range(6):
        acc = i / 5
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{Y(acc):.1f}" y2="{Y(acc):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 8}" y="{Y(acc) + 4:.1f}" text-anchor="end">{acc * 100:.0f}%</text>')
    tick = max(500, round(max_step / 8 / 500) * 500)
    for step in range(0, int(max_step) + 1, tick):
        parts.append(f'<line x1="{X(step):.1f}" x2="{X(step):.1f}" y1="{TOP}" y2="{TOP + ph}" stroke="#eee"/>')
        parts.append(f'<text x="{X(step):.1f}" y="{TOP + ph + 18}" text-anchor="middle">{step:,}</text>')
    parts.append(f'<text x="{LEFT + pw / 2}" y="{HEIGHT - 15}" text-anchor="middle">training step</text>')
    parts.append(f'<text x="18" y="{TOP + ph / 2}" text-anchor="middle" transform="rotate(-90 18 {TOP + ph / 2})">sequence accuracy (exact answers)</text>')
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    runs = []
    for label, _, _ in all_series:
        run = label.split(":")[0]
        if run not in runs:
            runs.append(run)
    legend_y = TOP
    for label, points, kind in all_series:
        color = COLORS[runs.index(label.split(":")[0]) % len(COLORS)]
        dash = {"train": "", "probe": "", "dropout": ' stroke-dasharray="5,3"'}[kind]
        width = 1 if kind == "train" else 1.8
        opacity = ' stroke-opacity="0.45"' if kind == "train" else ""
        if "(2x)" in label or "(4x)" in label:
            dash = ' stroke-dasharray="1,3"'
        path = " ".join(f"{'M' if i == 0 else 'L'}{X(x):.1f},{Y(y):.1f}" for i, (x, y) in enumerate(points))
        if points:
            parts.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="{width}"{dash}{opacity}/>')
        if kind != "train":
            marker = "circle" if kind == "probe" else "rect"
            for x, y in points:
                if marker == "circle":
                    parts.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="2.5" fill="{color}"/>')
                else:
                    parts.append(f'<rect x="{X(x) - 2.5:.1f}" y="{Y(y) - 2.5:.1f}" width="5" height="5" fill="none" stroke="{color}"/>')
        lx = LEFT + pw + 15
        parts.append(f'<line x1="{lx}" x2="{lx + 22}" y1="{legend_y + 6}" y2="{legend_y + 6}" stroke="{color}" stroke-width="{width + 0.5}"{dash}{opacity}/>')
        lines = wrap(label)
        for j, text in enumerate(lines):
            parts.append(f'<text x="{lx + 28}" y="{legend_y + 10 + 14 * j}">{html.escape(text)}</text>')
        legend_y += 14 * len(lines) + 8
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main(argv):
    parsed = split_out(argv, "probe_plot.py --out FILE.svg RUN_DIR...")
    if parsed is None:
        return 2
    out, runs = parsed
    if not runs:
        print("error: name at least one training run folder", file=sys.stderr)
        return 2
    try:
        all_series = [s for run in runs for s in series_of(run)]
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    title = "Length probes while training: inference mode vs. dropout on (" + ", ".join(
        os.path.basename(os.path.normpath(r)) for r in runs) + ")"
    if not write_atomic(out, svg(all_series, title)):
        return 3
    print(f"wrote {out}")
    return 0


def write_atomic(path, text):
    """Writes through a temporary file and a rename; False after one `error:` line when it cannot."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        return True
    except OSError as e:
        print(f"error: cannot write {path}: {e.strerror}; choose a writable --out", file=sys.stderr)
        return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
