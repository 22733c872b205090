#!/usr/bin/env bash
# Import benchmark (not a test): `lvc dataset create` vs the DIGITS path in
# Python (pydicom + numpy + cv2.fillPoly, digits_reference.py) on the same
# phantom tree, in one run. Prints images/s for each and the ratio, and
# checks that both produced the same masks.
#
#   benches/import/run.sh [IMAGES]      (default 300; `make bench-import`)
set -euo pipefail
cd "$(dirname "$0")/../.."
WANT=${1:-300}
PY=.venv/bin/python
LVC=target/release/lvc

"$PY" -c 'import numpy, cv2, pydicom' 2>/dev/null \
  || .venv/bin/pip install --no-input --disable-pip-version-check numpy opencv-python-headless pydicom >/dev/null
[ -x "$LVC" ] || cargo build --release --locked --bins

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Grow the phantom case by case until it holds WANT contoured slices.
cases=1
while :; do
  rm -rf "$WORK/phantom"
  "$LVC" phantom --out "$WORK/phantom" --cases "$cases" --seed 7 >/dev/null
  have=$(find "$WORK/phantom" -name '*-icontour-manual.txt' | wc -l)
  [ "$have" -ge "$WANT" ] && break
  cases=$(( cases * WANT / (have > 0 ? have : 1) + 1 ))
done
# Layout A, as `lvc phantom` writes it.
IMAGES=$WORK/phantom/challenge_training
CONTOURS="$WORK/phantom/Sunnybrook Cardiac MR Database ContoursPart3"

now() { date +%s.%N; }
t0=$(now)
"$LVC" dataset create --images "$IMAGES" --contours "$CONTOURS" --out "$WORK/lvc-ds" \
  --split image --val-pct 10 --seed 1234 >"$WORK/lvc.out"
t1=$(now)
"$PY" benches/import/digits_reference.py --images "$IMAGES" --contours "$CONTOURS" \
  --out "$WORK/py-ds" --val-pct 10 --seed 1234 >"$WORK/py.out"
t2=$(now)

"$PY" - "$WORK" "$t0" "$t1" "$t2" "$cases" <<'PYEOF'
import json, os, sys
import numpy as np
work, t0, t1, t2, cases = sys.argv[1], *map(float, sys.argv[2:5]), sys.argv[5]
manifest = json.load(open(os.path.join(work, "lvc-ds", "manifest.json")))
n_lvc = len(manifest["records"])
py = json.loads(open(os.path.join(work, "py.out")).read())
n_py = py["images"]
# Same masks? Match records by (case, image).
lvc_labels = {s: np.load(os.path.join(work, "lvc-ds", s, "labels.npy")) for s in ("train", "val")}
py_labels = {s: np.load(os.path.join(work, "py-ds", s, "labels.npy")) for s in ("train", "val")}
lvc_at = {(r["case"], r["image"]): lvc_labels[r["split"]][r["index"]] for r in manifest["records"]}
same = sum(
    np.array_equal(lvc_at[(r["case"], r["image"])], py_labels[r["split"]][r["index"]])
    for r in json.load(open(os.path.join(work, "py-ds", "records.json")))
)
lvc_s, py_s = t1 - t0, t2 - t1
# lvc prints its own time after process start: "…, 0.33 s (read+rasterise …".
lvc_out = open(os.path.join(work, "lvc.out")).read()
lvc_in = float(lvc_out.split(" skipped, ")[1].split(" s ")[0])
rows = [
    ("lvc dataset create", n_lvc, lvc_s, lvc_in),
    ("python DIGITS path", n_py, py_s, py["seconds"]),
]
print(f"phantom: {cases} case(s), {n_lvc} contoured slices, {os.cpu_count()} cores")
print(f"| {'importer':<20} | {'images':>6} | {'wall s':>7} | {'images/s':>8} | {'in-process s':>12} | {'images/s':>8} |")
print(f"|{'-'*22}|{'-'*8}|{'-'*9}|{'-'*10}|{'-'*14}|{'-'*10}|")
for name, n, wall, inproc in rows:
    print(f"| {name:<20} | {n:>6} | {wall:>7.3f} | {n / wall:>8.0f} | {inproc:>12.3f} | {n / inproc:>8.0f} |")
print(f"speed-up lvc/python: {py_s / lvc_s:.1f}x wall (process start included), "
      f"{py['seconds'] / lvc_in:.1f}x in-process (after imports / library loading)")
print(f"identical masks: {same}/{n_py}")
PYEOF
