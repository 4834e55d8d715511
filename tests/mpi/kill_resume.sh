# kill -9 of the whole job (mpirun and every rank, or the lone process) at
# random moments, then --resume, again and again: the file ends with the
# complete set of keys, once each, every item ok, and it reads back. Trials
# fill about 60 s (SF_LONG_TESTS=1: about 5 minutes); replay the kill times
# with SF_TEST_SEED.
. "$(dirname "$0")/lib.bash"
sweep=(--model tiny-mamba1,tiny-mamba2,tiny-transformer --context 256,512 --batch 1,2 --gen 32 --problems 0-3
       --repeats 2 --warmup 1)
plan_keys "${sweep[@]}" >"$tmp/plan"
budget=60
[ "${SF_LONG_TESTS:-0}" = 1 ] && budget=300
seed=${SF_TEST_SEED:-$(date +%s)}
RANDOM=$seed
echo "seed $seed (replay with SF_TEST_SEED=$seed), budget $budget s, $(wc -l <"$tmp/plan") items"

# start N FILE [--resume]: the job in the background; its pid in $job.
start() {
  local n=$1; shift
  if [ "$n" = 0 ]; then
    "$SF_BIN" run "${sweep[@]}" --quiet -o "$@" >>"$tmp/log" 2>&1 &
  else
    "$MPIRUN" --oversubscribe -np "$n" "$SF_BIN" run "${sweep[@]}" --quiet -o "$@" >>"$tmp/log" 2>&1 &
  fi
  job=$!
}

t_start=$(date +%s)
trial=0
kills=0
while [ $(( $(date +%s) - t_start )) -lt "$budget" ] || [ $trial -lt 2 ]; do
  trial=$((trial + 1))
  n=$(( trial % 3 ))                      # alone, 1 worker, 2 workers
  [ $n -gt 0 ] && n=$((n + 1))
  f="$tmp/trial$trial.h5"
  resume=""
  for round in 1 2 3; do
    start "$n" "$f" $resume
    # 0.1 .. 5.0 s: during setup, the first items, the middle, the close
    ms=$(( 100 + RANDOM % 4900 ))
    sleep "$(awk -v m=$ms 'BEGIN { printf "%.3f", m / 1000 }')"
    if kill -0 "$job" 2>/dev/null; then
      kill_job "$job"
      kills=$((kills + 1))
      echo "trial $trial (ranks: $([ $n = 0 ] && echo alone || echo $n)): killed after $ms ms"
    else
      wait "$job" || true
      echo "trial $trial: finished before the kill at $ms ms"
    fi
    resume=--resume
  done
  # A last resume, left to finish.
  if ! timeout -k 5 300 "$SF_BIN" run "${sweep[@]}" --quiet -o "$f" --resume >>"$tmp/log" 2>&1; then
    echo "FAIL: trial $trial: the final --resume failed:"; tail -5 "$tmp/log"; fails=$((fails + 1)); continue
  fi
  check "trial $trial: the plan's keys, once each, file readable" complete "$f" "$tmp/plan"
  check "trial $trial: every item ok" test "$(count_status "$f" ok)" -eq "$(wc -l <"$tmp/plan")"
  check "trial $trial: no journal left" test ! -e "$f.journal"
  rm -f "$f"*
done
echo "$trial trials, $kills kills in $(( $(date +%s) - t_start )) s"
check "at least one kill landed" test "$kills" -ge 1
finish
