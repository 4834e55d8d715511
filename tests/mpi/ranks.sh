# scanflash run on sweeps/tiny.yaml alone, and under mpirun with 1, 2 and 4
# ranks: every run records exactly the plan's keys, once each, with the same
# status and the same number of repeat and decode-step rows per key whatever
# the rank count; two shards merged give the same keys again.
. "$(dirname "$0")/lib.bash"
spec="$SF_SOURCE_DIR/sweeps/tiny.yaml"
plan_keys "$spec" >"$tmp/plan"
check "the plan has items" test -s "$tmp/plan"

start=$(now)
expect_ok alone run "$spec" -o "$tmp/alone.h5" --quiet
for n in 1 2 4; do
  t0=$(now)
  expect_ok mpi "$n" run "$spec" -o "$tmp/np$n.h5" --quiet
  echo "  np=$n: $(since "$t0") s"
done

# Items that are not ok must be the spec's doing (the same on every run), and
# ok items carry their repeats and steps.
file_lines "$tmp/alone.h5" | cut -d' ' -f1-4 >"$tmp/ref"
for f in alone np1 np2 np4; do
  check "$f: the plan's keys, once each" complete "$tmp/$f.h5" "$tmp/plan"
  check "$f: same statuses and row counts as alone" diff <(file_lines "$tmp/$f.h5" | cut -d' ' -f1-4) "$tmp/ref"
done
bad=$("$SF_RESULTS_KEYS" "$tmp/np4.h5" | awk '$2 == "ok" && ($3 < 1 || $4 < 1)' | wc -l)
check "ok items have repeat and step rows" test "$bad" -eq 0
check "most items ran ok" test "$(count_status "$tmp/np4.h5" ok)" -ge "$(($(wc -l <"$tmp/plan") / 2))"
check "work spread over the workers" \
  test "$("$SF_RESULTS_KEYS" "$tmp/np4.h5" --metrics | awk '{print $13}' | sort -u | wc -l)" -ge 2
check "the root attributes name the datasets" \
  test "$("$SF_RESULTS_KEYS" "$tmp/np2.h5" --attr dataset_sha256)" = "$(sha256sum "$SF_TEST_DATA" | cut -c1-64)"

# Shards (job arrays): 0/2 and 1/2, merged, are the whole sweep.
expect_ok mpi 2 run "$spec" -o "$tmp/s0.h5" --shard 0/2 --quiet
expect_ok alone run "$spec" -o "$tmp/s1.h5" --shard 1/2 --quiet
expect_ok "$SF_BIN" merge "$tmp/s0.h5" "$tmp/s1.h5" -o "$tmp/merged.h5"
check "shards merged: the plan's keys" complete "$tmp/merged.h5" "$tmp/plan"
check "shard 0/2 holds the even indices only" \
  test "$(file_lines "$tmp/s0.h5" | wc -l)" -eq "$(( ($(wc -l <"$tmp/plan") + 1) / 2 ))"

echo "tokens/s of the np=4 run (one thread per rank):"
"$SF_RESULTS_KEYS" "$tmp/np4.h5" --metrics |
  awk '$6 == "ok" { printf "  %s ctx %s batch %s: prefill %.0f, decode %.0f, e2e %.0f tok/s\n", $3, $4, $5, $8, $9, $10 }'
echo "total $(since "$start") s"
finish
