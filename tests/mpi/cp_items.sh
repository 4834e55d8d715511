# Context-parallel items end to end (issues 8 and 4): a quick sweep of the
# tiny models where the items of context >= 512 need 2 GPUs.
#   - mpirun -np 3 (2 workers: one group) and -np 5 (4 workers: two groups
#     or a group and single items at once): every item finishes ok, the
#     context-parallel ones say so and have finite metrics, and the keys are
#     the plan's, once each;
#   - -np 2 (one worker) and alone: the same keys; the 2-GPU items are
#     skipped with a message naming 2 and the largest node group (1), the
#     others ok; items needing 4 GPUs under -np 3: skipped, naming 4 and 2;
#   - nodes as the driver sees them (SCANFLASH_TEST_RANKS_PER_NODE): groups
#     only form within one node;
#   - a failure of group rank 1 in the middle of a context-parallel item
#     (SCANFLASH_FAIL_ITEM=KEY@1) is that item's error on the leader's row,
#     naming the failed rank; the rest of the sweep goes on (no hang);
#   - SIGUSR1 with a context-parallel item in flight: exit 3, the item
#     recorded interrupted once, --resume completes every key once.
. "$(dirname "$0")/lib.bash"
sweep=(--model tiny-mamba1,tiny-mamba2,tiny-transformer --context 256,512 --batch 1,2 --problems 0-1 --gen 4
       --repeats 2 --warmup 1 --gpus '1,>=512:2')
plan_keys "${sweep[@]}" >"$tmp/plan"
"$SF_BIN" plan "${sweep[@]}" --format csv | grep -v '^#' | tail -n +2 | awk -F, '$11 == 2 { print $2 }' | sort >"$tmp/cp"
total=$(wc -l <"$tmp/plan")
ncp=$(wc -l <"$tmp/cp")
check "the sweep has context-parallel and one-GPU items" test "$ncp" -ge 3 -a "$ncp" -lt "$total"

# ok_cp FILE: every 2-GPU item ok, run as context parallel, with finite positive metrics.
ok_cp() {
  local f=$1 k line bad=0
  while read -r k; do
    line=$(file_lines "$f" | grep "^$k ")
    case "$line" in
      "$k ok "*"context parallel over 2 ranks"*) ;;
      *) echo "  $k: $line"; bad=1 ;;
    esac
  done <"$tmp/cp"
  # key arch model context batch status ttft prefill decode e2e tpot peak rank
  "$SF_RESULTS_KEYS" "$f" --metrics | grep -F -f "$tmp/cp" | awk '
    { for (i = 7; i <= 12; i++) if (!($i > 0) || $i == "nan" || $i == "inf") { print "  not finite:", $0; bad = 1 } }
    END { exit bad }' || bad=1
  return $bad
}
# ok_single FILE: every one-GPU item ok.
ok_single() {
  test "$(file_lines "$1" | grep -v -F -f "$tmp/cp" | awk '$2 != "ok"' | wc -l)" -eq 0
}
# skipped_cp FILE TEXT: every 2-GPU item skipped with TEXT in its message.
skipped_cp() {
  test "$(file_lines "$1" | grep -F -f "$tmp/cp" | grep -c " skipped 0 0 .*$2")" -eq "$ncp"
}

for n in 3 5; do
  t0=$(now)
  expect_ok mpi "$n" run "${sweep[@]}" -o "$tmp/np$n.h5"
  echo "  np=$n: $(since "$t0") s"
  check "np $n: the plan's keys, once each" complete "$tmp/np$n.h5" "$tmp/plan"
  check "np $n: context-parallel items ok, finite metrics" ok_cp "$tmp/np$n.h5"
  check "np $n: one-GPU items ok" ok_single "$tmp/np$n.h5"
  check "np $n: done, none failed" grep -q "done: $total/$total items, 0 failed" "$tmp/err"
done
echo "context-parallel items of the np=5 run:"
"$SF_RESULTS_KEYS" "$tmp/np5.h5" --metrics | grep -F -f "$tmp/cp" |
  awk '{ printf "  %s ctx %s batch %s: ttft %.4f s, decode %.0f tok/s (rank %s leads)\n", $3, $4, $5, $7, $9, $13 }'

# Without enough ranks on a node: the same keys, the 2-GPU items skipped.
expect_ok mpi 2 run "${sweep[@]}" -o "$tmp/np2.h5"
check "np 2: the plan's keys, once each" complete "$tmp/np2.h5" "$tmp/plan"
check "np 2: 2-GPU items skipped, naming 2 and the largest node group" \
  skipped_cp "$tmp/np2.h5" "needs 2 GPUs (ranks of one node): the largest node group has 1 worker rank(s)"
