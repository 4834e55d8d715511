#!/usr/bin/env bash
# scanflash prompts: exact lengths, determinism of the stats hash, natural
# mode, the suffix property, and one-line errors with the right exit status.
. "$(dirname "$0")/lib.sh"
: "${SF_BIN:?run through ctest}"
data=${SF_TEST_DATA:-}
tokz=${SF_TEST_TOKENIZER:-}
if [ ! -f "$data" ] || [ ! -f "$tokz" ]; then echo "SKIPPED: SF_TEST_DATA / SF_TEST_TOKENIZER missing"; exit 77; fi
P() { "$SF_BIN" prompts --data "$data" --tokenizer "$tokz" "$@"; }

check() { # check DESCRIPTION TEST...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails+1)); fi
}
stat_of() { sed -n "s/^$1: //p" "$2"; }

# expect_exit CODE CMD...: CMD must exit with CODE (usage errors are 2, others 1).
expect_exit() {
  local want=$1; shift
  "$@" >/dev/null 2>&1
  local rc=$?
  if [ $rc -ne "$want" ]; then echo "FAIL (exit $rc, wanted $want): $*"; fails=$((fails+1)); fi
}

# ids at 8k: one line of 8192 ids
expect_ok P --problem HumanEval/7 --context 8k
cp "$tmp/out" "$tmp/ids8k"
check "8k context has 8192 ids" [ "$(wc -w <"$tmp/ids8k")" -eq 8192 ]
check "ids are one line" [ "$(wc -l <"$tmp/ids8k")" -eq 1 ]
check "ids are numbers" grep -Eq '^[0-9]+( [0-9]+)*$' "$tmp/ids8k"
expect_ok P --problem 7 --context 8192 --format ids
check "'7' and 'HumanEval/7' are the same problem" cmp -s "$tmp/out" "$tmp/ids8k"

# the 2k context is the 8k one's suffix
expect_ok P --problem 7 --context 2k
check "2k is a suffix of 8k" [ "$(cat "$tmp/out")" = "$(tr ' ' '\n' <"$tmp/ids8k" | tail -n 2048 | paste -sd' ')" ]

# stats: determinism across runs, another seed another hash
expect_ok P --problem 7 --context 8k --format stats
cp "$tmp/out" "$tmp/s1"
expect_ok P --problem 7 --context 8k --format stats
check "stats identical across runs" cmp -s "$tmp/out" "$tmp/s1"
check "stats tokens = 8192" [ "$(stat_of tokens "$tmp/s1")" = 8192 ]
check "stats context = 8192" [ "$(stat_of context "$tmp/s1")" = 8192 ]
check "stats problem" [ "$(stat_of problem "$tmp/s1")" = HumanEval/7 ]
check "prompt + filler = 8192" [ $(( $(stat_of prompt_tokens "$tmp/s1") + $(stat_of filler_tokens "$tmp/s1") )) -eq 8192 ]
check "ids_sha256 is 64 hex digits" grep -Eq '^ids_sha256: [0-9a-f]{64}$' "$tmp/s1"
check "data_sha256 is the v0.1.10 file" [ "$(stat_of data_sha256 "$tmp/s1")" = "$(sha256sum <"$data" | cut -d' ' -f1)" ]
expect_ok P --problem 7 --context 8k --format stats --seed 1
check "another seed, another hash" [ "$(stat_of ids_sha256 "$tmp/out")" != "$(stat_of ids_sha256 "$tmp/s1")" ]
expect_ok P --problem 7 --context 8k --format stats --seed 0
check "--seed 0 is the default" cmp -s "$tmp/out" "$tmp/s1"
# the hash is the sha256 of the ids as little-endian int32 (recomputed here when python3 is around)
if command -v python3 >/dev/null; then
  h=$(python3 -c 'import sys,struct,hashlib; v=[int(x) for x in open(sys.argv[1]).read().split()]; print(hashlib.sha256(struct.pack("<%di"%len(v),*v)).hexdigest())' "$tmp/ids8k")
  check "ids_sha256 = sha256(int32 LE ids)" [ "$h" = "$(stat_of ids_sha256 "$tmp/s1")" ]
fi

