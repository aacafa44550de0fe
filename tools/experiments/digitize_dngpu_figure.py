"""Digitizes the DNGPU reference's two README figures for binary multiplication (LUMII-Syslab/DNGPU) into CSV.

Default: "Generalization on longer inputs for binary multiplication"
(LUMII-Syslab/DNGPU, fig_generalization-ngpu-vs-dngpu-with-max-train-length.png, 800x450) into a CSV of
per-symbol accuracy (%) against test length for its two mean curves: DNGPU (solid, rgb 0,176,246) and NGPU
(dash-dot, rgb 220,22,195). The axes are calibrated on the figure's own grid lines (x: 500 ... 3500,
y: 20 ... 80), found by their colour; each curve's value at a column is the mean height of its pixels there.
The grey bands (the spread over runs) are not digitized, and the legend's line samples (the lower right
corner, below 75% accuracy and beyond length 3,300) are masked out.

    python3 tools/experiments/digitize_dngpu_figure.py FIGURE.png > reports/paper/reference-curves.csv

--iteration: "Training speed and accuracy on test set length 401" (fig_iteration-ngpu-vs-dngpu.png, 800x450):
per-symbol accuracy (%) on length 401 against the training step, one row per pixel column (about 54 steps),
for the same two mean curves. Calibrated on its grid lines (x: steps 5,000 ... 35,000; y: 100 ... 20%); the
legend's samples (beyond step 33,000, below 30%) are masked out.

    python3 tools/experiments/digitize_dngpu_figure.py --iteration FIGURE.png > reports/paper/reference-iteration.csv
"""
import sys

from png import read_png


def near(p, q, tol):
    return all(abs(a - b) <= tol for a, b in zip(p, q))


def grid_lines(rows, width, height, vertical):
    """Centres of the light-grey grid lines: columns (vertical) or rows holding many grid pixels."""
    grid, found = (240, 240, 240), []
    outer, inner, need = (width, height, 150) if vertical else (height, width, 300)
    for i in range(outer):
        hits = sum(1 for j in range(inner) if near(rows[j][i] if vertical else rows[i][j], grid, 8))
        if hits > need:
            found.append(i)
    centres, group = [], []
    for i in found:
        if group and i - group[-1] > 1:
            centres.append(sum(group) / len(group))
            group = []
        group.append(i)
    if group:
        centres.append(sum(group) / len(group))
    return centres


def main(path):
    width, height, rows = read_png(path)
    xs = grid_lines(rows, width, height, vertical=True)   # test lengths 500, 1000, ..., 3500
    ys = grid_lines(rows, width, height, vertical=False)  # accuracy 80, 60, 40, 20
    if len(xs) != 7 or len(ys) != 4:
        sys.exit(f"error: {path}: expected 7 vertical and 4 horizontal grid lines, found {len(xs)} and {len(ys)}")
    px_per_len = (xs[-1] - xs[0]) / 3000
    x0 = xs[0] - 500 * px_per_len
    px_per_pct = (ys[-1] - ys[0]) / -60
    y0 = ys[0] - 80 * px_per_pct
    curves = {"dngpu": (0, 176, 246), "ngpu": (220, 22, 195)}
    print("# source: LUMII-Syslab/DNGPU README figure fig_generalization-ngpu-vs-dngpu-with-max-train-length.png")
    print("# (binary multiplication, trained on lengths up to 41; per-symbol accuracy, padding included),")
    print("# digitized by tools/experiments/digitize_dngpu_figure.py; empty = no curve there (dash gaps, or past its end)")
    print("length,dngpu_symbol_accuracy_pct,ngpu_symbol_accuracy_pct")
    for length in list(range(50, 4001, 50)):
        x = round(x0 + length * px_per_len)
        values = []
        for colour in curves.values():
            hits = [y for dx in (-1, 0, 1) for y in range(height) if near(rows[y][x + dx], colour, 40)
                    and not (length > 3300 and (y - y0) / px_per_pct < 75)]  # the legend's samples
            values.append(f"{min(100.0, (sum(hits) / len(hits) - y0) / px_per_pct):.1f}" if hits else "")
        print(f"{length},{values[0]},{values[1]}")


def main_iteration(path):
    width, height, rows = read_png(path)
    xs = grid_lines(rows, width, height, vertical=True)   # steps 5,000, 10,000, ..., 35,000
    ys = grid_lines(rows, width, height, vertical=False)  # accuracy 100, 80, 60, 40, 20
    if len(xs) != 7 or len(ys) != 5:
        sys.exit(f"error: {path}: expected 7 vertical and 5 horizontal grid lines, found {len(xs)} and {len(ys)}")
    px_per_step = (xs[-1] - xs[0]) / 30000
    x0 = xs[0] - 5000 * px_per_step
    px_per_pct = (ys[-1] - ys[0]) / -80
    y0 = ys[0] - 100 * px_per_pct
    curves = {"dngpu": (0, 176, 246), "ngpu": (220, 22, 195)}
    print("# source: LUMII-Syslab/DNGPU README figure fig_iteration-ngpu-vs-dngpu.png (binary multiplication,")
    print("# per-symbol accuracy on test length 401, padding included, against the training step; means over runs),")
    print("# digitized by tools/experiments/digitize_dngpu_figure.py --iteration, one row per pixel column;")
    print("# empty = no curve there (dash gaps, or past its end)")
    print("step,dngpu_symbol_accuracy_pct,ngpu_symbol_accuracy_pct")
    for x in range(int(x0 + 1), width):
        step = (x - x0) / px_per_step
        if step > 40000:
            break
        values = []
        for colour in curves.values():
            hits = [y for y in range(height) if near(rows[y][x], colour, 40)
                    and not (step > 33000 and (y - y0) / px_per_pct < 30)]  # the legend's samples
            values.append(f"{min(100.0, (sum(hits) / len(hits) - y0) / px_per_pct):.1f}" if hits else "")
        if any(values):
            print(f"{step:.0f},{values[0]},{values[1]}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--iteration"]:
        main_iteration(sys.argv[2])
    else:
        main(sys.argv[1])
