#!/usr/bin/env bash
# End-to-end engine measurements on a GPU machine (issue 6): builds (Release,
# sm_90), runs the GPU engine test, the main job (`make run`'s script, timed),
# then the sweeps named on the command line, each into its own results file
# with its report. Logs and results go to $OUT (default ./bench-out):
#   env.txt             device, driver, commit
#   build.log           configure + build
#   gpu-engine.log      tests/gpu/test_gpu_engine (GPU vs cpu logits, graphs, OOM)
#   main-job.log        tools/run-main-job.sh (sweeps/quick.yaml) with its wall time
#   SWEEP.h5/.log       each sweep's results and stderr; SWEEP-report.md its report
#
#   bash bench/run-engine.sh [--skip-main] [--skip-test] [SWEEP.yaml | FLAGS...]...
# A sweep argument is a spec file, or a quoted quick-sweep flag string
# ("--arch mamba1 --model mamba-1.4b --context 2k --batch 1 ...") named
# flags-N. On the lent GPU machine: source .device-deps/activate.sh first.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$here/bench-out}
mkdir -p "$OUT"
skip_main=0 skip_test=0 sweeps=()
for a in "$@"; do
  case "$a" in
    --skip-main) skip_main=1 ;;
    --skip-test) skip_test=1 ;;
    *) sweeps+=("$a") ;;
  esac
done
build=$here/build-engine-dev
jobs=$(nproc 2>/dev/null || echo 8)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [ -n "${DEVICE_DATA:-}" ]; then  # the lent machine keeps the data apart from the tree
  export SCANFLASH_DATA=$DEVICE_DATA/humanevalplus/HumanEvalPlus.jsonl.gz
  export SCANFLASH_TOKENIZER=$DEVICE_DATA/tokenizer/20B_tokenizer.json
fi

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(cat "$here/.bench-commit" 2>/dev/null || git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit --format=csv 2>&1
} >"$OUT/env.txt"
cat "$OUT/env.txt"

echo "== build ($jobs jobs)"
if ! { cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
         -DSCANFLASH_CUDA=ON -DBUILD_TESTING=ON -DSF_TEST_DATA_DIR="${DEVICE_DATA:-$here/../shared/data}" &&
       cmake --build "$build" -j "$jobs" --target scanflash scanflash-report test_gpu_engine; } >"$OUT/build.log" 2>&1; then
  echo "build failed:"; tail -30 "$OUT/build.log"; exit 1
fi
bin=$build/driver/scanflash
report=$build/analysis/scanflash-report

if [ $skip_test = 0 ]; then
  echo "== GPU engine test"
  "$build/tests/test_gpu_engine" >"$OUT/gpu-engine.log" 2>&1
  echo "exit $?"; tail -8 "$OUT/gpu-engine.log"
fi

if [ $skip_main = 0 ]; then
  echo "== main job (sweeps/quick.yaml)"
  rm -rf "$here/results"
  start=$SECONDS
  (cd "$here" && tools/run-main-job.sh "$build") >"$OUT/main-job.log" 2>&1
  rc=$?
  echo "main job: exit $rc, $((SECONDS - start)) s wall" | tee -a "$OUT/main-job.log"
  tail -25 "$OUT/main-job.log"
  cp "$here/results/report-quick/report.md" "$OUT/quick-report.md" 2>/dev/null
fi

n=0
for s in "${sweeps[@]}"; do
  n=$((n + 1))
  if [ -f "$here/$s" ]; then name=$(basename "$s" .yaml); args=("$here/$s")
  else name=flags-$n; read -r -a args <<<"$s"; fi
  echo "== sweep $name"
  start=$(date +%s)
  mpirun --oversubscribe -np 1 "$bin" run "${args[@]}" --backend cuda --progress 30 -o "$OUT/$name.h5" \
    >"$OUT/$name.log" 2>&1
  echo "exit $?, $(( $(date +%s) - start )) s"; tail -12 "$OUT/$name.log"
  "$report" "$OUT/$name.h5" -o "/tmp/report-$name" >/dev/null 2>&1 && cp "/tmp/report-$name/report.md" "$OUT/$name-report.md"
done
