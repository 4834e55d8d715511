#!/usr/bin/env bash
# scanflash tokenize: the known vector, --decode round trips (byte-exact, no
# added newline), the tokenizer path from the environment, and one-line
# errors with the right exit status.
. "$(dirname "$0")/lib.sh"
: "${SF_BIN:?run through ctest}"
tokz=${SF_TEST_TOKENIZER:-}
if [ ! -f "$tokz" ]; then echo "SKIPPED: SF_TEST_TOKENIZER missing"; exit 77; fi
T() { "$SF_BIN" tokenize --tokenizer "$tokz" "$@"; }

check() { # check DESCRIPTION TEST...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails+1)); fi
}
expect_exit() { # expect_exit CODE CMD...
  local want=$1; shift
  "$@" >/dev/null 2>&1
  local rc=$?
  if [ $rc -ne "$want" ]; then echo "FAIL (exit $rc, wanted $want): $*"; fails=$((fails+1)); else echo "ok (exit $want): $*"; fi
}

# the known vector, from the Hugging Face library
printf '\nThe following is a' >"$tmp/in"
expect_ok T <"$tmp/in"
check "known vector" [ "$(cat "$tmp/out")" = "187 510 1563 310 247" ]
check "ids end with one newline" [ "$(wc -l <"$tmp/out")" -eq 1 ]

# the tokenizer from SCANFLASH_TOKENIZER when there is no flag
SCANFLASH_TOKENIZER=$tokz expect_ok "$SF_BIN" tokenize <"$tmp/in"
check "SCANFLASH_TOKENIZER is used" [ "$(cat "$tmp/out")" = "187 510 1563 310 247" ]

# --decode gives back the exact bytes (Python indentation, CRLF, NUL, UTF-8,
# specials, trailing spaces, no final newline)
printf 'def f(x):\r\n    return x  # caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\n\t<|endoftext|>a\0b   ' >"$tmp/text"
expect_ok T <"$tmp/text"
cp "$tmp/out" "$tmp/ids"
check "ids are numbers on one line" grep -Eq '^[0-9]+( [0-9]+)*$' "$tmp/ids"
expect_ok T --decode <"$tmp/ids"
check "--decode round trip is byte-exact" cmp -s "$tmp/out" "$tmp/text"
tr ' ' '\n' <"$tmp/ids" | sed 's/^/  /' >"$tmp/ids_lines"
expect_ok T --decode <"$tmp/ids_lines"
check "--decode accepts any whitespace between ids" cmp -s "$tmp/out" "$tmp/text"
: >"$tmp/empty"
expect_ok T <"$tmp/empty"
check "empty input gives just a newline" [ "$(od -An -tx1 "$tmp/out" | tr -d ' \n')" = "0a" ]
expect_ok T --decode <"$tmp/empty"
check "empty --decode gives nothing" [ ! -s "$tmp/out" ]
printf '49042' >"$tmp/partial"
expect_ok T --decode <"$tmp/partial"
check "a cut character decodes as U+FFFD" [ "$(od -An -tx1 "$tmp/out" | tr -d ' \n')" = "20efbfbd" ]

expect_ok T --help
check "--help prints usage" grep -q 'usage: scanflash tokenize' "$tmp/out"

# errors: one line on stderr, exit 1 (2 for usage)
expect_fail '^scanflash tokenize: .*/nonexistent/tok\.json' T --tokenizer /nonexistent/tok.json </dev/null
expect_exit 1 "$SF_BIN" tokenize --tokenizer /nonexistent/tok.json </dev/null
printf '{"model": ' >"$tmp/bad.json"
expect_fail "^scanflash tokenize: .*bad\.json: not valid JSON" "$SF_BIN" tokenize --tokenizer "$tmp/bad.json" </dev/null
printf 'The quick brown\xff fox' >"$tmp/badutf8"
expect_fail '^scanflash tokenize: stdin: invalid UTF-8 at byte 15$' T <"$tmp/badutf8"
expect_exit 1 T <"$tmp/badutf8"
printf '187 abc 310' >"$tmp/badid"
expect_fail "^scanflash tokenize: stdin: id 2: 'abc' is not a token id" T --decode <"$tmp/badid"
printf '187 -5' >"$tmp/negid"
expect_fail "^scanflash tokenize: stdin: id 2: '-5' is not a token id" T --decode <"$tmp/negid"
printf '187 50277\n' >"$tmp/bigid"
expect_fail '^scanflash tokenize: stdin: id 2: 50277 is out of range' T --decode <"$tmp/bigid"
printf '99999999999999999999999' >"$tmp/hugeid"
expect_fail '^scanflash tokenize: stdin: id 1: .* is out of range' T --decode <"$tmp/hugeid"
expect_exit 1 T --decode <"$tmp/bigid"
expect_fail "^scanflash tokenize: unknown option '--bogus'" T --bogus </dev/null
expect_exit 2 T --bogus </dev/null
expect_fail "^scanflash tokenize: option '--tokenizer' needs a value" "$SF_BIN" tokenize --tokenizer </dev/null
expect_exit 2 "$SF_BIN" tokenize --tokenizer </dev/null
expect_fail "^scanflash tokenize: unexpected argument 'extra'" T extra </dev/null
expect_exit 2 T extra </dev/null

finish
