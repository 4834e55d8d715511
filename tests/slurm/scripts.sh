#!/usr/bin/env bash
# The Slurm templates and slurm/submit without a cluster: shell syntax, every
# #SBATCH line commented, the parameters documented, submit's --help, usage
# errors and the command lines it builds (--dry-run) for one job and arrays.
set -u
: "${SF_BIN:?run through ctest (SF_BIN)}"
: "${SF_SOURCE_DIR:?run through ctest (SF_SOURCE_DIR)}"
fails=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
check() { local what=$1; shift; if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails + 1)); fi; }
S=$SF_SOURCE_DIR/slurm
submit() { SCANFLASH=$SF_BIN "$S/submit" "$@" >"$tmp/out" 2>"$tmp/err"; }

for f in scanflash.sbatch scanflash-array.sbatch submit; do
  check "$f: exists, executable" [ -x "$S/$f" ]
  check "$f: bash -n" bash -n "$S/$f"
done

for f in scanflash.sbatch scanflash-array.sbatch; do
  # every '#SBATCH' (and switched-off '##SBATCH') line is followed by a comment line
  check "$f: every #SBATCH line has a comment" awk '
    prev && !/^#   [^ ]/ { print FILENAME ": no comment after: " prev; bad = 1 }
    { prev = /^##?SBATCH / ? $0 : "" }
    END { exit bad }' "$S/$f"
  for want in '--requeue' '--signal=B:USR1@' '--ntasks-per-node=' '--gres=gpu:' '--time=' '--open-mode=append'; do
    check "$f: #SBATCH $want" grep -q -- "^#SBATCH $want" "$S/$f"
  done
  for p in SPEC OUT SCANFLASH SCANFLASH_ARGS SRUN_ARGS RESUME REQUEUE; do
    check "$f: parameter $p documented in the header" grep -Eq "^#   $p( |$)" "$S/$f"
  done
  check "$f: srun --mpi=pmix ... run" grep -q 'srun --mpi=pmix' "$S/$f"
  check "$f: forwards SIGUSR1 to the step" grep -q 'kill -USR1 "$step_pid"' "$S/$f"
  check "$f: requeues itself" grep -q 'scontrol requeue "$SLURM_JOB_ID"' "$S/$f"
  # outside Slurm: a clear error, exit 1
  env -u SLURM_JOB_ID bash "$S/$f" >"$tmp/out" 2>&1
  check "$f: outside a job: exit 1" [ $? -eq 1 ]
  check "$f: outside a job: says so" grep -q "not inside a Slurm job" "$tmp/out"
done
check "array: --shard from the array task" grep -q -- '--shard "$SHARD/$SHARDS"' "$S/scanflash-array.sbatch"
check "array: names the merge command" grep -q 'scanflash merge' "$S/scanflash-array.sbatch"
# array task id beyond the count: clear error
SLURM_JOB_ID=1 SLURM_ARRAY_TASK_ID=5 SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=0 SCANFLASH=$SF_BIN \
  SPEC= bash "$S/scanflash-array.sbatch" >"$tmp/out" 2>&1
check "array: task 5 of 2 refused" [ $? -eq 1 ]
check "array: task 5 of 2: says why" grep -q "not below the shard count 2" "$tmp/out"

# ---- slurm/submit
submit --help
check "submit --help: exit 0" [ $? -eq 0 ]
for o in --nodes --gpus-per-node --time --partition --account --array --dry-run; do
  check "submit --help names $o" grep -q -- "$o" "$tmp/out"
done
submit; check "submit without a sweep: exit 2" [ $? -eq 2 ]
submit --bogus x.yaml; check "submit --bogus: exit 2" [ $? -eq 2 ]
check "submit --bogus: one line" [ "$(wc -l <"$tmp/err")" -eq 1 ]
submit --nodes two "$SF_SOURCE_DIR/sweeps/tiny.yaml" -n; check "submit --nodes two: exit 2" [ $? -eq 2 ]
submit "$tmp/missing.yaml" -n; check "submit missing spec: exit 1" [ $? -eq 1 ]
SCANFLASH= "$S/submit" --bin "$tmp/nope" "$SF_SOURCE_DIR/sweeps/tiny.yaml" -n >/dev/null 2>"$tmp/err"
check "submit --bin missing: exit 1" [ $? -eq 1 ]

n_tiny=$("$SF_BIN" plan "$SF_SOURCE_DIR/sweeps/tiny.yaml" --format csv | grep -cEv '^(#|index,)')
submit "$SF_SOURCE_DIR/sweeps/tiny.yaml" --dry-run
check "dry-run one job: exit 0" [ $? -eq 0 ]
check "dry-run one job: item count from plan" grep -q "^# items: $n_tiny " "$tmp/err"
check "dry-run one job: suggests a time" grep -Eq "suggested --time [0-9:-]+" "$tmp/err"
check "dry-run one job: one command" [ "$(wc -l <"$tmp/out")" -eq 1 ]
check "dry-run one job: the single-job script, 4 ranks, 4 GPUs" \
  grep -Eq "sbatch --nodes=1 --ntasks-per-node=4 --gres=gpu:4 --time=[0-9:]+ .*/slurm/scanflash.sbatch$" "$tmp/out"
check "dry-run one job: SPEC, OUT and the binary passed on" \
  grep -q "SCANFLASH=$SF_BIN OUT=results.h5 SPEC=$SF_SOURCE_DIR/sweeps/tiny.yaml " "$tmp/out"

submit "$SF_SOURCE_DIR/sweeps/quick.yaml" -n --nodes 2 --gpus-per-node 8 --time 1:30:00 --partition gpu \
  --account proj -o q.h5 --run-args "--backend cuda --retry-failed" --sbatch-arg=--qos=long
check "dry-run options: exit 0" [ $? -eq 0 ]
check "dry-run options: in the command" grep -q -- \
  "sbatch --nodes=2 --ntasks-per-node=8 --gres=gpu:8 --time=1:30:00 --partition=gpu --account=proj --qos=long " "$tmp/out"
check "dry-run options: run args and output" grep -q -- "OUT=q.h5 .*'SCANFLASH_ARGS=--backend cuda --retry-failed'" "$tmp/out"
check "dry-run options: 16 ranks, 15 running items" grep -q "ranks: 2 node(s) x 8 = 16 per job, 15 running items" "$tmp/err"

# a bigger sweep gets a longer suggested limit; more ranks a shorter one
t_of() { grep -oE 'suggested --time [0-9:-]+' "$tmp/err" | awk '{ n = split($3, a, /[-:]/); s = 0
  if (n == 4) s = a[1] * 86400; s += a[n-2] * 3600 + a[n-1] * 60 + a[n]; print s }'; }
submit "$SF_SOURCE_DIR/sweeps/long-context.yaml" -n --margin 1 --overhead 0; t1=$(t_of)
submit "$SF_SOURCE_DIR/sweeps/long-context.yaml" -n --margin 1 --overhead 0 --nodes 4; t4=$(t_of)
submit "$SF_SOURCE_DIR/sweeps/tiny.yaml" -n --margin 1 --overhead 0; t0=$(t_of)
check "suggested time: long-context ($t1 s) > tiny ($t0 s)" [ "${t1:-0}" -gt "${t0:-0}" ]
check "suggested time: 4 nodes ($t4 s) < 1 node ($t1 s)" [ "${t4:-0}" -lt "${t1:-0}" ]
submit "$SF_SOURCE_DIR/sweeps/long-context.yaml" -n --margin 1 --overhead 0 --speed 0.5; th=$(t_of)
check "suggested time: --speed 0.5 about doubles it" [ "${th:-0}" -ge $((2 * t1 - 120)) ]

submit "$SF_SOURCE_DIR/sweeps/tiny.yaml" -n --array 3 -o tiny.h5
check "dry-run array: exit 0" [ $? -eq 0 ]
check "dry-run array: the array script, 3 tasks, SHARDS=3" \
  grep -Eq '^JOBID=\$\(env .*SHARDS=3 sbatch .*--array=0-2 --parsable .*/slurm/scanflash-array.sbatch\)$' "$tmp/out"
check "dry-run array: dependent merge of the 3 shards" \
  grep -q "^sbatch .*--dependency=afterok:\$JOBID --wrap '$SF_BIN merge tiny.shard0.h5 tiny.shard1.h5 tiny.shard2.h5 -o tiny.h5'$" "$tmp/out"
submit "$SF_SOURCE_DIR/sweeps/tiny.yaml" -n --array 4 --max-running 2 --no-merge
check "dry-run array --max-running --no-merge" grep -q -- "--array=0-3%2 " "$tmp/out"
check "dry-run array --no-merge: merge left to the user" grep -q "^# then, when every task has succeeded: .* merge " "$tmp/out"
submit -n --gpus-per-node 0 --tasks-per-node 2 --run-args "--backend cpu" -- --model tiny-mamba1 --context 128 --problems 0-1
check "dry-run quick flags, no GPUs: exit 0" [ $? -eq 0 ]
check "dry-run quick flags: --gres=none, 2 ranks" grep -q -- "--ntasks-per-node=2 --gres=none " "$tmp/out"
check "dry-run quick flags: passed as run arguments, SPEC empty" \
  grep -q -- "SPEC= 'SCANFLASH_ARGS=--model tiny-mamba1 --context 128 --problems 0-1 --backend cpu'" "$tmp/out"
submit "$SF_SOURCE_DIR/sweeps/tiny.yaml" -n --array 2 -o tiny
check "dry-run array with an output not ending in .h5: exit 1" [ $? -eq 1 ]

# the printed command is valid shell (parse it; 'sbatch' replaced by a stub)
submit "$SF_SOURCE_DIR/sweeps/tiny.yaml" -n -o "my results.h5" --run-args "--backend cpu"
mkdir -p "$tmp/bin"; printf '#!/bin/sh\necho "OUT=$OUT|SCANFLASH_ARGS=$SCANFLASH_ARGS|$*"\n' >"$tmp/bin/sbatch"; chmod +x "$tmp/bin/sbatch"
PATH=$tmp/bin:$PATH bash "$tmp/out" >"$tmp/ran" 2>&1
check "printed command runs as shell, values intact" grep -q "^OUT=my results.h5|SCANFLASH_ARGS=--backend cpu|--nodes=1 " "$tmp/ran"

if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all passed"
