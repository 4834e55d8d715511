# Signals stop a sweep cleanly: SIGTERM to a lone process, SIGTERM to one
# worker rank of an mpirun job, SIGUSR1 to mpirun (which forwards it). Each
# run exits 3, the items in flight are recorded as interrupted, the file is
# closed (no journal left) and reads back; --resume then completes the sweep
# with every key once and every item ok.
. "$(dirname "$0")/lib.bash"
# Items of about 3 s each on one core (900 decode steps, 3 runs): the signal,
# a second after the start, then lands inside the first item, not in the gap
# between two (with 300 steps an item took about 1 s and the signal could
# fall between items, leaving none interrupted).
sweep=(--model tiny-mamba2,tiny-transformer --context 256 --problems 0-3 --gen 900 --repeats 2)
plan_keys "${sweep[@]}" >"$tmp/plan"
total=$(wc -l <"$tmp/plan")

# case NAME N WHO SIGNAL: start a run with N ranks (0 = alone), a second into
# the sweep send SIGNAL to WHO (job = the process we started, rank1 = worker
# rank 1).
case_() {
  local name=$1 n=$2 who=$3 sig=$4 f="$tmp/$1.h5" rc target
  if [ "$n" = 0 ]; then
    timeout -k 5 300 "$SF_BIN" run "${sweep[@]}" -o "$f" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  else
    timeout -k 5 300 "$MPIRUN" --oversubscribe -np "$n" "$SF_BIN" run "${sweep[@]}" -o "$f" \
      >"$tmp/$name.out" 2>"$tmp/$name.err" &
  fi
  local job=$! i
  # Once the sweep has started (its start line), an item is in flight a second later.
  for i in $(seq 600); do
    grep -q "item(s) to run" "$tmp/$name.err" 2>/dev/null && break
    sleep 0.1
  done
  sleep 1
  local child
  child=$(pgrep -P "$job" | head -1)   # under timeout: scanflash, or mpirun
  if [ "$who" = rank1 ]; then target=$(rank_pid "$child" 1); else target=$child; fi
  if [ -z "$target" ]; then
    echo "FAIL: $name: no process to signal"; fails=$((fails + 1)); wait "$job"; return
  fi
  kill -s "$sig" "$target"
  wait "$job"
  rc=$?
  check "$name: exit status 3 (got $rc)" test $rc -eq 3
  check "$name: says how to resume" grep -q "resume with --resume" "$tmp/$name.err"
  check "$name: file closed and readable" bash -c "test ! -e '$f.journal' && '$SF_RESULTS_KEYS' '$f' >/dev/null"
  local ni
  ni=$(count_status "$f" interrupted)
  check "$name: in-flight items recorded as interrupted ($ni)" test "$ni" -ge 1 -a "$ni" -le 2
  check "$name: not everything ran" test "$(file_lines "$f" | wc -l)" -lt "$total" -o "$ni" -ge 1
  echo "  $name: $(statuses "$f" | tr '\n' ' ')"
  expect_ok mpi 2 run "${sweep[@]}" -o "$f" --resume --quiet
  check "$name: --resume completes, keys once each" complete "$f" "$tmp/plan"
  check "$name: --resume leaves every item ok" test "$(count_status "$f" ok)" -eq "$total"
}

case_ alone_term 0 job TERM
case_ worker_term 3 rank1 TERM
case_ mpirun_usr1 3 job USR1
finish
