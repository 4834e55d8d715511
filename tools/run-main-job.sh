#!/usr/bin/env bash
# The main job, as far as the project has grown: today, build info and a
# packed HumanEval+ context with its statistics.
set -eu
build=${1:-build}
bin="$build/driver/scanflash"
"$bin" info
echo
echo "== HumanEval/0 in an 8k-token context (seed 0) =="
"$bin" prompts --problem HumanEval/0 --context 8k --seed 0 --format stats
