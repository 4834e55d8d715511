#!/usr/bin/env bash
# scanflash generate: each tiny preset generates, --ids-out/--ids-in round
# trip (greedy continuation is consistent), --dump-logits writes a .npy of
# the documented size, chunked prefill and determinism, HumanEval+ prompts,
# and one-line errors with the right exit status.
. "$(dirname "$0")/lib.sh"
: "${SF_BIN:?run through ctest}"
data=${SF_TEST_DATA:-}
tokz=${SF_TEST_TOKENIZER:-}
if [ ! -f "$data" ] || [ ! -f "$tokz" ]; then echo "SKIPPED: SF_TEST_DATA / SF_TEST_TOKENIZER missing"; exit 77; fi
G() { "$SF_BIN" generate --tokenizer "$tokz" "$@"; }

check() { # check DESCRIPTION TEST...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails+1)); fi
}
# expect_exit CODE CMD...: CMD must exit with CODE (usage errors are 2, others 1).
expect_exit() {
  local want=$1; shift
  "$@" >/dev/null 2>&1
  local rc=$?
  if [ $rc -ne "$want" ]; then echo "FAIL (exit $rc, wanted $want): $*"; fails=$((fails+1)); fi
}
nwords() { wc -w <"$1" | tr -d ' '; }
# npy_check FILE ROWS VOCAB: header length from bytes 8-9, the shape in the
# header, data offset a multiple of 64, size = offset + ROWS * VOCAB * 4.
npy_check() {
  local f=$1 rows=$2 vocab=$3
  local hl; hl=$(od -An -tu2 -j8 -N2 --endian=little "$f" | tr -d ' ')
  local off=$((10 + hl)) size; size=$(stat -c %s "$f")
  head -c "$off" "$f" | grep -aq "'descr': '<f4', 'fortran_order': False, 'shape': ($rows, $vocab), }" &&
    [ $((off % 64)) -eq 0 ] && [ "$size" -eq $((off + rows * vocab * 4)) ]
}

prompt='def add(a, b):
    """Return the sum of a and b."""
'
declare -A vocab=([tiny-mamba1]=50280 [tiny-mamba2]=50288 [tiny-transformer]=50304)
for p in tiny-mamba1 tiny-mamba2 tiny-transformer; do
  expect_ok G --preset "$p" --prompt "$prompt" --max-new-tokens 8
  check "$p: completion on stdout" test -s "$tmp/out"
  check "$p: timings on stderr" grep -Eq '^prefill: [0-9]+ tokens in [0-9.]+ s, [0-9.]+ tokens/s' "$tmp/err"
  check "$p: decode tokens/s on stderr" grep -Eq '^decode: 7 tokens in [0-9.]+ s, [0-9.]+ tokens/s' "$tmp/err"
  cp "$tmp/out" "$tmp/text1"

  # the same again: deterministic; --ids-out holds 8 ids
  expect_ok G --preset "$p" --prompt "$prompt" --max-new-tokens 8 --ids-out "$tmp/a.ids"
  check "$p: deterministic" cmp -s "$tmp/out" "$tmp/text1"
  check "$p: --ids-out has 8 ids on one line" test "$(nwords "$tmp/a.ids")" = 8 -a "$(wc -l <"$tmp/a.ids")" = 1

  # round trip: prompt ids + the first 3 generated ids continue with the rest
  echo "11 22 33 44 55 66 77" >"$tmp/p.ids"
  expect_ok G --preset "$p" --ids-in "$tmp/p.ids" --max-new-tokens 8 --ids-out "$tmp/g.ids"
  read -r -a gen <"$tmp/g.ids"
  echo "11 22 33 44 55 66 77 ${gen[0]} ${gen[1]} ${gen[2]}" >"$tmp/p2.ids"
  expect_ok G --preset "$p" --ids-in "$tmp/p2.ids" --max-new-tokens 5 --ids-out "$tmp/g2.ids"
  check "$p: --ids-in continues --ids-out" test "$(cat "$tmp/g2.ids")" = "${gen[*]:3:5}"
  # --ids-out output is valid --ids-in input
  expect_ok G --preset "$p" --ids-in "$tmp/g.ids" --max-new-tokens 1

  # chunked prefill gives the same tokens
  expect_ok G --preset "$p" --ids-in "$tmp/p2.ids" --max-new-tokens 5 --chunk 3 --ids-out "$tmp/g3.ids"
  check "$p: --chunk 3 == one pass" cmp -s "$tmp/g2.ids" "$tmp/g3.ids"

  # another weights seed, other tokens
  expect_ok G --preset "$p" --seed 12345 --ids-in "$tmp/p.ids" --max-new-tokens 8 --ids-out "$tmp/s.ids"
  check "$p: --seed changes the weights" test "$(cat "$tmp/s.ids")" != "$(cat "$tmp/g.ids")"

  # logits: rows = max-new-tokens (row 0 at the last prompt position)
  expect_ok G --preset "$p" --ids-in "$tmp/p.ids" --max-new-tokens 8 --dump-logits "$tmp/l.npy"
  check "$p: --dump-logits 8 x ${vocab[$p]}" npy_check "$tmp/l.npy" 8 "${vocab[$p]}"
  expect_ok G --preset "$p" --ids-in "$tmp/p.ids" --max-new-tokens 0 --dump-logits "$tmp/l0.npy"
  check "$p: --max-new-tokens 0 dumps the prompt's row" npy_check "$tmp/l0.npy" 1 "${vocab[$p]}"
  check "$p: --max-new-tokens 0 prints an empty completion" test "$(cat "$tmp/out")" = ""
