#!/usr/bin/env python3
"""Print the README's zoo table (markdown) from the committed cards: tools/zoo-table.py [models-dir]."""
import json, pathlib, sys

models = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "models")
levels = ["k4", "1x", "10x", "100x", "1000x"]


def wall(seconds):
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{round(seconds / 60)} min" if seconds >= 60 else f"{round(seconds)} s"


def pct(v):
    """One decimal, more where one would show a value below 1 as 100.0% or a value above 0 as 0.0%."""
    for decimals in range(1, 10):
        text = f"{v * 100:.{decimals}f}"
        if not ((v < 1 and text.startswith("100")) or (v > 0 and float(text) == 0)):
            break
    return text + "%"


def cell(level):
    if not level or level.get("status") not in ("complete", "trimmed"):
        return "not graded"
    return pct(level["sequence_accuracy"]) + ("*" if level["status"] == "trimmed" else "")


bars = []
print("| model | steps | training wall time | exhaustive k4 | 1x | 10x | 100x | 1000x | break point |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for path in sorted(models.glob("*.card.json")):
    card = json.loads(path.read_text())
    got = card.get("levels", {})
    point = card.get("break_point", "-").split(": ", 1)[-1]
    steps, seconds = f"{card['steps']:,}", wall(card["wall_time_seconds"])
    origin = card.get("init_from")  # a warm-started run: count the training it started from too, every stage
    if origin:
        stages = [origin] + origin.get("earlier", [])
        steps += " (after " + ", then ".join(f"{s['steps']:,} at size {s['train_length']}" for s in reversed(stages)) + ")"
        total = card["wall_time_seconds"] + sum(s["wall_time_seconds"] for s in stages)
        seconds = f"{wall(total)} (" + ("both" if len(stages) == 1 else f"all {len(stages) + 1} stages") + ")"
        if origin.get("chain_end", "a fresh initialization") != "a fresh initialization":
            seconds += ", and earlier stages not known"
    members = card.get("ensemble")  # one file joining several models (zoo.yaml `members:`): each member's training
    if members:
        origins = [m["init_from"] for m in members if m.get("init_from")]
        steps = f"{card['steps']:,} (an ensemble of {len(members)}: " + ", ".join(f"{o['steps']:,}" for o in origins) + f" at size {origins[0]['train_length']})"
        seconds = f"{wall(max(o['wall_time_seconds'] for o in origins))} (the longest member's run)"
    row = [f"`{card['name']}`", steps, seconds] + [cell(got.get(l)) for l in levels] + [point]
    print("| " + " | ".join(row) + " |")
    if card.get("bar"):  # a second suite the zoo graded the model on (zoo.yaml `bar:`)
        bar = card["bar"]
        line = f"- `{card['name']}` on `{bar['suite']['source']}` (seed {bar['suite']['seed']}): {bar['verdict']} (sequence accuracy: {bar['summary']})"
        if bar.get("gates"):  # a bar met by rules (zoo.yaml `bar_gates:`): each rule's measured value
            rules = "; ".join(f"{r['rule']}: {'not measured' if r['value'] is None else r['value']} {'passes' if r['passed'] else 'fails'}"
                              for r in bar["gates"]["rules"])
            line += f"; rules of `{bar['gates']['source']}`: {rules}"
        bars.append(line)
if bars:
    print()
    print("Bars (each a second suite on the model's card, `bar`):")
    print("\n".join(bars))