check "np 2: one-GPU items ok" ok_single "$tmp/np2.h5"
expect_ok alone run "${sweep[@]}" -o "$tmp/alone.h5" --quiet
check "alone: the plan's keys" complete "$tmp/alone.h5" "$tmp/plan"
check "alone: 2-GPU items skipped (rank 0 runs alone)" skipped_cp "$tmp/alone.h5" "largest node group has 1 worker rank (rank 0 runs alone"
expect_ok mpi 3 run --model tiny-transformer --context 256 --problems 0-1 --gen 4 --repeats 1 --warmup 0 --gpus 4 \
  -o "$tmp/g4.h5" --quiet
check "np 3, 4 GPUs per item: skipped, naming 4 and 2" test "$(file_lines "$tmp/g4.h5" | \
  grep -c 'skipped 0 0 needs 4 GPUs (ranks of one node): the largest node group has 2 worker rank(s)')" -eq 2

# Several nodes (as the driver sees them: SCANFLASH_TEST_RANKS_PER_NODE=2
# under -np 5 makes nodes {0,1}, {2,3}, {4}): a 2-GPU item only goes to the
# node with two workers, led by rank 2; 3-GPU items are skipped, naming 3
# and 2.
SCANFLASH_TEST_RANKS_PER_NODE=2 mpi 5 run "${sweep[@]}" -o "$tmp/nodes.h5" >"$tmp/out" 2>"$tmp/err"
check "fake nodes: exit 0" test $? -eq 0
check "fake nodes: complete" complete "$tmp/nodes.h5" "$tmp/plan"
check "fake nodes: context-parallel items ok" ok_cp "$tmp/nodes.h5"
check "fake nodes: every group led by rank 2 (the only node with two workers)" \
  test "$("$SF_RESULTS_KEYS" "$tmp/nodes.h5" --metrics | grep -F -f "$tmp/cp" | awk '$13 != 2' | wc -l)" -eq 0
check "fake nodes: one-GPU items ok" ok_single "$tmp/nodes.h5"
SCANFLASH_TEST_RANKS_PER_NODE=2 mpi 5 run --model tiny-mamba1 --context 256 --problems 0-1 --gen 4 --repeats 1 \
  --warmup 0 --gpus 3 -o "$tmp/g3.h5" >"$tmp/out" 2>"$tmp/err"
check "fake nodes, 3 GPUs per item: skipped, naming 3 and 2" test "$(file_lines "$tmp/g3.h5" | \
  grep -c 'skipped 0 0 needs 3 GPUs (ranks of one node): the largest node group has 2 worker rank(s)')" -eq 2

# A member fails in the middle of a context-parallel item.
bad=$(head -1 "$tmp/cp")
SCANFLASH_FAIL_ITEM="$bad@1" mpi 3 run "${sweep[@]}" -o "$tmp/fail.h5" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "member failure: exit 0 (got $rc)" test $rc -eq 0
check "member failure: complete" complete "$tmp/fail.h5" "$tmp/plan"
check "member failure: the item is an error naming group rank 1" \
  bash -c "'$SF_RESULTS_KEYS' '$tmp/fail.h5' | grep '^$bad error 0 0 ' | grep -q 'rank 1 of 2 failed'"
check "member failure: every other item ok" test "$(count_status "$tmp/fail.h5" ok)" -eq $((total - 1))
check "member failure: the member's own message on stderr" \
  grep -q "rank 2, in the group running item $bad: injected failure on group rank 1" "$tmp/err"

# SIGUSR1 to mpirun while a context-parallel item runs, then --resume.
long=(--model tiny-transformer,tiny-mamba2 --context 512 --problems 0-3 --gen 300 --repeats 2 --gpus 2)
plan_keys "${long[@]}" >"$tmp/plan_long"
timeout -k 5 300 "$MPIRUN" --oversubscribe -np 3 "$SF_BIN" run "${long[@]}" -o "$tmp/sig.h5" \
  >"$tmp/sig.out" 2>"$tmp/sig.err" &
job=$!
for i in $(seq 600); do
  grep -q "item(s) to run" "$tmp/sig.err" 2>/dev/null && break
  sleep 0.1
done
sleep 1
kill -s USR1 "$(pgrep -P "$job" | head -1)"
wait "$job"
rc=$?
check "SIGUSR1: exit status 3 (got $rc)" test $rc -eq 3
check "SIGUSR1: file closed and readable" bash -c "test ! -e '$tmp/sig.h5.journal' && '$SF_RESULTS_KEYS' '$tmp/sig.h5' >/dev/null"
# (an item is in flight but for the few milliseconds between two of them)
ni=$(count_status "$tmp/sig.h5" interrupted)
echo "  interrupted items: $ni"
check "SIGUSR1: the item in flight recorded interrupted, once" test "$ni" -le 1
check "SIGUSR1: the sweep stopped early" test "$(file_lines "$tmp/sig.h5" | wc -l)" -lt "$(wc -l <"$tmp/plan_long")"
expect_ok mpi 3 run "${long[@]}" -o "$tmp/sig.h5" --resume --quiet
check "resume: every key once" complete "$tmp/sig.h5" "$tmp/plan_long"
check "resume: all ok" test "$(count_status "$tmp/sig.h5" ok)" -eq "$(wc -l <"$tmp/plan_long")"
finish
