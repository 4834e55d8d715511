#!/usr/bin/env bash
# What each decode-step fusion is worth (issue 6; bench/notes-decode.md):
# batch-1 decode at 2k tokens of mamba-1.4b, mamba2-1.3b and pythia-1.4b on
# one GPU, once per SCANFLASH_UNFUSED setting (worker/engine/fusions.c), in
# one process per setting; the first setting runs again at the end to show
# the drift between runs. Prints TPOT p50 (median over repeats) per model and
# setting; results files and reports go to $OUT (default ./bench-out/fusions).
#
#   bash bench/decode-fusions.sh BUILD_DIR [SETTING...]
# SETTING: a SCANFLASH_UNFUSED value, "-" for all fusions on, or NAME=VALUE
# (all fusions on, the environment variable NAME set for that run, e.g.
# SCANFLASH_PDL=0). Default:
#   - all conv dt_proj norm_pair,rotary_pair
# MODELS (comma-separated) replaces the three models.
set -uo pipefail
build=${1:?usage: decode-fusions.sh BUILD_DIR [SETTING...]}
shift
settings=("$@")
[ ${#settings[@]} -eq 0 ] && settings=(- all conv dt_proj norm_pair,rotary_pair)
settings+=("${settings[0]}")
OUT=${OUT:-./bench-out}/fusions
mkdir -p "$OUT"
bin=$build/driver/scanflash report=$build/analysis/scanflash-report
flags=(--model "${MODELS:-mamba-1.4b,mamba2-1.3b,pythia-1.4b}" --context 2k --batch 1 --gen 128 --problems 0 --repeats 3)
n=0
for u in "${settings[@]}"; do
  n=$((n + 1))
  name=$n-${u//,/+}
  [ "$u" = - ] && u=""
  var=SCANFLASH_UNFUSED val=$u
  if [[ $u == *=* ]]; then var=${u%%=*} val=${u#*=}; fi
  name=${name//=/-}
  start=$SECONDS
  env "$var=$val" mpirun --oversubscribe -np 1 -x "$var" "$bin" run "${flags[@]}" --backend cuda \
    -o "$OUT/$name.h5" >"$OUT/$name.log" 2>&1
  rc=$?
  "$report" "$OUT/$name.h5" -o "$OUT/report-$name" >/dev/null 2>&1
  echo "== $var='$val': exit $rc, $((SECONDS - start)) s"
  # the TPOT table: header, separator, one row per model
  awk '/TPOT\) percentiles/ {on = 1} on && /^\|/ {print; if (++k == 5) exit}' "$OUT/report-$name/report.md" 2>/dev/null
done
