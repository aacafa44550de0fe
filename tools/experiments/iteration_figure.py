"""The DNGPU reference's training-speed figure, side by side with our training runs: per-symbol accuracy on
test length 401 (PAD positions included, as the reference counts them) against the training step, for binary
multiplication.

Inputs: the reference's two mean curves, digitized (reports/paper/reference-iteration.csv, from
`digitize_dngpu_figure.py --iteration`), and training run folders whose metrics.jsonl has length probes at
size 200 (input length 401, as the reference tests every 200 steps; `probe_sizes` in the run's settings).
Our points are the probes in inference mode (dropout off), as the reference tests. Writes an SVG plot and a
Markdown table; a step that was never probed has no point.

    python3 tools/experiments/iteration_figure.py --out reports/paper/bmul-iteration \
        reports/paper/reference-iteration.csv zoo/runs/dngpu-ref-bmul-s1/

Exit codes: 0 written, 2 bad input or usage, 3 the output could not be written.
"""
import csv
import html
import json
import math
import os
import sys

from probe_plot import InputError, metrics_records, split_out, wrap, write_atomic

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 900, 460, 70, 280, 40, 60
SIZE = 200  # input length 2k+1 = 401
COLOURS = ["#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
REFERENCE = [("DNGPU reference (its README figure, mean of runs, digitized)", "#1f77b4", ""),
             ("NGPU (same figure, mean of runs, digitized)", "#e377c2", ' stroke-dasharray="8,3,2,3"')]


def load_reference(path):
    try:
        with open(path) as f:
            rows = list(csv.reader(line for line in f if not line.startswith("#")))
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}; pass reports/paper/reference-iteration.csv")
    if not rows or rows[0][:1] != ["step"] or len(rows[0]) < 3:
        raise InputError(f"{path} has no 'step,dngpu...,ngpu...' header; make it with digitize_dngpu_figure.py --iteration")
    series = []
    try:
        for column in (1, 2):
            series.append([(float(r[0]), float(r[column])) for r in rows[1:] if len(r) > column and r[column]])
    except ValueError:
        raise InputError(f"{path} has a value that is not a number; make it again with digitize_dngpu_figure.py --iteration")
    return series


def load_run(run):
    points = {}
    for record in metrics_records(run):
        probe = record.get("probe", {}).get(str(SIZE)) if isinstance(record, dict) else None
        if probe and "symbol_accuracy" in probe:
            # a resumed run can repeat a step: the last record wins
            points[int(record["step"])] = (100.0 * probe["symbol_accuracy"], 100.0 * probe["sequence_accuracy"], probe.get("samples"))
    task = None
    try:
        with open(os.path.join(run, "config.json")) as f:
            task = json.load(f).get("task")
    except (OSError, ValueError):
        pass
    if task not in (None, "bmul"):
        raise InputError(f"{run} trains {task}; the reference's figure is for bmul")
    if not points:
        raise InputError(f"{os.path.join(run, 'metrics.jsonl')} has no probe at size {SIZE} (length {2 * SIZE + 1}); train with probe_sizes including {SIZE}")
    return os.path.basename(os.path.normpath(run)), sorted((s, *v) for s, v in points.items())


