# Bad input to scanflash run: a one-line error naming what and where, a
# non-zero exit (2 for usage, 1 otherwise), nothing created or damaged; under
# mpirun the same errors end every rank (no hang: each run is under timeout)
# with the message printed once.
. "$(dirname "$0")/lib.bash"
sweep=(--model tiny-mamba1 --context 256 --problems 0-1 --gen 4 --repeats 1 --warmup 0)
cat >"$tmp/bad.yaml" <<'EOF'
models: [tiny-mamba1]
contexts: [256, oops]
EOF
printf 'not an HDF5 file\n' >"$tmp/corrupt.h5"
printf 'this is not gzip' >"$tmp/bad.jsonl.gz"

# usage (2) and spec errors, alone
expect_fail 'no results file: give -o' alone run "${sweep[@]}"
expect_fail 'no sweep given' alone run -o "$tmp/x.h5"
expect_fail "^scanflash run: --context: .*oops" alone run --context oops -o "$tmp/x.h5"
expect_fail "bad.yaml:2:.*contexts" alone run "$tmp/bad.yaml" -o "$tmp/x.h5"
expect_fail "nope.yaml" alone run "$tmp/nope.yaml" -o "$tmp/x.h5"
expect_fail "unknown option '--bogus'" alone run "${sweep[@]}" --bogus -o "$tmp/x.h5"
expect_fail "retry-failed goes with --resume" alone run "${sweep[@]}" --retry-failed -o "$tmp/x.h5"
expect_fail "--shard: '2/2' is not I/N" alone run "${sweep[@]}" --shard 2/2 -o "$tmp/x.h5"
expect_fail "--shard: 'x' is not I/N" alone run "${sweep[@]}" --shard x -o "$tmp/x.h5"
expect_fail "--backend: 'gpu' is not one of auto, cpu, cuda" alone run "${sweep[@]}" --backend gpu -o "$tmp/x.h5"
expect_fail "--threads" alone run "${sweep[@]}" --threads -1 -o "$tmp/x.h5"
check "usage errors exit 2" bash -c "'$SF_BIN' run --bogus 2>/dev/null; test \$? -eq 2"

# failures (1)
expect_fail "--backend cuda: (this scanflash was built without CUDA|no GPU on )" alone run "${sweep[@]}" --backend cuda -o "$tmp/x.h5"
expect_fail "nonexistent.*" alone run "${sweep[@]}" --data "$tmp/nonexistent.jsonl.gz" -o "$tmp/x.h5"
expect_fail "bad.jsonl.gz" alone run "${sweep[@]}" --data "$tmp/bad.jsonl.gz" -o "$tmp/x.h5"
check "nothing created by the failures above" test ! -e "$tmp/x.h5" -a ! -e "$tmp/x.h5.journal"

expect_ok alone run "${sweep[@]}" -o "$tmp/done.h5" --quiet
cp "$tmp/done.h5" "$tmp/done.copy"
expect_fail "done.h5: already exists; pass --resume" alone run "${sweep[@]}" -o "$tmp/done.h5"
expect_fail "written from another spec" alone run --model tiny-mamba2 --context 256 -o "$tmp/done.h5" --resume
check "the existing file is untouched" cmp -s "$tmp/done.h5" "$tmp/done.copy"
expect_fail "corrupt.h5: not an HDF5 file" alone run "${sweep[@]}" -o "$tmp/corrupt.h5" --resume
check "exit 1 for a corrupt file" bash -c "'$SF_BIN' run ${sweep[*]} -o '$tmp/corrupt.h5' --resume 2>/dev/null; test \$? -eq 1"
check "the corrupt file is left as it was" grep -q "not an HDF5 file" "$tmp/corrupt.h5"
# A resume with other run-time limits is the same spec.
expect_ok alone run "${sweep[@]}" --item-timeout 30 --device-mem 40G -o "$tmp/done.h5" --resume --quiet

# under mpirun: every rank ends, the error once
mpi_fail() {
  local name=$1 re=$2; shift 2
  mpi 3 "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  check "np 3, $name: non-zero exit, no hang (exit $rc)" test $rc -ne 0 -a $rc -ne 124 -a $rc -ne 137
  check "np 3, $name: the error once" test "$(grep -cE -- "$re" "$tmp/err")" -eq 1
}
mpi_fail "bad spec" "bad.yaml:2:" run "$tmp/bad.yaml" -o "$tmp/m.h5"
mpi_fail "usage" "no results file" run "${sweep[@]}"
mpi_fail "existing output" "already exists" run "${sweep[@]}" -o "$tmp/done.h5"
mpi_fail "corrupt results" "not an HDF5 file" run "${sweep[@]}" -o "$tmp/corrupt.h5" --resume
mpi_fail "corrupt dataset (every rank fails to load it)" "bad.jsonl.gz" run "${sweep[@]}" --data "$tmp/bad.jsonl.gz" \
  -o "$tmp/m.h5"
check "np 3: nothing created" test ! -e "$tmp/m.h5"
finish
