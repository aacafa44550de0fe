#!/usr/bin/env bash
# Grade chosen checkpoints of a run, one by one, as the published model would be graded: export each
# (toolchain export, with its parity check) and run toolchain eval on a suite's levels. Used on 2026-11-29 to
# choose dngpu-badd among dngpu-ref-badd-hard-s1's probe-step checkpoints (docs/results.md).
#   usage: tools/experiments/grade-checkpoints.sh SUITE LEVELS OUT_DIR CONFIG_JSON CKPT...
#   e.g.:  tools/experiments/grade-checkpoints.sh zoo/experiments/badd-screen/suite.yaml 1x,10x /tmp/screen \
#            zoo/runs/dngpu-ref-badd-hard-s1/config.json saved/ckpt-00001400.tckpt
# Each checkpoint gets OUT_DIR/NAME/ (NAME: the file name without .tckpt, prefixed with the run folder's name)
# with the export's log and the eval's results.json and summary.md (the exported model is not kept); the last
# lines print one row per checkpoint: exact counts per level, and the families that were not all exact. TOOLCHAIN (default: the Release build's toolchain) runs both.
set -euo pipefail
if [[ $# -lt 5 ]]; then sed -n 2,11p "$0" >&2; exit 2; fi
suite=$1 levels=$2 out=$3 config=$4; shift 4
tool=${TOOLCHAIN:-$(dirname "$0")/../toolchain/bin/Release/net10.0/toolchain}
[[ -x $tool ]] || { echo "error: $tool is not built; run 'dotnet build tools/toolchain -c Release' or set TOOLCHAIN" >&2; exit 2; }
[[ -f $config ]] || { echo "error: $config: no such run config (a run folder's config.json)" >&2; exit 2; }
run=$(basename "$(dirname "$config")")
mkdir -p "$out"
names=()
for ckpt in "$@"; do
  [[ -f $ckpt ]] || { echo "error: $ckpt: no such checkpoint" >&2; exit 2; }
  name="$run-$(basename "$ckpt" .tckpt)"
  names+=("$name")
  work=$(mktemp -d "$out/.work-XXXXXX")
  cp "$ckpt" "$config" "$work/"
  "$tool" export "$work" --out "$work/model.onnx" > "$work/export.log" 2>&1 || { cat "$work/export.log" >&2; exit 1; }
  "$tool" eval "$work/model.onnx" --suite "$suite" --levels "$levels" --provider cpu --threads 1 --out "$work/eval" > "$work/eval.log" 2>&1 \
    || { cat "$work/eval.log" >&2; exit 1; }
  rm -rf "${out:?}/$name"
  mkdir -p "$out/$name"
  mv "$work/eval/results.json" "$work/eval/summary.md" "$work/export.log" "$out/$name/"
  rm -rf "$work"
done
for name in "${names[@]}"; do
  python3 - "$out/$name/results.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cells = []
for level in r["levels"]:
    t = level["total"]
    missed = ", ".join(f"{f['family']} {f['exact']}" for f in level["families"] if f["exact"] < f["samples"])
    cells.append(f"{level['name']} {t['exact']}/{t['samples']}" + (f" ({missed})" if missed else ""))
print(f"| {sys.argv[2]} | " + " | ".join(cells) + " |")
PY
done