# natural mode: the bare prompt
expect_ok P --problem 0 --natural --format stats
cp "$tmp/out" "$tmp/nat"
check "natural: mode" [ "$(stat_of mode "$tmp/nat")" = natural ]
check "natural: no filler" [ "$(stat_of filler_tokens "$tmp/nat")" = 0 ]
check "natural: tokens = prompt_tokens" [ "$(stat_of tokens "$tmp/nat")" = "$(stat_of prompt_tokens "$tmp/nat")" ]
expect_ok P --problem 0 --natural
check "natural ids count = prompt_tokens" [ "$(wc -w <"$tmp/out")" -eq "$(stat_of prompt_tokens "$tmp/nat")" ]
cp "$tmp/out" "$tmp/nat_ids"
expect_ok P --problem 0 --context 0
check "--context 0 = --natural" cmp -s "$tmp/out" "$tmp/nat_ids"
expect_ok P --problem 0 --natural --format text
check "natural text is the prompt" grep -q '^def has_close_elements(numbers: List\[float\], threshold: float) -> bool:$' "$tmp/out"
check "natural text starts with the import" [ "$(head -n 1 "$tmp/out")" = "from typing import List" ]
# context = prompt length: the bare prompt again
pt=$(stat_of prompt_tokens "$tmp/nat")
expect_ok P --problem 0 --context "$pt"
check "context = prompt length is the bare prompt" cmp -s "$tmp/out" "$tmp/nat_ids"

# 4M tokens
expect_ok P --problem 163 --context 4M --format stats
check "4M context has 4194304 tokens" [ "$(stat_of tokens "$tmp/out")" = 4194304 ]

# paths from the environment
expect_ok env SCANFLASH_DATA="$data" SCANFLASH_TOKENIZER="$tokz" "$SF_BIN" prompts --problem 7 --context 8k
check "environment paths give the same ids" cmp -s "$tmp/out" "$tmp/ids8k"

# --help
expect_ok P --help
check "--help prints usage" grep -q '^usage: scanflash prompts' "$tmp/out"

# errors: one line on stderr, the right exit status
printf '%s\n' '{"task_id": "HumanEval/0", "prompt": "x", "entry_point": "f", "canonical_solution": "y", "test": "t"}' \
  '{"task_id": "HumanEval/1", "prompt": ' >"$tmp/bad.jsonl"
expect_fail "^scanflash prompts: unknown problem 'HumanEval/999'" P --problem HumanEval/999 --context 8k
expect_fail "^scanflash prompts: unknown problem 'nope'" P --problem nope --context 8k
expect_fail "^scanflash prompts: context 5 is shorter than the prompt of HumanEval/7 \([0-9]+ tokens\); natural mode \(context 0\) gives the bare prompt$" \
  P --problem 7 --context 5
expect_fail "^scanflash prompts: --context: '8q' is not a count" P --problem 7 --context 8q
expect_fail "^scanflash prompts: --context: '-5' is negative" P --problem 7 --context -5
expect_fail "^scanflash prompts: --seed: " P --problem 7 --context 8k --seed x
expect_fail "^scanflash prompts: --data: $tmp/missing.jsonl.gz: no such file$" \
  "$SF_BIN" prompts --data "$tmp/missing.jsonl.gz" --tokenizer "$tokz" --problem 7 --context 8k
expect_fail "^scanflash prompts: --tokenizer: $tmp/missing.json: no such file$" \
  "$SF_BIN" prompts --data "$data" --tokenizer "$tmp/missing.json" --problem 7 --context 8k
expect_fail "^scanflash prompts: SCANFLASH_DATA: $tmp/gone.jsonl: no such file$" \
  env SCANFLASH_DATA="$tmp/gone.jsonl" "$SF_BIN" prompts --tokenizer "$tokz" --problem 7 --context 8k
expect_fail "^scanflash prompts: $tmp/bad.jsonl:2: malformed JSON$" \
  "$SF_BIN" prompts --data "$tmp/bad.jsonl" --tokenizer "$tokz" --problem 0 --context 8k
expect_fail "^scanflash prompts: unknown option '--bogus'" P --bogus --problem 7 --context 8k
expect_fail "^scanflash prompts: --problem ID is required" P --context 8k
expect_fail "^scanflash prompts: --context L \(or --natural\) is required" P --problem 7
expect_fail "^scanflash prompts: --format: 'xml'" P --problem 7 --context 8k --format xml
expect_fail "^scanflash prompts: option '--context' needs a value" P --problem 7 --context
expect_fail "^scanflash prompts: --natural and --context 8k contradict" P --problem 7 --context 8k --natural
expect_fail "^scanflash prompts: unexpected argument 'extra'" P --problem 7 --context 8k extra

# exit statuses: 2 for usage, 1 for everything else
expect_exit 2 P --problem 7 --context 8q
expect_exit 2 P --bogus
expect_exit 2 P --context 8k
expect_exit 2 P --problem 7
expect_exit 1 P --problem HumanEval/999 --context 8k
expect_exit 1 P --problem 7 --context 5
expect_exit 1 "$SF_BIN" prompts --data "$tmp/missing.jsonl.gz" --tokenizer "$tokz" --problem 7 --context 8k
expect_exit 1 "$SF_BIN" prompts --data "$tmp/bad.jsonl" --tokenizer "$tokz" --problem 0 --context 8k
finish
