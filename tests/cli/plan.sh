#!/usr/bin/env bash
# scanflash plan: every ready spec plans with totals; quick flags that mean
# the same sweep as a YAML file give the same keys; keys do not depend on the
# order of the lists or of the output; CSV and predicted OOMs.
. "$(dirname "$0")/lib.sh"
: "${SF_BIN:?run through ctest}"
: "${SF_SOURCE_DIR:?run through ctest}"
P() { "$SF_BIN" plan "$@"; }
check() { # check DESCRIPTION TEST...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails+1)); fi
}
keys() { grep -Ev '^(#|index,)' "$1" | cut -d, -f2 | sort; }

expect_ok P --help
check "--help names the quick flags" grep -q -- "--context LIST" "$tmp/out"

expect_ok P "$SF_SOURCE_DIR/sweeps/quick.yaml"
check "quick.yaml: 81 items" grep -q "^totals: 81 items (generate 81, prefill 0, kernels 0); predicted OOM: 0" "$tmp/out"
check "quick.yaml: total cost" grep -q "^total estimated cost: " "$tmp/out"
check "quick.yaml: one row per item" [ "$(grep -cE '^[0-9a-f]{16}  ' "$tmp/out")" -eq 81 ]
check "quick.yaml: runs under 5 minutes by the estimate" \
  grep -Eq "^total estimated cost: ([0-9.]+ s|[0-4]\.[0-9] min) " "$tmp/out"

for f in "$SF_SOURCE_DIR"/sweeps/*.yaml; do
  expect_ok P "$f"
  check "$(basename "$f"): totals" grep -q "^totals: " "$tmp/out"
done

# predicted OOMs are marked and counted
expect_ok P "$SF_SOURCE_DIR/sweeps/long-context.yaml"
n_oom=$(grep -c "OOM-predicted$" "$tmp/out")
check "long-context: some items predicted to OOM" [ "$n_oom" -gt 0 ]
check "long-context: the count matches the marks" grep -q "predicted OOM: $n_oom;" "$tmp/out"
expect_ok P "$SF_SOURCE_DIR/sweeps/tiny.yaml" --device-mem 1k
check "--device-mem: everything OOMs with 1 KiB" grep -q "^totals: 27 items .*predicted OOM: 27;" "$tmp/out"

# quick flags equivalent to a YAML spec: the same keys, in the same order
printf '%s\n' "# the same sweep as the flags below" "models: [mamba-130m, mamba2-130m, pythia-160m]" \
  "contexts: [2k, 8k, 32k]" "batches: [1, 8]" "gens: [128]" "problems: 0-7" "repeats: 3" "warmup: 1" \
  >"$tmp/same.yaml"
expect_ok P "$tmp/same.yaml" --format csv
cp "$tmp/out" "$tmp/yaml.csv"
expect_ok P --arch mamba1,mamba2,transformer --context 2k:32k:x4 --batch 1,8 --gen 128 --problems 0-7 \
  --repeats 3 --warmup 1 --format csv
cp "$tmp/out" "$tmp/flags.csv"
check "flags and YAML: same keys in the same order" \
  cmp -s <(grep -v '^#' "$tmp/yaml.csv" | cut -d, -f1,2) <(grep -v '^#' "$tmp/flags.csv" | cut -d, -f1,2)
expect_ok P "$SF_SOURCE_DIR/sweeps/quick.yaml" --format csv
check "quick.yaml has the same keys too (name and timeout are not in them)" \
  cmp -s <(keys "$tmp/yaml.csv") <(keys "$tmp/out")

# list order changes the index order, not the keys; --order cost sorts by cost
expect_ok P --model pythia-160m,mamba2-130m,mamba-130m --context 32k,2k,8k --batch 8,1 --problems 0-7 \
  --format csv --order cost
cp "$tmp/out" "$tmp/shuffled.csv"
check "reordered lists: same key set" cmp -s <(keys "$tmp/yaml.csv") <(keys "$tmp/shuffled.csv")
check "--order cost: cost descending" \
  bash -c "grep -Ev '^(#|index,)' '$tmp/shuffled.csv' | cut -d, -f14 | sort -g -r -c"

# a spec's keys are the same on every run
expect_ok P "$SF_SOURCE_DIR/sweeps/fig8-left.yaml" --format csv
cp "$tmp/out" "$tmp/a.csv"
expect_ok P "$SF_SOURCE_DIR/sweeps/fig8-left.yaml" --format csv
check "fig8-left: deterministic" cmp -s "$tmp/a.csv" "$tmp/out"
check "fig8-left: 96 items" [ "$(keys "$tmp/a.csv" | wc -l)" -eq 96 ]
check "fig8-left: keys unique" [ "$(keys "$tmp/a.csv" | uniq | wc -l)" -eq 96 ]
finish