def svg(reference, runs, x_max):
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def X(step):
        return LEFT + pw * step / x_max

    def Y(pct):
        return TOP + ph * (100.0 - pct) / 100.0

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           f'<text x="{LEFT}" y="22" font-size="14">Binary multiplication: per-symbol accuracy on length 401 (PAD included) while training</text>']
    tick = max(500, math.ceil(x_max / 8 / 500) * 500)
    for step in range(0, int(x_max) + 1, tick):
        out.append(f'<line x1="{X(step):.1f}" y1="{TOP}" x2="{X(step):.1f}" y2="{TOP + ph}" stroke="#eee"/>')
        out.append(f'<text x="{X(step):.1f}" y="{TOP + ph + 16}" text-anchor="middle">{step:,}</text>')
    for pct in range(0, 101, 20):
        out.append(f'<line x1="{LEFT}" y1="{Y(pct):.1f}" x2="{LEFT + pw}" y2="{Y(pct):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 8}" y="{Y(pct) + 4:.1f}" text-anchor="end">{pct}%</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{LEFT + pw / 2:.0f}" y="{HEIGHT - 18}" text-anchor="middle">training step</text>')
    out.append(f'<text transform="translate(18,{TOP + ph / 2:.0f}) rotate(-90)" text-anchor="middle">per-symbol accuracy, length 401</text>')
    legend = []
    for (name, colour, dash), points in zip(REFERENCE, reference):
        shown = [(x, y) for x, y in points if x <= x_max]
        if shown:
            out.append(f'<polyline points="{" ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in shown)}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        legend.append((name, colour, dash, False))
    for i, (name, points) in enumerate(runs):
        colour = COLOURS[i % len(COLOURS)]
        out.append(f'<polyline points="{" ".join(f"{X(s):.1f},{Y(sym):.1f}" for s, sym, _, _ in points)}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for s, sym, seq, n in points:
            out.append(f'<circle cx="{X(s):.1f}" cy="{Y(sym):.1f}" r="3" fill="{colour}"><title>step {s:,}: {sym:.1f}% per symbol, {seq:.0f}% exact ({n} samples)</title></circle>')
        legend.append((f"{name} (ours, probe: {points[0][3]} random examples, inference mode)", colour, "", True))
    ly = TOP + 10
    for name, colour, dash, marker in legend:
        lx = LEFT + pw + 14
        out.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 26}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/>')
        if marker:
            out.append(f'<circle cx="{lx + 13}" cy="{ly}" r="3" fill="{colour}"/>')
        lines = wrap(name, 34)
        for j, text in enumerate(lines):
            out.append(f'<text x="{lx + 32}" y="{ly + 4 + 14 * j}">{html.escape(text)}</text>')
        ly += 14 * len(lines) + 12
    out.append("</svg>")
    return "\n".join(out) + "\n"


def at(series, step):
    """The digitized value at the pixel column nearest the step (columns are about 54 steps apart), or None."""
    near = min(series, key=lambda p: abs(p[0] - step), default=None)
    return near[1] if near and abs(near[0] - step) <= 60 else None


def table(reference, runs):
    names = [n for n, _ in runs]
    lines = ["| step | " + " | ".join(f"{n} (ours)" for n in names) + " | DNGPU reference (digitized) | NGPU (digitized) |",
             "|---:|" + "---:|" * (len(runs) + 2)]
    for step in sorted({s for _, pts in runs for s, _, _, _ in pts}):
        cells = []
        for _, pts in runs:
            hit = [p for p in pts if p[0] == step]
            cells.append(f"{hit[0][1]:.2f}% (seq {hit[0][2]:.0f}%)" if hit else "not probed")
        for series in reference:
            value = at(series, step)
            cells.append(f"{value:.1f}%" if value is not None else "-")
        lines.append(f"| {step:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv):
    parsed = split_out(argv, "iteration_figure.py --out PREFIX REFERENCE.csv RUN_DIR [RUN_DIR ...]")
    if parsed is None:
        return 2
    prefix, rest = parsed
    if len(rest) < 2:
        print("error: name the digitized reference CSV and at least one training run folder", file=sys.stderr)
        return 2
    try:
        reference = load_reference(rest[0])
        runs = [load_run(r) for r in rest[1:]]
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    last = max(s for _, pts in runs for s, _, _, _ in pts)
    x_max = min(40000, max(3000, math.ceil(1.3 * last / 1000) * 1000))
    for suffix, text in ((".svg", svg(reference, runs, x_max)), (".md", table(reference, runs))):
        if not write_atomic(prefix + suffix, text):
            return 3
    print(f"wrote {prefix}.svg and {prefix}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