done

# HumanEval+ prompts: bare and packed to an exact context
expect_ok G --preset tiny-mamba2 --data "$data" --problem HumanEval/3 --max-new-tokens 4
check "problem: bare prompt" grep -q '^prefill: ' "$tmp/err"
expect_ok G --preset tiny-transformer --data "$data" --problem 3 --context 300 --max-new-tokens 4 --chunk 64
check "problem: --context 300 is 300 tokens" grep -Eq '^prefill: 300 tokens' "$tmp/err"

# errors: one line, exit 2 for usage, 1 for failures
expect_fail '^scanflash generate: unknown model preset .nope.' G --preset nope --prompt x --max-new-tokens 2
expect_exit 2 G --preset nope --prompt x --max-new-tokens 2
expect_fail '^scanflash generate: .*/no/such/dir' G --weights "$tmp/no/such/dir" --prompt x --max-new-tokens 2
expect_exit 1 G --weights "$tmp/no/such/dir" --prompt x --max-new-tokens 2
# --backend cuda: generates where a GPU is visible, else one clear line
if nvidia-smi -L >/dev/null 2>&1; then
  expect_ok G --preset tiny-mamba1 --prompt x --max-new-tokens 2 --backend cuda
  check "cuda: the backend is named" grep -q 'backend cuda' "$tmp/err"
else
  expect_fail '^scanflash generate: (backend cuda: this scanflash was built without CUDA|CUDA device 0: cuda: no usable CUDA device)' \
    G --preset tiny-mamba1 --prompt x --max-new-tokens 2 --backend cuda
  expect_exit 1 G --preset tiny-mamba1 --prompt x --max-new-tokens 2 --backend cuda
fi
expect_fail '^scanflash generate: .*max-new-tokens' G --preset tiny-mamba1 --prompt x --max-new-tokens -3
expect_exit 2 G --preset tiny-mamba1 --prompt x --max-new-tokens -3
expect_fail '^scanflash generate: --max-new-tokens N' G --preset tiny-mamba1 --prompt x
expect_fail '^scanflash generate: give exactly one of --preset' G --preset tiny-mamba1 --weights "$tmp" --prompt x --max-new-tokens 1
expect_fail '^scanflash generate: give exactly one of --prompt' G --preset tiny-mamba1 --prompt x --ids-in "$tmp/p.ids" --max-new-tokens 1
expect_fail '^scanflash generate: --backend' G --preset tiny-mamba1 --prompt x --max-new-tokens 1 --backend tpu
expect_fail '^scanflash generate: .*nothere.ids' G --preset tiny-mamba1 --ids-in "$tmp/nothere.ids" --max-new-tokens 1
echo "1 2 x 4" >"$tmp/bad.ids"
expect_fail '^scanflash generate: .*bad.ids: token 3 ' G --preset tiny-mamba1 --ids-in "$tmp/bad.ids" --max-new-tokens 1
echo "1 2 99999" >"$tmp/big.ids"
expect_fail "^scanflash generate: prompt token 2 has id 99999" G --preset tiny-mamba1 --ids-in "$tmp/big.ids" --max-new-tokens 1
expect_fail '^scanflash generate: unknown problem' G --preset tiny-mamba1 --data "$data" --problem HumanEval/999 --max-new-tokens 1
expect_fail '^scanflash generate: .*' G --preset tiny-mamba1 --prompt x --max-new-tokens 1 --dump-logits /nonexistent-dir/l.npy
expect_fail '^scanflash generate: unknown option' G --preset tiny-mamba1 --prompt x --max-new-tokens 1 --bogus
check "--help" "$SF_BIN" generate --help >/dev/null
finish
