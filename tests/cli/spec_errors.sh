#!/usr/bin/env bash
# Bad sweep specs and quick-sweep flags: each is rejected with one line on
# stderr that names the file, line and column (or the flag) and the key, with
# exit status 1 (spec file) or 2 (flags); nothing crashes.
. "$(dirname "$0")/lib.sh"
: "${SF_BIN:?run through ctest}"
P() { "$SF_BIN" plan "$@"; }

# expect_exit CODE CMD...: CMD must exit with CODE.
expect_exit() {
  local want=$1; shift
  "$@" >/dev/null 2>&1
  local rc=$?
  if [ $rc -ne "$want" ]; then echo "FAIL (exit $rc, wanted $want): $*"; fails=$((fails+1)); fi
}

spec() { printf '%b' "$2" >"$tmp/$1.yaml"; }
# A spec the errors below are variations of.
base='models: [mamba-130m, pythia-160m]\ncontexts: [2k, 8k]\nbatches: [1, 8]\nproblems: 0-7\n'

spec unknown_key "${base}repeats: 3\nwarmpu: 1\n"
expect_fail "unknown_key.yaml:6:1: unknown key 'warmpu' \(did you mean 'warmup'\?\)" P "$tmp/unknown_key.yaml"

spec wrong_type "models: [mamba-130m]\ncontexts:\n  first: 2k\n"
expect_fail "wrong_type.yaml:3:3: key 'contexts': expected a list of token counts, got a mapping" P "$tmp/wrong_type.yaml"
spec wrong_type2 "models: [mamba-130m]\nrepeats: [3, 4]\n"
expect_fail "wrong_type2.yaml:2:10: key 'repeats': expected a repeat count, got a list" P "$tmp/wrong_type2.yaml"

spec batch0 "models: [mamba-130m]\nbatches: [1, 8, 0]\n"
expect_fail "batch0.yaml:2:17: key 'batches': batch size 0 is not allowed" P "$tmp/batch0.yaml"

spec preset "models:\n  - mamba-130m\n  - pythia-16m\n"
expect_fail "preset.yaml:3:5: key 'models': unknown model preset 'pythia-16m'" P "$tmp/preset.yaml"
spec preset2 "models:\n  - {preset: mamba-7b, name: big}\n"
expect_fail "preset2.yaml:2:14: key 'models\[0\].preset': unknown model preset 'mamba-7b'" P "$tmp/preset2.yaml"

spec range "models: [mamba-130m]\ncontexts: \"2k:1k:x2\"\n"
expect_fail "range.yaml:2:11: key 'contexts': '2k:1k:x2': end 1k is less than start 2k" P "$tmp/range.yaml"
spec range2 "models: [mamba-130m]\nbatches: [1:8:x1]\n"
expect_fail "range2.yaml:2:11: key 'batches': '1:8:x1': the factor '1' must be an integer >= 2" P "$tmp/range2.yaml"

spec malformed "models: [mamba-130m\ncontexts: [2k]\n"
expect_fail "malformed.yaml:2:9: malformed YAML" P "$tmp/malformed.yaml"
spec malformed2 "models:\n  - mamba-130m\n contexts: [2k]\n"
expect_fail "malformed2.yaml:[0-9]+:[0-9]+: malformed YAML" P "$tmp/malformed2.yaml"

expect_fail "$tmp/missing.yaml: cannot open" P "$tmp/missing.yaml"

spec dup "contexts: [2k]\nbatches: [1]\ncontexts: [4k]\n"
expect_fail "dup.yaml:3:1: key 'contexts' is given twice \(first at line 1\)" P "$tmp/dup.yaml"
spec problems "problems: 0-200\n"
expect_fail "problems.yaml:1:11: key 'problems': '0-200': problem 200 is out of range 0..163" P "$tmp/problems.yaml"
spec repeats0 "repeats: 0\n"
expect_fail "repeats0.yaml:1:10: key 'repeats': repeats 0 is out of range" P "$tmp/repeats0.yaml"
spec kind "kinds: [generate, train]\n"
expect_fail "kind.yaml:1:19: key 'kinds': unknown kind 'train'" P "$tmp/kind.yaml"
spec negctx "contexts: [-2k]\n"
expect_fail "negctx.yaml:1:12: key 'contexts': '-2k': a token count cannot be negative" P "$tmp/negctx.yaml"
spec empty ""
expect_fail "empty.yaml: the spec is empty" P "$tmp/empty.yaml"

# exit status: spec file errors 1, flag errors 2
expect_exit 1 P "$tmp/batch0.yaml"
expect_exit 2 P --batch 0
expect_exit 2 P

# the same mistakes as quick flags
expect_fail "^scanflash plan: --context: '2k:1k:x2': end 1k is less than start 2k$" P --context 2k:1k:x2
expect_fail "^scanflash plan: --batch: batch size 0 is not allowed" P --arch mamba1 --batch 1,0
expect_fail "^scanflash plan: --model: unknown model preset 'pythia-16m'" P --model pythia-16m
expect_fail "^scanflash plan: --problems: '0-200': problem 200 is out of range" P --model mamba-130m --problems 0-200
expect_fail "^scanflash plan: --repeats needs a value" P --model mamba-130m --repeats
expect_fail "^scanflash plan: --context cannot be combined with a spec file" P "$tmp/dup.yaml" --context 2k
expect_fail "^scanflash plan: no sweep given" P
expect_fail "^scanflash plan: unknown option '--bogus'" P --model mamba-130m --bogus
finish
