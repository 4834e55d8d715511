# Helpers for the MPI tests (sourced; not a test itself: the glob takes *.sh).
# $SF_BIN is scanflash, $SF_RESULTS_KEYS the file reader, $SF_MPIRUN mpirun.
. "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"

MPIRUN=${SF_MPIRUN:-mpirun}
if [ -z "${SF_BIN:-}" ] || [ -z "${SF_RESULTS_KEYS:-}" ]; then
  echo "SKIPPED: SF_BIN / SF_RESULTS_KEYS not set (run through ctest)"; exit 77
fi
if ! [ -f "${SF_TEST_DATA:-}" ] || ! [ -f "${SF_TEST_TOKENIZER:-}" ]; then
  echo "SKIPPED: HumanEval+ data or tokenizer missing (SF_TEST_DATA, SF_TEST_TOKENIZER)"; exit 77
fi
if ! command -v "$MPIRUN" >/dev/null; then
  echo "SKIPPED: no mpirun"; exit 77
fi
export SCANFLASH_DATA=$SF_TEST_DATA SCANFLASH_TOKENIZER=$SF_TEST_TOKENIZER
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Ranks share few cores: one OpenMP thread each, or they spin against each other.
export OMP_NUM_THREADS=1
# Open MPI's own warnings (no InfiniBand etc.) are not what these tests check.
export OMPI_MCA_btl_base_warn_component_unused=0

# mpi N ARGS...: scanflash under mpirun with N ranks, killed after 300 s (a hang is a failure).
mpi() {
  local n=$1; shift
  timeout -k 5 300 "$MPIRUN" --oversubscribe -np "$n" "$SF_BIN" "$@"
}

# alone ARGS...: scanflash as one plain process (MPI singleton).
alone() { timeout -k 5 300 "$SF_BIN" "$@"; }

# plan_keys SPEC-ARGS...: the sweep's keys, sorted.
plan_keys() { "$SF_BIN" plan "$@" --format csv | grep -v '^#' | tail -n +2 | cut -d, -f2 | sort; }

# file_lines FILE: "KEY STATUS REPEATS STEPS MESSAGE" per item, sorted; fails on
# an unreadable file, a duplicate key or an orphan child row.
file_lines() { "$SF_RESULTS_KEYS" "$1" | sort; }

# check NAME CONDITION-COMMAND...: one named check.
check() {
  local name=$1; shift
  if "$@"; then echo "ok: $name"; else echo "FAIL: $name"; fails=$((fails+1)); fi
}

# complete FILE PLANKEYS-FILE: the file holds exactly the plan's keys, once each.
complete() {
  local lines
  lines=$(file_lines "$1") || { echo "  $1 does not read back"; return 1; }
  if ! diff <(echo "$lines" | cut -d' ' -f1) "$2" >/dev/null; then
    echo "  $1: keys differ from the plan:"; diff <(echo "$lines" | cut -d' ' -f1) "$2" | head -5; return 1
  fi
}

# statuses FILE: "STATUS COUNT" lines.
statuses() { file_lines "$1" | cut -d' ' -f2 | sort | uniq -c | awk '{print $2, $1}'; }

# count_status FILE STATUS
count_status() { file_lines "$1" | awk -v s="$2" '$2 == s' | wc -l; }

# rank_pid MPIRUN-PID RANK: the pid of that rank (a child of mpirun) or nothing.
rank_pid() {
  local p
  for p in $(pgrep -P "$1"); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then echo "$p"; return; fi
  done
}

# kill_job PID: kill -9 a job we started: mpirun (or the lone process) and the ranks it forked.
kill_job() {
  local kids
  kids=$(pgrep -P "$1" || true)
  kill -9 "$1" $kids 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# now; since T: wall seconds (for the logs).
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
