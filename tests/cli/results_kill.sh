#!/usr/bin/env bash
# kill -9 torture for the results file: a writer (tests/tools/results_writer)
# resumes the same file again and again and is killed with SIGKILL after a
# random 0-50 ms (odd trials: while it opens, replays the journal, rebuilds
# the .h5) or 100-250 ms + 0-50 ms (even trials: while it writes items,
# replaces keys in the same run (--rewrite-every) and retries
# (--retry-failed)); opening costs ~100 ms of fsyncs. After
# every other kill, and at the end, a resume + clean close must repair the
# file, and then:
#   - every key a writer printed (it prints after the write returned) is in
#     the file, and a key printed as ok is ok there;
#   - no key is in /items twice, and every item has exactly its own child
#     rows (results_writer check);
#   - h5dump -H reads the file; no journal or temporary file is left.
# SF_KILL_TRIALS (default 30) and SF_TEST_SEED replay a run.
. "$(dirname "$0")/lib.sh"
W=${SF_RESULTS_WRITER:-}
if [ -z "$W" ] || [ ! -x "$W" ]; then echo "SKIPPED: SF_RESULTS_WRITER is not set (run through ctest)"; exit 77; fi
if ! command -v h5dump >/dev/null; then echo "SKIPPED: h5dump (hdf5-tools) is not installed"; exit 77; fi

trials=${SF_KILL_TRIALS:-30}
seed=${SF_TEST_SEED:-$(( $(date +%s) % 32768 ))}
RANDOM=$seed
echo "seed $seed (replay with SF_TEST_SEED=$seed), $trials trials"

f=$tmp/r.h5
reported=$tmp/reported   # "KEY STATUS" lines printed by the writers
: >"$reported"
: >"$tmp/writer_err"
mid_write=0

check_file() { # check_file WHEN
  local when=$1
  if ! "$W" repair "$f" >"$tmp/repair_out" 2>"$tmp/repair_err"; then
    echo "FAIL ($when): resume could not repair the file: $(cat "$tmp/repair_err")"; fails=$((fails+1)); return
  fi
  if [ -e "$f.journal" ] || [ -e "$f.tmp" ] || [ -e "$f.journal.tmp" ]; then
    echo "FAIL ($when): a journal or temporary file is left after a clean close"; ls -la "$tmp"; fails=$((fails+1))
  fi
  if ! h5dump -H "$f" >/dev/null 2>"$tmp/h5dump_err"; then
    echo "FAIL ($when): h5dump -H cannot read the file: $(head -3 "$tmp/h5dump_err")"; fails=$((fails+1))
  fi
  if ! "$W" check "$f" >"$tmp/infile" 2>"$tmp/check_err"; then
    echo "FAIL ($when): $(cat "$tmp/check_err")"; fails=$((fails+1)); return
  fi
  local dups missing notok
  dups=$(cut -d' ' -f1 "$tmp/infile" | sort | uniq -d | head -3)
  missing=$(comm -23 <(cut -d' ' -f1 "$reported" | sort -u) <(cut -d' ' -f1 "$tmp/infile" | sort -u) | head -3)
  notok=$(comm -23 <(grep ' ok$' "$reported" | sort -u) <(grep ' ok$' "$tmp/infile" | sort -u) | head -3)
  if [ -n "$dups" ]; then echo "FAIL ($when): duplicate keys: $dups"; fails=$((fails+1)); fi
  if [ -n "$missing" ]; then echo "FAIL ($when): reported keys missing from the file: $missing"; fails=$((fails+1)); fi
  if [ -n "$notok" ]; then echo "FAIL ($when): keys reported ok are not ok in the file: $notok"; fails=$((fails+1)); fi
}

start=$SECONDS
for t in $(seq 1 "$trials"); do
  opts=()
  [ $((RANDOM % 3)) -eq 0 ] && opts+=(--retry-failed)
  [ $((RANDOM % 3)) -eq 0 ] && opts+=(--rewrite-every 5)
  "$W" write "$f" --resume --count 100000 --first $((RANDOM % 200)) --steps $((RANDOM % 16)) "${opts[@]}" \
    >>"$reported" 2>>"$tmp/writer_err" &
  pid=$!
  ms=$((RANDOM % 51))
  [ $((t % 2)) -eq 0 ] && ms=$((ms + 100 + RANDOM % 151))
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
  if kill -9 "$pid" 2>/dev/null; then mid_write=$((mid_write+1)); fi
  wait "$pid" 2>/dev/null
  if [ $((t % 2)) -eq 0 ]; then check_file "after trial $t"; fi
done
check_file "at the end"
if [ -s "$tmp/writer_err" ]; then
  echo "FAIL: a writer reported an error: $(head -3 "$tmp/writer_err")"; fails=$((fails+1))
fi
n_rep=$(cut -d' ' -f1 "$reported" | sort -u | wc -l)
n_file=$(wc -l <"$tmp/infile")
echo "$trials trials ($mid_write killed while running) in $((SECONDS - start)) s: $(wc -l <"$reported") writes reported, $n_rep keys; $n_file items in the file"
if [ "$n_rep" -eq 0 ]; then echo "FAIL: no writer got as far as reporting an item"; fails=$((fails+1)); fi
finish
