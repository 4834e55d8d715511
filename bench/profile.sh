#!/usr/bin/env bash
# Kernel-level profile of one scanflash command on a GPU machine: Nsight
# Systems with CUDA-graph nodes traced one by one, then the per-kernel time
# summary (total, count, average), to $OUT/NAME-kernels.txt.
#   bash bench/profile.sh NAME BUILD_DIR scanflash-args...
# On the lent GPU machine: source .device-deps/activate.sh first.
set -uo pipefail
name=$1 build=$2; shift 2
OUT=${OUT:-./bench-out}
mkdir -p "$OUT"
nsys=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
if [ -z "$nsys" ]; then echo "profile.sh: nsys not found"; exit 1; fi
"$nsys" profile --cuda-graph-trace=node --trace=cuda -f true -o "/tmp/prof-$name" \
  "$build/driver/scanflash" "$@" >"$OUT/$name-run.txt" 2>&1
"$nsys" stats --report cuda_gpu_kern_sum --format csv "/tmp/prof-$name.nsys-rep" 2>/dev/null |
  python3 -c '
import csv, sys
rows = list(csv.reader(l for l in sys.stdin if l.count(",") > 3))
head, body = rows[0], rows[1:]
i_tot, i_n, i_avg, i_name = head.index("Total Time (ns)"), head.index("Instances"), head.index("Avg (ns)"), head.index("Name")
total = sum(float(r[i_tot]) for r in body)
print(f"{total/1e6:10.2f} ms in {sum(int(r[i_n]) for r in body)} kernels")
for r in body[:25]:
    print(f"{float(r[i_tot])/1e6:10.2f} ms {int(r[i_n]):7d} x {float(r[i_avg])/1e3:8.2f} us  {r[i_name][:110]}")
' >"$OUT/$name-kernels.txt" 2>&1
cat "$OUT/$name-kernels.txt"
