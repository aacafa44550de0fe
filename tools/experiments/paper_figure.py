"""The DNGPU reference's generalization figure, side by side with our models: per-symbol accuracy (PAD
positions included, as the reference counts them) against test length, for binary multiplication.

Inputs: the reference's two mean curves, digitized (reports/paper/reference-curves.csv, from
digitize_dngpu_figure.py), and any number of `toolchain eval` results.json files of our bmul models, graded on
reports/paper/bmul-lengths.yaml. Writes an SVG plot and a Markdown table.

    toolchain eval models/dngpu-bmul.onnx --suite reports/paper/bmul-lengths.yaml --out /tmp/paper-dngpu-bmul
    python3 tools/experiments/paper_figure.py --out reports/paper/bmul-generalization \
        reports/paper/reference-curves.csv /tmp/paper-dngpu-bmul/results.json
"""
import csv
import html
import json
import os
import sys

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 860, 460, 70, 250, 40, 60
X_MAX = 4000.0


def load_reference(path):
    rows = [r for r in csv.reader(line for line in open(path) if not line.startswith("#"))]
    header, rows = rows[0], rows[1:]
    series = {}
    for column, name in ((1, "DNGPU reference (its README figure, mean of runs)"), (2, "NGPU (same figure, mean of runs)")):
        series[name] = [(float(r[0]), float(r[column])) for r in rows if r[column]]
    return series


def fail(message):
    """Bad input: one line on stderr and exit code 2, as the toolchain's own commands."""
    print(message, file=sys.stderr)
    sys.exit(2)


def load_results(arg):
    # NAME=RESULTS.json names the series (two models exported under one file name, say); RESULTS.json alone is
    # named by its model file
    label, path = arg.split("=", 1) if "=" in arg and not os.path.exists(arg) else (None, arg)
    if not os.path.exists(path):
        fail(f"error: {path}: no such results file; grade the model first (toolchain eval ... --out DIR) and pass DIR/results.json")
    r = json.load(open(path))
    model = r["model"]
    if model["task"] != "bmul":
        fail(f"error: {path} grades a {model['task']} model; the figure is for bmul")
    points = []
    for level in r["levels"]:
        total = level.get("total") or {}
        if total.get("samples", 0) > 0:
            points.append((float(level["length"]), 100.0 * total["symbol_accuracy"], total["samples"], 100.0 * total["sequence_accuracy"]))
    name = f"{label or model['file']} ({model['arch']}, ours)"
    return name, sorted(points)


def x_px(x):
    return LEFT + (WIDTH - LEFT - RIGHT) * x / X_MAX


def y_px(y):
    return TOP + (HEIGHT - TOP - BOTTOM) * (100.0 - y) / 100.0


def svg(reference, ours):
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           f'<text x="{LEFT}" y="22" font-size="14">Binary multiplication: per-symbol accuracy (PAD included) against test length</text>']
    for x in range(0, 4001, 500):
        out.append(f'<line x1="{x_px(x):.1f}" y1="{TOP}" x2="{x_px(x):.1f}" y2="{HEIGHT - BOTTOM}" stroke="#eee"/>')
        out.append(f'<text x="{x_px(x):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{x:,}</text>')
    for y in range(0, 101, 20):
        out.append(f'<line x1="{LEFT}" y1="{y_px(y):.1f}" x2="{WIDTH - RIGHT}" y2="{y_px(y):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y_px(y) + 4:.1f}" text-anchor="end">{y}%</text>')
    out.append(f'<line x1="{x_px(41):.1f}" y1="{TOP}" x2="{x_px(41):.1f}" y2="{HEIGHT - BOTTOM}" stroke="#444" stroke-dasharray="5,4"/>')
    out.append(f'<text x="{x_px(41) + 6:.1f}" y="{HEIGHT - BOTTOM - 8}">max training length 41</text>')
    out.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 18}" text-anchor="middle">test length (tokens, 2k+1 for k-bit operands)</text>')
    out.append(f'<text transform="translate(18,{(TOP + HEIGHT - BOTTOM) / 2:.0f}) rotate(-90)" text-anchor="middle">per-symbol accuracy</text>')
    legend, i = [], 0
    for name, points in reference.items():
        colour, dash = colours[i % len(colours)], "" if i == 0 else ' stroke-dasharray="8,3,2,3"'
        path = " ".join(f"{x_px(x):.1f},{y_px(y):.1f}" for x, y in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        legend.append((name, colour, dash, None))
        i += 1
    for name, points in ours:
        colour = colours[i % len(colours)]
        path = " ".join(f"{x_px(x):.1f},{y_px(y):.1f}" for x, y, _, _ in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y, n, _ in points:
            out.append(f'<circle cx="{x_px(x):.1f}" cy="{y_px(y):.1f}" r="3.5" fill="{colour}"><title>{x:,.0f}: {y:.1f}% ({n} samples)</title></circle>')
        legend.append((name, colour, "", "o"))
        i += 1
    ly = TOP + 10
    for name, colour, dash, marker in legend:
        lx = WIDTH - RIGHT + 14
        out.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 26}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/>')
        if marker:
            out.append(f'<circle cx="{lx + 13}" cy="{ly}" r="3.5" fill="{colour}"/>')
        words, line = name.split(" "), ""
        lines = []
        for w in words:
            if len(line) + len(w) > 30:
                lines.append(line)
                line = w
            else:
                line = (line + " " + w).strip()
        lines.append(line)
        for j, text in enumerate(lines):
            out.append(f'<text x="{lx + 32}" y="{ly + 4 + 14 * j}">{html.escape(text)}</text>')
        ly += 14 * len(lines) + 12
    out.append("</svg>")
    return "\n".join(out)


def table(reference, ours):
    lines = ["| length | " + " | ".join(n for n, _ in ours) + " | DNGPU reference (digitized) | NGPU (digitized) |",
             "|---:|" + "---:|" * (len(ours) + 2)]
    lengths = sorted({x for _, pts in ours for x, _, _, _ in pts})
    ref = list(reference.values())
    for length in lengths:
        cells = []
        for _, pts in ours:
            hit = [p for p in pts if p[0] == length]
            cells.append(f"{hit[0][1]:.1f}% (seq {hit[0][3]:.0f}%, {hit[0][2]} samples)" if hit else "not graded")
        for series in ref:
            near = [y for x, y in series if abs(x - length) <= 25]
            cells.append(f"{near[0]:.1f}%" if near else "-")
        lines.append(f"| {length:,.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    if "--out" not in argv or len(argv) < 4:
        fail("error: usage: paper_figure.py --out PREFIX REFERENCE.csv [NAME=]RESULTS.json [[NAME=]RESULTS.json ...]")
    i = argv.index("--out")
    prefix = argv[i + 1]
    rest = argv[:i] + argv[i + 2:]
    reference = load_reference(rest[0])
    ours = [load_results(p) for p in rest[1:]]
    for suffix, text in ((".svg", svg(reference, ours)), (".md", table(reference, ours) + "\n")):
        tmp = prefix + suffix + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, prefix + suffix)
    print(f"wrote {prefix}.svg and {prefix}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
