# Helpers for CLI tests (sourced). $SF_BIN is the scanflash binary.
set -u
fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect_fail REGEX CMD...: CMD must exit non-zero, print exactly one line on
# stderr matching REGEX, and not crash (no signal, no sanitizer report).
expect_fail() {
  local re=$1; shift
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  local lines; lines=$(wc -l <"$tmp/err")
  if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then
    echo "FAIL (exit $rc, wanted 1..127): $*"; cat "$tmp/err"; fails=$((fails+1))
  elif ! grep -Eq -- "$re" "$tmp/err"; then
    echo "FAIL (stderr does not match /$re/): $*"; cat "$tmp/err"; fails=$((fails+1))
  elif [ "$lines" -ne 1 ]; then
    echo "FAIL (wanted a one-line error, got $lines lines): $*"; cat "$tmp/err"; fails=$((fails+1))
  else
    echo "ok (rejected): $*"
  fi
}

# expect_ok CMD...: CMD must succeed; its stdout is left in $tmp/out.
expect_ok() {
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ $rc -ne 0 ]; then echo "FAIL (exit $rc): $*"; cat "$tmp/err"; fails=$((fails+1)); else echo "ok: $*"; fi
}

finish() {
  if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
  echo "all passed"; exit 0
}
