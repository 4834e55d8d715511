#!/bin/bash
# One device call for the Hopper attention path (bench/notes-attention.md):
# build, SASS check, GPU tests (small set), then timings of every prefill
# variant (bench_attention) and of the op through `scanflash kernels` with the
# automatic choice (wgmma on an H100) and with SF_ATTENTION_PATH=mma_sync.
# Usage (on the device, repo root): bash bench/attn_wgmma_device.sh [quick]
set -u
O=${OUT:-/tmp/attn-out}; mkdir -p "$O"
B=build-dev
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DSCANFLASH_CUDA=ON \
  -DBUILD_TESTING=ON -DSF_TEST_DATA_DIR="${DEVICE_DATA:-}" > "$O/build.log" 2>&1 &&
  cmake --build $B -j16 --target test_gpu_ops scanflash bench_attention >> "$O/build.log" 2>&1 ||
  { tail -60 "$O/build.log"; exit 1; }
grep -i "warning" "$O/build.log" | grep -i "wgmma\|C75" | head
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.limit --format=csv,noheader
cuobjdump -sass $B/kernels/CMakeFiles/sf_attention_wgmma.dir/cuda/attention_wgmma.cu.o > "$O/wgmma.sass" 2>&1
echo "SASS: $(grep -c HGMMA "$O/wgmma.sass") HGMMA, $(grep -c UTMALDG "$O/wgmma.sass") UTMALDG, $(grep -c 'LDL\|STL' "$O/wgmma.sass") LDL/STL"
grep -o "HGMMA\.[0-9A-Za-z.]*" "$O/wgmma.sass" | sort | uniq -c
timeout 200 $B/tests/test_gpu_ops --small > "$O/test_small.log" 2>&1; echo "test_gpu_ops --small rc $?"
grep -E "^attention" "$O/test_small.log" | grep -v "attention_naive\|attention_decode" | awk '{print $NF}' | sort | uniq -c
grep -E "FAIL|failed|error" "$O/test_small.log" | head -30
tail -1 "$O/test_small.log"
[ "${1:-}" = quick ] && exit 0
timeout 150 $B/tests/bench_attention --prefill --reps 10 > "$O/bench.log" 2>&1; echo "bench rc $?"
grep -E "^(64|128) +yes +(8192|16384)|MISMATCH|variant" "$O/bench.log" | head -60
for path in auto mma_sync; do
  SF_ATTENTION_PATH=$path timeout 120 $B/driver/scanflash kernels --op attn:tiled --seqlen 8k,16k,64k \
    --head-dim 128,64 --repeats 5 > "$O/kernels_$path.log" 2>&1; echo "kernels $path rc $?"
  grep -E "attention|wrong|error" "$O/kernels_$path.log" | head -12
done
# the long cases too (attention: one head of 128k tokens through the op)
if [ "${FULL_S:-0}" -gt 0 ]; then
  timeout $FULL_S $B/tests/test_gpu_ops > "$O/test_full.log" 2>&1; echo "test_gpu_ops (full) rc $?"
  grep -E "LONG|long|FAIL|case\(s\)" "$O/test_full.log" | head -12
fi
[ "${MEMCHECK_S:-110}" -gt 0 ] || exit 0
# memcheck of the wgmma kernels on the small cases (other kernels run uninstrumented)
timeout ${MEMCHECK_S:-110} compute-sanitizer --tool memcheck --kernel-name kns=sf_attention_wgmma \
  $B/tests/test_gpu_ops --small > "$O/memcheck.log" 2>&1; echo "memcheck rc $?"
grep -E "ERROR SUMMARY|case\(s\)|Invalid|rror" "$O/memcheck.log" | head -8
