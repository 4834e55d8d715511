#!/usr/bin/env bash
# scanflash merge: two shards give their union; a key in both keeps the ok
# result (named on stderr); mixed specs or schema versions are refused
# without --force; a shard that did not close cleanly is read from its
# journal; bad inputs and usage errors are one-line errors.
. "$(dirname "$0")/lib.sh"
: "${SF_BIN:?run through ctest}"
W=${SF_RESULTS_WRITER:-}
if [ -z "$W" ] || [ ! -x "$W" ]; then echo "SKIPPED: SF_RESULTS_WRITER is not set (run through ctest)"; exit 77; fi

check() { # check DESCRIPTION TEST...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails+1)); fi
}
expect_exit() { # expect_exit CODE CMD...
  local want=$1; shift
  "$@" >/dev/null 2>"$tmp/err"
  local rc=$?
  if [ $rc -ne "$want" ]; then echo "FAIL (exit $rc, wanted $want): $*"; cat "$tmp/err"; fails=$((fails+1));
  else echo "ok (exit $want): $*"; fi
}
keys() { "$W" check "$1" | cut -d' ' -f1 | sort; }

cd "$tmp" || exit 1
# shard a: items 0-9 ok; shard b: items 5-14 with status error (5-9 overlap a)
"$W" write a.h5 --first 0 --count 10 --status ok --steps 3 >/dev/null || { echo "FAIL: writing shard a"; exit 1; }
"$W" write b.h5 --first 5 --count 10 --status error --steps 3 >/dev/null || { echo "FAIL: writing shard b"; exit 1; }

expect_ok "$SF_BIN" merge a.h5 b.h5 -o c.h5
check "summary names 15 items and 5 duplicates" grep -q '15 items (5 duplicate keys)' "$tmp/out"
check "each duplicate is named on stderr" [ "$(grep -c 'kept the one from a.h5' "$tmp/err")" -eq 5 ]
check "merged = union of the keys" [ "$(keys c.h5)" = "$(cat <(keys a.h5) <(keys b.h5) | sort -u)" ]
"$W" check c.h5 >c.txt 2>c.err
check "merged file passes the reader's checks (no duplicates, child rows match)" [ ! -s c.err ]
check "the ok result of a duplicate key won" [ "$(grep -c ' ok$' c.txt)" -eq 10 ]
check "h5dump reads the merged file" sh -c "h5dump -H c.h5 >/dev/null"
check "sources lists both inputs" sh -c 'h5dump -a /sources c.h5 | grep -q "a.h5 created=" && h5dump -a /sources c.h5 | grep -q "b.h5 created="'

# order does not matter for the choice
expect_ok "$SF_BIN" merge b.h5 a.h5 -o d.h5
check "b first: the ok results still win" [ "$(grep -c ' ok$' <("$W" check d.h5))" -eq 10 ]
# the output may be an input
cp a.h5 e.h5
expect_ok "$SF_BIN" merge e.h5 b.h5 -o e.h5
check "merging into an input" [ "$(keys e.h5)" = "$(keys c.h5)" ]
# merging merged files keeps nested sources
expect_ok "$SF_BIN" merge c.h5 d.h5 -o f.h5
check "merge of merges: still 15 keys" [ "$(keys f.h5 | wc -l)" -eq 15 ]

# a shard killed before its clean close: read from its journal
"$W" write k.h5 --first 20 --count 4 --status ok --no-close >/dev/null
check "the killed shard has a journal" [ -f k.h5.journal ]
expect_ok "$SF_BIN" merge a.h5 k.h5 -o g.h5
check "its reported items are merged" [ "$(keys g.h5 | wc -l)" -eq 14 ]
check "stderr says it read the journal" grep -q 'k.h5: did not close cleanly' "$tmp/err"

# different specs: refused, then forced
"$W" write s.h5 --first 30 --count 3 --status ok --spec "sweep: another" >/dev/null
expect_fail 'a.h5 and s.h5 come from different specs .*--force' "$SF_BIN" merge a.h5 s.h5 -o x.h5
check "nothing written when refused" [ ! -e x.h5 ]
expect_ok "$SF_BIN" merge a.h5 s.h5 -o x.h5 --force
check "--force merges them" [ "$(keys x.h5 | wc -l)" -eq 13 ]

# mixed schema versions: refused, then forced (fields read by name)
cp a.h5 v2.h5
"$W" set-schema v2.h5 2 || { echo "FAIL: set-schema"; fails=$((fails+1)); }
expect_fail 'mixed schema versions: a.h5 has 1, v2.h5 has 2 \(use --force' "$SF_BIN" merge a.h5 v2.h5 -o y.h5
expect_ok "$SF_BIN" merge a.h5 v2.h5 -o y.h5 --force
check "--force with mixed schemas writes schema 1" sh -c 'h5dump -a /schema_version y.h5 | grep -q "(0): 1"'
expect_fail 'v2.h5: schema_version 2 is not supported \(this scanflash reads 1\)' "$SF_BIN" merge v2.h5 -o z.h5

# bad inputs, bad usage
printf 'not hdf5\n' >t.h5
expect_fail '^scanflash merge: t.h5: not an HDF5 file$' "$SF_BIN" merge a.h5 t.h5 -o z.h5
expect_fail '^scanflash merge: nope.h5: cannot open: No such file or directory$' "$SF_BIN" merge nope.h5 -o z.h5
head -c 3000 a.h5 >trunc.h5
expect_fail '^scanflash merge: trunc.h5: corrupt or truncated HDF5 file' "$SF_BIN" merge trunc.h5 -o z.h5
touch busy.h5.journal
expect_fail 'busy.h5.journal: exists' "$SF_BIN" merge a.h5 -o busy.h5
expect_exit 2 "$SF_BIN" merge a.h5 b.h5
expect_exit 2 "$SF_BIN" merge -o z.h5
expect_exit 2 "$SF_BIN" merge --bogus a.h5 -o z.h5
check "no output from failed merges" [ ! -e z.h5 ]
expect_ok "$SF_BIN" merge --help
finish
