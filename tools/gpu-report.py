#!/usr/bin/env python3
"""gpu-report.py: the Markdown of the GPU measurement, from the raw files the gpu-*.sh scripts leave in GPU_WORK.

    gpu-report.py check WORK   ONNX Runtime provider A against B: verdicts and tokens/s (gpu-check.sh)
    gpu-report.py long WORK    one example at 1000x: seconds, GFLOP/s, fraction of the peak (gpu-long.sh)
    gpu-report.py train WORK   training examples/s, one seed and packed seeds (gpu-train-speed.sh)
    gpu-report.py all WORK     gpu.md: the machine, every section, the summary and what was not measured (gpu-all.sh)

Each prints Markdown on stdout and exits 0 when its check passed (PASS), 1 when it failed (FAIL), missed its goal
(MISS) or was not measured. A piece that was stopped half-way renders what it left. Standard library only.
"""
import json
import os
import re
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def read(path, default=None):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return default


def settings(path):
    """key=value lines."""
    out = {}
    for line in (read(path) or "").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def results(run):
    text = read(os.path.join(run, "results.json"))
    return json.loads(text) if text else None


def rc_of(path):
    text = read(path)
    return int(text.strip()) if text and text.strip().lstrip("-").isdigit() else None


def why_failed(run):
    """One line on why a run left no results: its exit code and its error line."""
    rc = rc_of(run + ".rc")
    log = read(run + ".log") or ""
    error = next((line for line in log.splitlines() if line.startswith("error:")), None)
    last = log.strip().splitlines()[-1] if log.strip() else ""
    if rc is None:
        return "not run (stopped before it started)"
    if rc == 124 or rc == 137:
        return f"stopped by its time limit (exit {rc})"
    return f"exit {rc}: {error or last or 'no output'}"


