# Helpers for the Slurm tests (sourced; not a test itself: ctest runs
# tests/slurm/*.sh). Each test starts the local single-node Slurm of
# ../shared/recipes/slurm-local.sh (real slurmctld + slurmd + munge, Debian's
# Slurm 22.05 and Open MPI), runs the sbatch templates of slurm/ on the cpu
# backend, checks the results files, and stops Slurm again.
#
# Needs: root (the recipe installs packages and starts daemons), the recipe,
# `scanflash run`. Without them the test is skipped (exit 77) and says why.
# Environment (ctest sets them): SF_BIN, SF_SOURCE_DIR, SF_TEST_DATA,
# SF_TEST_TOKENIZER. SF_SLURM_KEEP=1 keeps Slurm running and the work folder.
set -u
: "${SF_BIN:?run through ctest (SF_BIN)}"
: "${SF_SOURCE_DIR:?run through ctest (SF_SOURCE_DIR)}"

fails=0
recipe=${SF_SLURM_RECIPE:-$SF_SOURCE_DIR/../shared/recipes/slurm-local.sh}
slurm_dir=$SF_SOURCE_DIR/slurm
h5keys="python3 $(dirname "${BASH_SOURCE[0]}")/h5keys.py"

say() { echo "[$(date +%T)] $*"; }
skip() { echo "SKIP: $*"; exit 77; }
check() { # check DESCRIPTION CMD...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails + 1)); fi
}
finish() {
  if [ $fails -ne 0 ]; then echo "$fails failure(s) (work folder kept: $work)"; exit 1; fi
  echo "all passed"; exit 0
}

# ---- preconditions and Slurm start/stop
[ "$(id -u)" = 0 ] || skip "the Slurm tests run as root (they install and start a local Slurm with $recipe)"
[ -f "$recipe" ] || skip "no Slurm recipe at $recipe"
"$SF_BIN" run --help >/dev/null 2>&1 || skip "'scanflash run' is not available in $SF_BIN yet"
command -v h5dump >/dev/null || skip "h5dump not found (hdf5-tools)"
command -v python3 >/dev/null || skip "python3 not found"

work=$(mktemp -d /tmp/sf-slurm-test.XXXXXX)
slurm_started=0
cleanup() {
  local rc=$?
  if [ "${SF_SLURM_KEEP:-0}" = 1 ]; then
    say "SF_SLURM_KEEP=1: Slurm left running, work folder $work"
  else
    if [ $slurm_started = 1 ]; then bash "$recipe" stop >/dev/null 2>&1 || true; fi
    [ $rc = 0 ] || [ $rc = 77 ] || { say "work folder kept: $work"; return; }
    rm -rf "$work"
  fi
}
trap cleanup EXIT

start_slurm() {
  say "starting the local Slurm ($recipe)"
  slurm_started=1
  # the node advertises 4 CPUs by default, so 2-rank jobs fit on a 2-core machine
  if ! SLURM_LOCAL_CPUS=${SLURM_LOCAL_CPUS:-4} bash "$recipe" start >"$work/slurm-start.log" 2>&1; then
    cat "$work/slurm-start.log"; echo "FAIL: the local Slurm did not start"; exit 1
  fi
  tail -n 1 "$work/slurm-start.log" | sed 's/^/  /'
}

# ---- the job's environment: cpu backend, data files, this build's binary
export SCANFLASH=$SF_BIN
export SCANFLASH_DATA=${SF_TEST_DATA:-}
export SCANFLASH_TOKENIZER=${SF_TEST_TOKENIZER:-}
[ -n "$SCANFLASH_DATA" ] || unset SCANFLASH_DATA
[ -n "$SCANFLASH_TOKENIZER" ] || unset SCANFLASH_TOKENIZER
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset SPEC OUT SCANFLASH_ARGS SRUN_ARGS RESUME REQUEUE SHARDS 2>/dev/null || true
# What the templates ask for (4 GPUs per node, 8 cores per rank) does not
# exist here: 2 ranks, no GRES, 1 core each. Everything else is the template's.
cpu_job_opts=(--gres=none --ntasks-per-node=2 --cpus-per-task=1 --time=10)

