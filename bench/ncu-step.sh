#!/usr/bin/env bash
# GPU time of one decode step, kernel by kernel (Nsight Compute: each kernel
# timed alone at the clocks the card runs, caches flushed, so the sum is the
# step's busy time without launch gaps or overlap):
# `scanflash generate` with 1 and then 2 new tokens (the second adds one
# eager decode step); the kernels of the second run past the first run's
# count are the step's. Output: $OUT/NAME-step.txt.
#   bash bench/ncu-step.sh NAME BUILD_DIR --preset P --problem 0 --context 2048
set -uo pipefail
name=$1 build=$2; shift 2
OUT=${OUT:-./bench-out}
ncu=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
[ -n "$ncu" ] || { echo "ncu-step.sh: ncu not found"; exit 1; }
for g in 1 2; do
  "$ncu" --csv --clock-control none --metrics gpu__time_duration.sum "$build/driver/scanflash" generate --backend cuda "$@" \
    --max-new-tokens $g >"/tmp/ncu-$name-$g.csv" 2>/dev/null
done
python3 - "$name" >"$OUT/$name-step.txt" <<'PY'
import csv, sys, collections
name = sys.argv[1]
def kernels(g):
    rows = [r for r in csv.reader(open(f"/tmp/ncu-{name}-{g}.csv")) if len(r) > 10]
    h = rows[0]; ik, iv, iu = h.index("Kernel Name"), h.index("Metric Value"), h.index("Metric Unit")
    scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}
    for r in rows[1:]:
        if r[iu] not in scale:
            sys.exit(f"ncu-step.sh: unknown time unit {r[iu]!r} in the ncu output")
    return [(r[ik], float(r[iv].replace(",", "")) * scale[r[iu]]) for r in rows[1:]]
a, b = kernels(1), kernels(2)
step = b[len(a):]
tot = collections.defaultdict(lambda: [0.0, 0])
for k, us in step:
    t = tot[k.split("(")[0][:90]]; t[0] += us; t[1] += 1
print(f"{name}: one decode step = {len(step)} kernels, {sum(us for _, us in step):.1f} us of GPU time")
for k, (us, n) in sorted(tot.items(), key=lambda x: -x[1][0]):
    print(f"{us:9.1f} us {n:5d} x {us / n:7.2f} us  {k}")
PY
cat "$OUT/$name-step.txt"
