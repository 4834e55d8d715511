# Items that end other than ok are recorded with their status and the sweep
# goes on (exit 0): predicted OOM (not run, the estimate in the message),
# multi-GPU items without enough ranks on a node (skipped), kernels
# items on the cpu backend (skipped), and the item timeout (timeout, listed
# as failed).
. "$(dirname "$0")/lib.bash"
base=(--model tiny-mamba1,tiny-transformer --context 256 --problems 0-1 --gen 4 --repeats 1 --warmup 0)

expect_ok mpi 2 run "${base[@]}" --device-mem 1k -o "$tmp/oom.h5"
check "device-mem 1k: every item oom_predicted" test "$(count_status "$tmp/oom.h5" oom_predicted)" -eq 4
check "oom_predicted names the estimate and the budget" \
  bash -c "'$SF_RESULTS_KEYS' '$tmp/oom.h5' | grep -q 'oom_predicted 0 0 estimated .* GiB per GPU exceeds the device memory budget'"

expect_ok alone run "${base[@]}" --gpus 1,transformer\>=256:2 -o "$tmp/gpus.h5" --quiet
check "transformer items need 2 GPUs, alone: skipped, honestly" test "$(file_lines "$tmp/gpus.h5" | \
  grep -c 'skipped 0 0 needs 2 GPUs (ranks of one node): the largest node group has 1 worker rank (rank 0 runs alone')" -eq 2
check "the mamba items still ran" test "$(count_status "$tmp/gpus.h5" ok)" -eq 2

expect_ok mpi 2 run --model tiny-mamba1 --kind kernels --kernels selective_scan,conv1d --context 256 -o "$tmp/k.h5" --quiet
check "kernels items on cpu: skipped" test "$(file_lines "$tmp/k.h5" | \
  grep -c 'skipped 0 0 kernel benchmarks need the cuda backend')" -eq 2

expect_ok mpi 3 run --model tiny-transformer --context 256 --problems 0-1 --gen 1000 --repeats 1 --item-timeout 0.3 \
  -o "$tmp/t.h5"
check "item timeout: recorded as timeout" test "$(count_status "$tmp/t.h5" timeout)" -eq 2
check "timeout names the limit" bash -c "'$SF_RESULTS_KEYS' '$tmp/t.h5' | grep -q 'timed out after .* (item timeout 0.3 s)'"
check "timeouts are listed as failed" grep -q "2 item(s) failed" "$tmp/err"
finish