# ---- jobs
# job_field ID FIELD: a field of 'scontrol show job' (first record)
job_field() { scontrol -o show job "$1" 2>/dev/null | head -n 1 | grep -oE "(^| )$2=[^ ]*" | head -n 1 | cut -d= -f2-; }

# wait_job ID [TIMEOUT_S]: polls every second until every record of the job
# (all array tasks) has ended; prints the states; returns the highest exit
# code (1 at least for a record that did not end COMPLETED; 124 on timeout).
wait_job() {
  local id=$1 limit=${2:-300} t=0 out
  while :; do
    out=$(scontrol -o show job "$id" 2>/dev/null) || { echo "cannot query job $id"; return 1; }
    awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^JobState=/) s = substr($i, 10)
           if (s !~ /^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|PREEMPTED|BOOT_FAIL|DEADLINE|OUT_OF_MEMORY)$/) busy = 1 }
         END { exit busy }' <<<"$out" && break
    t=$((t + 1))
    if [ $t -ge "$limit" ]; then echo "job $id still not done after ${limit}s:"; echo "$out"; return 124; fi
    sleep 1
  done
  awk '{ for (i = 1; i <= NF; i++) { if ($i ~ /^JobId=/) j = substr($i, 7); if ($i ~ /^JobState=/) s = substr($i, 10)
                                      if ($i ~ /^ExitCode=/) x = substr($i, 10); if ($i ~ /^Restarts=/) r = substr($i, 10) }
         print "  job " j ": " s ", exit " x ", restarts " r }' <<<"$out"
  awk '{ for (i = 1; i <= NF; i++) { if ($i ~ /^JobState=/) s = substr($i, 10); if ($i ~ /^ExitCode=/) x = substr($i, 10) }
         split(x, a, ":"); c = (a[2] != 0) ? 1 : a[1]; if (s != "COMPLETED" && c == 0) c = 1; if (c > m) m = c }
       END { exit m + 0 }' <<<"$out"
}

# wait_state ID REGEX [TIMEOUT_S]: until the job's state matches
wait_state() {
  local id=$1 re=$2 limit=${3:-120} t=0 s
  while :; do
    s=$(job_field "$id" JobState)
    [[ "$s" =~ $re ]] && return 0
    t=$((t + 1)); [ $t -ge "$limit" ] && { echo "job $id: state '$s' after ${limit}s, wanted /$re/"; return 1; }
    sleep 1
  done
}

# release_requeued ID: a requeued job waits about 2 minutes (Slurm's begin
# time for requeued jobs, the job credential's lifetime); tests let it start
# 2 s after it is back in the queue: slurmd refuses a launch whose credential
# is from the same second as the revocation of the previous run's
# ("Job credential revoked").
release_requeued() {
  local id=$1 t
  for t in $(seq 1 60); do
    case "$(job_field "$id" JobState)" in
      PENDING) sleep 2; scontrol update JobId="$id" StartTime=now && return 0 ;;
      COMPLETED|FAILED|CANCELLED|TIMEOUT) return 0 ;;
    esac
    sleep 1
  done
  echo "job $id never came back to PENDING"; return 1
}

