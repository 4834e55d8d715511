#!/usr/bin/env bash
# The main job (`make run`): a quick sweep under MPI into an HDF5 results
# file, then its report. On a GPU machine with the cuda engine this becomes
# sweeps/quick.yaml on the GPU; until the cuda engine lands (issue 6) it runs
# sweeps/tiny.yaml on the cpu backend everywhere, which exercises the whole
# pipeline (packing, engine, scheduling, durable results). Results go to
# results/ (git-ignored); running it again resumes, so finished items are not
# measured twice: delete results/ to measure afresh.
set -eu
build=${1:-build}
bin="$build/driver/scanflash"
report="$build/analysis/scanflash-report"
out=results
ranks=${SCANFLASH_RANKS:-2}
spec=sweeps/tiny.yaml
mkdir -p "$out"

"$bin" info
echo
echo "== $spec on the cpu backend, $ranks MPI ranks (rank 0 drives) =="
# Open MPI refuses root without these; harmless otherwise.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mpirun --oversubscribe -np "$ranks" "$bin" run "$spec" --backend cpu --resume -o "$out/tiny.h5"
if [ -x "$report" ]; then
  echo
  echo "== report: $out/report-tiny =="
  "$report" "$out/tiny.h5" -o "$out/report-tiny"
else
  echo "(scanflash-report is not built yet: no report)"
fi
