#!/usr/bin/env bash
# The main job (`make run`): a quick sweep under MPI into an HDF5 results
# file, then its report. Where scanflash was built with CUDA and sees a GPU:
# sweeps/quick.yaml on the GPUs (one rank per GPU; rank 0 drives and computes
# when alone, so one GPU is one rank); else sweeps/tiny.yaml on the cpu
# backend with two ranks, which exercises the same pipeline (packing, engine,
# scheduling, durable results). Results go to results/ (git-ignored); running
# it again resumes, so finished items are not measured twice: delete results/
# to measure afresh.
set -eu
build=${1:-build}
bin="$build/driver/scanflash"
report="$build/analysis/scanflash-report"
out=results
mkdir -p "$out"

"$bin" info | tee "$out/info.txt"
gpus=$(sed -n 's/^gpus: *\([0-9][0-9]*\).*/\1/p' "$out/info.txt")
if grep -q '^  features .*cuda' "$out/info.txt" && [ "${gpus:-0}" -gt 0 ]; then
  name=quick backend=cuda
  ranks=${SCANFLASH_RANKS:-$((gpus > 1 ? gpus + 1 : 1))}
else
  name=tiny backend=cpu
  ranks=${SCANFLASH_RANKS:-2}
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fi
spec=sweeps/$name.yaml
echo
echo "== $spec on the $backend backend, $ranks MPI rank(s)$([ "$ranks" -gt 1 ] && echo ' (rank 0 drives)') =="
# Open MPI refuses root without these; harmless otherwise.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun --oversubscribe -np "$ranks" "$bin" run "$spec" --backend "$backend" --resume -o "$out/$name.h5"
if [ -x "$report" ]; then
  echo
  echo "== report: $out/report-$name =="
  "$report" "$out/$name.h5" -o "$out/report-$name"
else
  echo "(scanflash-report is not built yet: no report)"
fi