def fmt(v, digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def rel(path, work):
    return os.path.relpath(path, work)


# ---------------------------------------------------------------------------------------------------- check
def check(work):
    d = os.path.join(work, "check")
    s = settings(os.path.join(d, "settings.txt"))
    a, b = s.get("provider_a", "cuda"), s.get("provider_b", "cpu")
    lines = [f"## ONNX Runtime {a} against {b}: the same verdict on every example", ""]
    models = [m for m in (read(os.path.join(d, "models.txt")) or "").split() if m]
    if not models:
        lines += ["Not measured: no model was graded (see the log of gpu-check).", ""]
        return lines, "not measured", ["provider comparison: no model was graded"]
    lines += [f"`toolchain eval MODEL --provider P --suite {s.get('suite', '?')} --levels {s.get('levels', '?')}"
              f"{'' if s.get('budget_minutes') in (None, '0') else ' --budget-minutes ' + s['budget_minutes']} --verdicts`"
              f" once per provider, then `toolchain verdicts-diff` over the examples both runs graded (a budget may trim"
              f" the slower provider's levels; those examples are counted as only in one run). tokens/s = examples x"
              f" length / seconds of the level's timing entry (model time: session run and argmax).", ""]
    lines += [f"| model | level | length | {a} examples | {a} tokens/s | {b} examples | {b} tokens/s | {a}/{b} speed |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    verdict_lines, ok, missing = [], True, []
    for m in models:
        ra, rb = os.path.join(d, m, f"A-{a}"), os.path.join(d, m, f"B-{b}")
        res_a, res_b = results(ra), results(rb)
        timing = {}
        for side, res in (("a", res_a), ("b", res_b)):
            for t in (res or {}).get("timing", []):
                timing.setdefault(t["level"], {})[side] = t
        for level, t in timing.items():
            ta, tb = t.get("a"), t.get("b")
            length = (ta or tb)["length"]
            tok = {k: v["examples"] * v["length"] / v["seconds"] if v and v["seconds"] > 0 else None for k, v in (("a", ta), ("b", tb))}
            speed = tok["a"] / tok["b"] if tok["a"] and tok["b"] else None
            lines.append(f"| {m} | {level} | {length:,} | {ta['examples'] if ta else '-'} | {fmt(tok['a'])} | "
                         f"{tb['examples'] if tb else '-'} | {fmt(tok['b'])} | {fmt(speed, 2) + 'x' if speed else '-'} |")
        if res_a is None or res_b is None:
            ok = False
            for side, run, res in (("A", ra, res_a), ("B", rb, res_b)):
                if res is None:
                    verdict_lines.append(f"- **FAIL** {m}: the {os.path.basename(run)[2:]} run left no results ({why_failed(run)})")
                    missing.append(f"{m} on {os.path.basename(run)[2:]}: {why_failed(run)}")
            continue
        diff = (read(os.path.join(d, m, "diff.txt")) or "").strip()
        diff_rc = rc_of(os.path.join(d, m, "diff.rc"))
        same = diff_rc == 0
        ok = ok and same
        verdict_lines.append(f"- **{'PASS' if same else 'FAIL'}** {m}: {diff or 'no comparison was made'}")
    lines += ["", *verdict_lines, ""]
    lines.append(f"**{'PASS' if ok else 'FAIL'}**: {'identical verdicts on every compared example of every model' if ok else 'see the models above'}.")
    lines.append("")
    return lines, "PASS" if ok else "FAIL", missing


# ---------------------------------------------------------------------------------------------------- long
def conv_flops(config, n, batch=1):
    """Toolchain.Cli.Bench.Bench.ConvFlops: the convolutions of one forward pass, 2 FLOPs per multiply-add."""
    m, k = config["maps"], config["kernel_width"]
    if config["arch"] == "dngpu":
        macs = (2 * m * m * k + m * m * k) * n
    elif config["arch"] == "ngpu":
        kh, w, layers = config["kernel_height"], config["width"], config["layers"]
        macs = layers * (2 * m * m * kh * k + m * m * kh * k) * n * w
    else:
        return None
    return 2 * macs * n * batch


def bench_peak():
    """The bench's CPU peak (reports/bench/bench.json), for the CPU path: not this machine's."""
    text = read(os.path.join(ROOT, "reports", "bench", "bench.json"))
    if not text:
        return None
    peak = json.loads(text).get("peak", {}).get("peak_gflops")
    return {"gflops": peak, "source": "reports/bench/bench.json: the float32 peak of the CPU bench machine (2-core AMD EPYC), not a measurement of this machine"} if peak else None


def long(work):
    d = os.path.join(work, "long")
    s = settings(os.path.join(d, "settings.txt"))
    provider, multiple = s.get("provider", "cuda"), s.get("multiple", "1000")
    model = os.path.basename(s.get("model", "dngpu-badd.onnx"))
    lines = [f"## {model} at {multiple}x on {provider}: seconds per example and the fraction of the float32 peak", ""]
    ways = [w for w in (read(os.path.join(d, "ways.txt")) or "").split() if w]
    peak_text = read(os.path.join(d, "peak.json"))
    peak = json.loads(peak_text) if peak_text else (bench_peak() if provider == "cpu" else None)
    rows, missing, verdicts = [], [], {}
    config = None
    for way in ways:
        run = os.path.join(d, way)
        res = results(run)
        if res is None:
            skipped = read(run + ".skipped")
            missing.append(f"{way}: {skipped.strip() if skipped else why_failed(run)}")
            rows.append((way, None, None, None))
            continue
        config = json.loads(res["model"]["config"]) if res["model"].get("config") else None
        t = res["timing"][0] if res["timing"] else None
        seconds = t["seconds"] / t["examples"] if t and t["examples"] else None
        v = (read(os.path.join(run, "verdicts.jsonl")) or "").strip()
        verdicts[way] = "".join(json.loads(line)["verdicts"] for line in v.splitlines()) if v else None
        rows.append((way, t["length"] if t else None, seconds, res["run"]))
    length = next((r[1] for r in rows if r[1]), None)
    flops = conv_flops(config, length) if config and length else None
    if config and flops:
        m, k = config["maps"], config["kernel_width"]
        lines += [f"One random example of {length:,} tokens, batch 1 (`toolchain eval {s.get('model')} --provider {provider} "
                  f"--suite gpu-long.yaml --verdicts` plus each way's options); seconds = the level's timing entry (session run"
                  f" and argmax; the session's first run{', so on CUDA it includes cuDNN' + chr(39) + 's algorithm search' if provider == 'cuda' else ''};"
                  f" not the session's creation). FLOPs by `Bench.ConvFlops` (the convolutions only): dngpu 2 x (2m·m·k + m·m·k) x n per step x n"
                  f" steps = 2 x ({2 * m * m * k:,} + {m * m * k:,}) x {length:,}² = {flops:.3e} FLOP (m = {m}, k = {k}).", ""]
    if peak:
        lines += [f"Peak: {fmt(peak['gflops'], 1)} GFLOP/s float32 ({peak['source']})"
                  + (f"; with TF32 allowed {fmt(peak['tf32_gflops'], 1)} GFLOP/s. ONNX Runtime's CUDA provider may use TF32 in"
                     f" convolutions (its use_tf32 option), so a fraction above 100% means TF32." if peak.get("tf32_gflops") else "."), ""]
    else:
        lines += ["Peak: not measured (tools/gpu-peak.py failed or did not run; see long/peak.log).", ""]
    loop_seconds = next((r[2] for r in rows if r[0] == "loop" and r[2]), None)
    if not rows:
        lines += ["Not measured: no way was run (see the log of gpu-long).", ""]
        return lines, "not measured", [f"{model} at {multiple}x: no way was run"]
    lines += ["| way | eval options | seconds per example | GFLOP/s | of the float32 peak | time vs the loop | verdict |",
              "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for way, _, seconds, run in rows:
        options = " ".join(("--loop-chunk " + p[5:]) if p.startswith("chunk") else "--io-binding" if p == "iobinding" else "(the Loop as exported)"
                           for p in way.split("+"))
        if seconds is None:
            lines.append(f"| {way} | {options} | not measured | | | | |")
            continue
        gflops = flops / seconds / 1e9 if flops else None
        of_peak = f"{100 * gflops / peak['gflops']:.1f}%" if gflops and peak and peak.get("gflops") else "-"
        vs = f"{seconds / loop_seconds:.2f}x" if loop_seconds else "-"
        verdict = {"1": "right", "0": "wrong"}.get(verdicts.get(way) or "", verdicts.get(way) or "-")
        lines.append(f"| {way} | {options} | {seconds:,.3f} | {fmt(gflops, 1)} | {of_peak} | {vs} | {verdict} |")
    lines.append("")
    measured = [(r[0], r[2]) for r in rows if r[2]]
    agree = len({v for v in verdicts.values() if v is not None}) <= 1
    status = "not measured" if not measured else "PASS" if not missing and agree else "FAIL"
    if measured:
        best, best_s = min(measured, key=lambda r: r[1])
        chunk = next((p[5:] for p in best.split("+") if p.startswith("chunk")), None)
        lines.append(f"Fastest on {provider}: **{best}** ({best_s:,.3f} s per example"
                     + (f", {loop_seconds / best_s:.2f}x faster than the loop)." if loop_seconds and best != "loop" else ")."))
        advice = (f"the evaluator's default for {provider} should become `--loop-chunk {chunk}`" if chunk and best != "loop"
                  else "the loop as exported stays the evaluator's default")
        lines.append(f"Decision: {advice} (today every provider runs the Loop as exported unless `--loop-chunk` is given).")
    if measured:
        lines.append(f"Verdicts of the ways: {'the same' if agree else '**differ**: ' + ', '.join(f'{w} {v}' for w, v in verdicts.items())}.")
    lines.append("")
    return lines, status, [f"{model} at {multiple}x, {m}" for m in missing]


# ---------------------------------------------------------------------------------------------------- train
def steady_rate(metrics_path):
    """Median examples/s of the progress lines in the second half of the steps; None without lines."""
    text = read(metrics_path)
    if not text:
        return None, 0
    points = []
    for line in text.splitlines():
        try:
            j = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "examples_per_second" in j:
            points.append((j["step"], j["examples_per_second"]))
    if not points:
        return None, 0
    last = max(p[0] for p in points)
    late = [r for step, r in points if step > last / 2] or [points[-1][1]]
    return statistics.median(late), last


def train(work):
    d = os.path.join(work, "train")
    s = settings(os.path.join(d, "settings.txt"))
    target = float(s.get("target", os.environ.get("TRAIN_TARGET", "8")))
    device = s.get("device", "cuda")
    lines = [f"## Training on {device}: one seed against {s.get('seeds', '16')} packed seeds", ""]
    lines += [f"`toolchain train --task {s.get('task', 'badd')} --arch dngpu --preset {s.get('preset', 'dngpu-ref')} --steps {s.get('steps', '?')}"
              f" --set log_every=1{''.join(' --set ' + x for x in s.get('set', '').split())} --device {device}` with `--seed 1`, then"
              f" with `--seeds 1-{s.get('seeds', '16')}`. A run's rate is the median examples/s of its progress lines in the"
              f" second half of its steps (the first steps carry the start-up); the packed run's total is the sum over its seeds.", ""]
    one, one_steps = steady_rate(os.path.join(d, "one", "metrics.jsonl"))
    seeds = []
    packed_dir = os.path.join(d, "packed")
    if os.path.isdir(packed_dir):
        for name in sorted(os.listdir(packed_dir), key=lambda n: int(n[5:]) if n[5:].isdigit() else 0):
            if name.startswith("seed-"):
                seeds.append(steady_rate(os.path.join(packed_dir, name, "metrics.jsonl")))
    rates = [r for r, _ in seeds if r is not None]
    total = sum(rates) if rates else None
    missing = []
    if one is None:
        missing.append(f"training with one seed: {why_failed(os.path.join(d, 'one'))}")
    if total is None:
        missing.append(f"training with packed seeds: {why_failed(os.path.join(d, 'packed'))}")
    elif len(rates) < int(s.get("seeds", len(rates))):
        missing.append(f"training with packed seeds: only {len(rates)} of {s.get('seeds')} seeds logged progress")
    lines += ["| run | seeds | steps done | examples/s per seed | examples/s in total |", "| --- | ---: | ---: | ---: | ---: |"]
    lines.append(f"| one seed | 1 | {one_steps or '-'} | {fmt(one, 1)} | {fmt(one, 1)} |")
    lines.append(f"| packed | {len(rates) or '-'} | {max((st for _, st in seeds), default='-')} | "
                 f"{fmt(statistics.median(rates), 1) if rates else '-'} (median) | {fmt(total, 1)} |")
    lines.append("")
    status = "not measured"
    if one and total:
        ratio = total / one
        status = "PASS" if ratio >= target else "MISS"
        lines.append(f"**{status}**: {len(rates)} packed seeds train {ratio:.2f}x the examples/s of one seed (goal: >= {target:g}x).")
    else:
        lines.append("Not measured: a run left no progress lines (see its log).")
    lines.append("")
    return lines, status, missing


# ---------------------------------------------------------------------------------------------------- all
def machine(work):
    s = settings(os.path.join(work, "machine.txt"))
    keys = [("date", "measured"), ("mode", "mode"), ("gpu", "GPU"), ("cuda", "CUDA (driver)"), ("cpu", "CPU"), ("memory", "memory"),
            ("os", "system"), ("python", "Python and PyTorch"), ("toolchain", "toolchain"), ("onnxruntime", "ONNX Runtime (the build)"),
            ("torchsharp", "TorchSharp (the build)")]
    return ["## Machine", ""] + [f"- {label}: {s[k]}" for k, label in keys if s.get(k)] + [""]


def all_(work):
    s = settings(os.path.join(work, "machine.txt"))
    dry = s.get("mode", "").startswith("dry run")
    title = "# GPU measurement (issue 17, part 3)" + (": CPU dry run, no GPU figures" if dry else "")
    out = [title, ""]
    if dry:
        out += ["This is a dry run of `tools/gpu-all.sh` on the CPU path (GPU_DRY_RUN=1) with tiny sizes: it shows that the"
                " measurement runs end to end, not how fast a GPU is. reports/bench/gpu.md takes a run on a GPU machine.", ""]
    out += machine(work)
    summary, body, not_measured = [], [], []
    statuses = []
    for name, title_, fn in (("check", "provider comparison", check), ("long", "long input timing", long), ("train", "training speed", train)):
        rc = rc_of(os.path.join(work, name + ".rc"))
        log = read(os.path.join(work, "logs", name + ".log")) or ""
        error = next((line for line in log.splitlines() if "error:" in line), None)
        if rc == 2 and error:
            # the piece refused to start (no GPU, no CUDA library, no model): one line says why
            body += [f"## {title_[0].upper() + title_[1:]}", "", f"Not measured: {error}", ""]
            not_measured.append(f"{title_}: could not start: {error}")
            summary.append(f"- {title_}: **not measured** (could not start)")
            statuses.append("not measured")
            continue
        if rc is None and not os.path.isdir(os.path.join(work, name)):
            not_measured.append(f"{title_}: not run")
            summary.append(f"- {title_}: **not run**")
            statuses.append("not run")
            continue
        lines, status, missing = fn(work)
        body += lines
        not_measured += missing
        if rc in (124, 137):
            not_measured.append(f"{title_}: stopped by its time limit in gpu-all.sh; its table holds what it finished")
        headline = next((line for line in lines if line.startswith(("**PASS**", "**FAIL**", "**MISS**", "Fastest"))), "")
        summary.append(f"- {title_}: **{status}**" + (f" ({headline.replace('**', '').removeprefix(status + ': ')})" if headline else ""))
        statuses.append(status)
    out += ["## Summary", "", *summary, ""]
    out += body
    out += ["## Not measured", ""]
    out += [f"- {m}" for m in not_measured] if not_measured else ["- nothing: every piece ran."]
    out += ["", "## Raw files", "",
            "gpu-raw.tar.gz beside this file: each run's results.json, verdicts.jsonl, summary.md and log (check/, long/),"
            " the training runs' metrics.jsonl and logs (train/), the peak measurement (long/peak.json) and the scripts' logs"
            " (logs/).", ""]
    return out, "PASS" if all(s == "PASS" for s in statuses) else "FAIL"


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("check", "long", "train", "all"):
        sys.exit(__doc__)
    what, work = sys.argv[1], sys.argv[2]
    if what == "all":
        lines, status = all_(work)
    else:
        lines, status, _ = {"check": check, "long": long, "train": train}[what](work)
    sys.stdout.write("\n".join(lines).rstrip("\n") + "\n")
    sys.exit(0 if status == "PASS" else 1)


if __name__ == "__main__":
    main()
