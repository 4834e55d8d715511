#!/usr/bin/env bash
# Kernel benchmarks on a GPU machine (issue 5 items 3 and 4): builds
# (Release, sm_90), runs `scanflash kernels` over the Figure 8 (left) sweep at
# a few sizes plus the decode ops and a GEMM, then the GPU op tests, within
# about 8 minutes. Logs and the results file go to $OUT (default ./bench-out):
#   env.txt          device, driver, what was built (and from which kernels)
#   build.log        configure + build
#   kernels.log      the scanflash kernels table (ceilings at the top)
#   k.h5             the same rows: /kernels, /items (status, message), /devices
#   gpu-tests.log    tests/gpu/test_gpu_ops against the cpu backend
#
#   bash bench/run-kernels.sh [--kernels-from TAR] [--quick]
#     --kernels-from TAR  build with kernels/ (and tests/gpu/test_gpu_ops.c)
#                         from TAR (git archive of a commit) instead of the
#                         working tree's: figures attributable to that commit
#                         while kernels/ is being edited
#     --quick             a short sweep (smoke test)
# On the lent GPU machine: source .device-deps/activate.sh first.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$here/bench-out}
mkdir -p "$OUT"
tarball="" quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --kernels-from) tarball=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
    --quick) quick=1; shift ;;
    *) echo "run-kernels.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
budget=${KBENCH_BUDGET_S:-480}   # seconds for the whole script
jobs=$(nproc 2>/dev/null || echo 8)
start=$SECONDS
left() { echo $((budget - (SECONDS - start))); }

src=$here
if [ -n "$tarball" ]; then
  src=/tmp/scanflash-kbench-src
  rm -rf "$src" && mkdir -p "$src"
  (cd "$here" && tar --exclude='./build*' --exclude='./.git' --exclude='./.device-deps' --exclude='./bench-out' \
     -cf - .) | tar -xf - -C "$src"
  rm -rf "$src/kernels"
  tar -xf "$tarball" -C "$src"
fi
build=$src/build-kbench-dev

# Libraries the GPU machine's image lacks beyond .device-deps (gsl, since the
# report needs it): Debian packages in .kbench-head/debs, unpacked into
# /opt/deps as .device-deps/activate.sh does.
if ! pkg-config --exists gsl 2>/dev/null && ls "$here"/.kbench-head/debs/*.deb >/dev/null 2>&1; then
  mkdir -p /opt/deps
  for f in "$here"/.kbench-head/debs/*.deb; do dpkg -x "$f" /opt/deps; done
  for l in /opt/deps/usr/lib/x86_64-linux-gnu/*.so; do
    t=$(readlink "$l"); case "$t" in /*) ln -sf "/opt/deps$t" "$l";; esac; done
  sed -i -E 's#(^|=)/usr(/|$)#\1/opt/deps/usr\2#' /opt/deps/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc
  export PKG_CONFIG_PATH="/opt/deps/usr/lib/x86_64-linux-gnu/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export CPATH="/opt/deps/usr/include${CPATH:+:$CPATH}"
  export LIBRARY_PATH="/opt/deps/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="/opt/deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "unpacked $(ls "$here"/.kbench-head/debs/*.deb | wc -l) extra packages into /opt/deps"
fi

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(hostname)"
  echo "kernels from: ${tarball:-the working tree}"
  [ -f "$here/.kbench-head/commit.txt" ] && sed 's/^/  /' "$here/.kbench-head/commit.txt"
  nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit \
    --format=csv 2>&1
  nvidia-smi -q -d CLOCK 2>&1 | sed -n '1,40p'
  nvcc --version 2>&1 | tail -2
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt" | head -8

echo "== build ($jobs jobs)"
if ! { cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
         -DSCANFLASH_CUDA=ON -DBUILD_TESTING=ON &&
       cmake --build "$build" -j "$jobs" --target scanflash test_gpu_ops test_kbench; } >"$OUT/build.log" 2>&1; then
  echo "build failed:"; tail -30 "$OUT/build.log"; exit 1
fi
echo "built in $((SECONDS - start)) s"
"$build/tests/test_kbench" >>"$OUT/build.log" 2>&1 && echo "test_kbench: passed" || echo "test_kbench: FAILED"

SF="$build/driver/scanflash"
if [ $quick -eq 1 ]; then
  lens=512,4k
  extra=(--repeats 5 --warmup 2 --max-call 0.5 --row-budget 1)
else
  lens=512,2k,8k,16k,64k,512k,1M
  extra=(--repeats 10 --warmup 3 --max-call 1.5 --row-budget 3)
fi
echo "== scanflash kernels (seqlen $lens)"
t=$(left); [ "$t" -gt 330 ] && t=330
timeout --signal=INT --kill-after=20 "$t" \
  "$SF" kernels --op all --seqlen "$lens" --dtype bf16 "${extra[@]}" -o "$OUT/k.h5" --overwrite \
  2>&1 | tee "$OUT/kernels.log"
echo "kernels: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s"

echo "== GPU op tests"
t=$(left)
if [ "$t" -gt 30 ]; then
  (cd "$build" && timeout --kill-after=10 "$t" ./tests/test_gpu_ops) >"$OUT/gpu-tests.log" 2>&1
  rc=$?
  grep -E "case\(s\)|FAIL" "$OUT/gpu-tests.log" | tail -12
  echo "gpu tests: exit $rc after $((SECONDS - start)) s"
else
  echo "no time left for the GPU tests" | tee "$OUT/gpu-tests.log"
fi
echo "== done in $((SECONDS - start)) s; summary:"
grep -E "^# (ceilings|[0-9]+ rows)" "$OUT/kernels.log"
exit 0
