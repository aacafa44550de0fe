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


CURVES = {"dngpu": (0, 176, 246), "ngpu": (220, 22, 195)}


def calibrate(path, x_grid, y_grid):
    """Reads the figure and maps its pixels to data through its own grid lines: x_grid and y_grid are the data
    values of the first and last grid line and their count, e.g. (500, 3500, 7). Returns the pixel rows, the
    height, and the functions pixel -> data for x and y."""
    width, height, rows = read_png(path)
    xs = grid_lines(rows, width, height, vertical=True)
    ys = grid_lines(rows, width, height, vertical=False)
    if len(xs) != x_grid[2] or len(ys) != y_grid[2]:
        sys.exit(f"error: {path}: expected {x_grid[2]} vertical and {y_grid[2]} horizontal grid lines, found {len(xs)} and {len(ys)}")
    px_x = (xs[-1] - xs[0]) / (x_grid[1] - x_grid[0])
    px_y = (ys[-1] - ys[0]) / (y_grid[1] - y_grid[0])
    return rows, width, height, (lambda x: x_grid[0] + (x - xs[0]) / px_x), (lambda y: y_grid[0] + (y - ys[0]) / px_y), \
        (lambda value: xs[0] + (value - x_grid[0]) * px_x)


def curve_values(rows, height, columns, y_of, masked):
    """Each curve's value at the given pixel columns: the mean height of its pixels there, capped at 100."""
    values = []
    for colour in CURVES.values():
        hits = [y for x in columns for y in range(height) if near(rows[y][x], colour, 40) and not masked(y_of(y))]
        values.append(f"{min(100.0, y_of(sum(hits) / len(hits))):.1f}" if hits else "")
    return values


def main(path):
    # grid lines: test lengths 500, 1000, ..., 3500; accuracy 80, 60, 40, 20
    rows, width, height, _, y_of, x_px = calibrate(path, (500, 3500, 7), (80, 20, 4))
    print("# source: LUMII-Syslab/DNGPU README figure fig_generalization-ngpu-vs-dngpu-with-max-train-length.png")
    print("# (binary multiplication, trained on lengths up to 41; per-symbol accuracy, padding included),")
    print("# digitized by tools/experiments/digitize_dngpu_figure.py; empty = no curve there (dash gaps, or past its end)")
    print("length,dngpu_symbol_accuracy_pct,ngpu_symbol_accuracy_pct")
    for length in range(50, 4001, 50):
        x = round(x_px(length))
        # the legend's line samples: beyond length 3,300, below 75%
        values = curve_values(rows, height, (x - 1, x, x + 1), y_of, lambda pct: length > 3300 and pct < 75)
        print(f"{length},{values[0]},{values[1]}")


def main_iteration(path):
    # grid lines: steps 5,000, 10,000, ..., 35,000; accuracy 100, 80, 60, 40, 20
    rows, width, height, x_of, y_of, _ = calibrate(path, (5000, 35000, 7), (100, 20, 5))
    print("# source: LUMII-Syslab/DNGPU README figure fig_iteration-ngpu-vs-dngpu.png (binary multiplication,")
    print("# per-symbol accuracy on test length 401, padding included, against the training step; means over runs),")
    print("# digitized by tools/experiments/digitize_dngpu_figure.py --iteration, one row per pixel column;")
    print("# empty = no curve there (dash gaps, or past its end)")
    print("step,dngpu_symbol_accuracy_pct,ngpu_symbol_accuracy_pct")
    for x in range(width):
        step = x_of(x)
        if step <= 0:
            continue
        if step > 40000:
            break
        # the legend's line samples: beyond step 33,000, below 30%
        values = curve_values(rows, height, (x,), y_of, lambda pct: step > 33000 and pct < 30)
        if any(values):
            print(f"{step:.0f},{values[0]},{values[1]}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--iteration"]:
        main_iteration(sys.argv[2])
    else:
        main(sys.argv[1])