# ---- keys
# plan_keys SPEC [ARGS...]: the sweep's keys, sorted
plan_keys() { "$SF_BIN" plan "$@" --format csv | awk -F, '/^#/ { next } !h { for (i = 1; i <= NF; i++) if ($i == "key") k = i; h = 1; next } { print $k }' | sort; }
# file_keys FILE: "KEY STATUS" rows of /items (unsorted, duplicates kept)
file_rows() { $h5keys "$1"; }
# check_file DESC FILE EXPECTED_KEYS_FILE [all-ok]: the keys are exactly the
# expected ones, each once, and no item is left interrupted (every item
# finished); with all-ok every item's status is ok.
check_file() {
  local what=$1 f=$2 want=$3 all_ok=${4:-} before=$fails
  if ! file_rows "$f" >"$work/rows.txt"; then echo "FAIL: $what: cannot read $f"; fails=$((fails + 1)); return 0; fi
  cut -d' ' -f1 "$work/rows.txt" | sort >"$work/got.txt"
  check "$what: $(wc -l <"$work/got.txt") rows for $(wc -l <"$want") planned keys, same key set" \
    cmp -s <(sort -u "$work/got.txt") "$want"
  check "$what: no duplicate key" [ -z "$(uniq -d "$work/got.txt")" ]
  check "$what: no item left interrupted (statuses: $(cut -d' ' -f2 "$work/rows.txt" | sort | uniq -c | awk '{ printf "%s%s %s", s, $1, $2; s = ", " }'))" \
    [ -z "$(awk '$2 == "interrupted"' "$work/rows.txt")" ]
  [ "$all_ok" = all-ok ] && check "$what: every item ok" [ -z "$(awk '$2 != "ok"' "$work/rows.txt")" ]
  if [ $fails -ne $before ]; then
    diff <(sort -u "$work/got.txt") "$want" | head -n 20
    uniq -d "$work/got.txt" | head -n 5 | sed 's/^/  duplicate: /'
    awk '$2 != "ok"' "$work/rows.txt" | head -n 5 | sed 's/^/  not ok: /'
  fi
  return 0
}

# long_spec FILE [PROBLEMS]: a cpu sweep of 9 tiny items per problem (0-9:
# 90 items, about 25 s on one cpu worker rank of a 2-core machine): long
# enough to interrupt after a few items
long_spec() {
  sed "s/^problems: .*/problems: ${2:-0-9}/" >"$1" <<'EOF'
# tests/slurm: 9 tiny items per problem, 90 take about 25 s on one cpu rank
name: slurm-requeue
kinds: [generate]
models: [tiny-mamba1, tiny-mamba2, tiny-transformer]
contexts: [512, 1024, 2048]
batches: [1]
gens: [32]
problems: 0-9
repeats: 2
warmup: 1
seed: 0
dtype: bf16
item_timeout: 60
EOF
}

# journal_items OUT: item records in OUT.journal so far (the run in progress)
journal_items() { $h5keys --journal-items "$1.journal"; }

# wait_items ID OUT N [TIMEOUT_S]: until job ID has N items durable in OUT's
# journal; fails when the job ends first
wait_items() {
  local id=$1 out=$2 n=$3 limit=${4:-180} t=0 k s
  while :; do
    k=$(journal_items "$out")
    [ "${k:-0}" -ge "$n" ] && return 0
    s=$(job_field "$id" JobState)
    case "$s" in RUNNING|PENDING|CONFIGURING) ;; *) echo "job $id is $s with $k item(s) in $out.journal, wanted $n"; return 1 ;; esac
    t=$((t + 1)); [ $t -ge $((limit * 5)) ] && { echo "only $k item(s) after ${limit}s"; return 1; }
    sleep 0.2
  done
}

# kept_items BEFORE.h5 AFTER.h5: every item that was ok in BEFORE has the
# same t_start in AFTER (it was not run again)
kept_items() {
  local b
  b=$($h5keys "$1" t_start | awk '$2 == "ok" { print $1, $3 }' | sort) || return 1
  [ -n "$b" ] || return 1
  comm -23 <(echo "$b") <($h5keys "$2" t_start | awk '{ print $1, $3 }' | sort) | grep -q . && return 1
  return 0
}

# show_log FILE: the job log, indented
show_log() { [ -f "$1" ] && sed 's/^/  | /' "$1"; }
