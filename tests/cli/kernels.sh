#!/usr/bin/env bash
# scanflash kernels without a GPU: a one-line "no CUDA device (...)" error
# and exit 1; usage errors are one line and exit 2, before any device is
# touched; --help exits 0. On a machine with a GPU the no-device check is
# skipped (the device run in bench/run-kernels.sh covers that side).
. "$(dirname "$0")/lib.sh"
: "${SF_BIN:?run through ctest}"

expect_exit() { # expect_exit CODE REGEX CMD...: exit CODE, one stderr line matching REGEX
  local want=$1 re=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ $rc -ne "$want" ]; then echo "FAIL (exit $rc, wanted $want): $*"; cat "$tmp/err"; fails=$((fails+1))
  elif [ -n "$re" ] && { ! grep -Eq -- "$re" "$tmp/err" || [ "$(wc -l <"$tmp/err")" -ne 1 ]; }; then
    echo "FAIL (stderr not one line matching /$re/): $*"; cat "$tmp/err"; fails=$((fails+1))
  else echo "ok (exit $want): $*"; fi
}

expect_exit 0 "" "$SF_BIN" kernels --help
grep -q "usage: scanflash kernels" "$tmp/out" || { echo "FAIL: --help prints no usage"; fails=$((fails+1)); }
"$SF_BIN" --help | grep -q "^  kernels " || { echo "FAIL: scanflash --help does not list kernels"; fails=$((fails+1)); }

U='\(scanflash kernels --help\)$'
expect_exit 2 "^scanflash kernels: unknown op 'flash' .*$U" "$SF_BIN" kernels --op flash
expect_exit 2 "^scanflash kernels: op attn has no implementation 'fast' \(tiled, naive\)" "$SF_BIN" kernels --op attn:fast
expect_exit 2 "^scanflash kernels: --seqlen: range 4k:1k needs 0 < FROM <= TO" "$SF_BIN" kernels --seqlen 4k:1k:x2
expect_exit 2 "^scanflash kernels: --seqlen: " "$SF_BIN" kernels --seqlen 0
expect_exit 2 "^scanflash kernels: --seqlen: " "$SF_BIN" kernels --seqlen 1k:4k:y2
expect_exit 2 "^scanflash kernels: --dtype: unknown type 'int8' \(bf16, f16, f32\)" "$SF_BIN" kernels --dtype int8
expect_exit 2 "^scanflash kernels: --batch: " "$SF_BIN" kernels --batch x
expect_exit 2 "^scanflash kernels: --repeats: " "$SF_BIN" kernels --repeats 0
expect_exit 2 "^scanflash kernels: --repeats needs a value" "$SF_BIN" kernels --repeats
expect_exit 2 "^scanflash kernels: --max-call: '-1' must be a number of seconds" "$SF_BIN" kernels --max-call -1
expect_exit 2 "^scanflash kernels: unknown option '--bogus'" "$SF_BIN" kernels --bogus
expect_exit 2 "^scanflash kernels: unexpected argument 'extra'" "$SF_BIN" kernels extra
expect_exit 2 "head_dim 48 does not divide pythia-1.4b's d_model 2048" "$SF_BIN" kernels --op attn --head-dim 48

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "a GPU is present: the no-device error is not checked here"
else
  expect_exit 1 '^scanflash kernels: no CUDA device \(.+\)$' "$SF_BIN" kernels --op scan --seqlen 512
  expect_exit 1 '^scanflash kernels: no CUDA device \(.+\)$' "$SF_BIN" kernels -o "$tmp/k.h5"
  [ ! -e "$tmp/k.h5" ] || { echo "FAIL: a results file was created without a device"; fails=$((fails+1)); }
fi
finish
