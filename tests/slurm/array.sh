#!/usr/bin/env bash
# slurm/scanflash-array.sbatch on the real local Slurm: sweeps/tiny.yaml split
# over a 3-task job array (--shard I/3, one file per shard), then
# `scanflash merge`: the shards are disjoint, and the merged file has the same
# key set as one job (scanflash.sbatch) of the same sweep. Then slurm/submit
# --array 2 submits the array and its dependent merge job, which ends with the
# same keys.
. "$(dirname "$0")/common.bash"
start_slurm
cd "$work" || exit 1
# a snapshot of sweeps/tiny.yaml: the keys planned and the keys run come from one text
cp "$SF_SOURCE_DIR/sweeps/tiny.yaml" tiny.yaml
spec=$work/tiny.yaml
plan_keys "$spec" >want.txt

# one job, the reference
id=$(SPEC=$spec OUT=one.h5 SCANFLASH_ARGS="--backend cpu" \
     sbatch --parsable "${cpu_job_opts[@]}" "$slurm_dir/scanflash.sbatch")
wait_job "$id" 600; rc=$?
check "one job $id: exit 0" [ "$rc" = 0 ] || show_log "slurm-scanflash-$id.out"
check_file "one.h5 (job $id)" one.h5 want.txt
$h5keys one.h5 | cut -d' ' -f1 | sort >one-keys.txt

# the array: 3 shards
t0=$(date +%s)
aid=$(SPEC=$spec OUT=arr.h5 SCANFLASH_ARGS="--backend cpu" \
      sbatch --parsable --array=0-2 "${cpu_job_opts[@]}" "$slurm_dir/scanflash-array.sbatch")
aid=${aid%%;*}
check "sbatch accepted scanflash-array.sbatch (array job ${aid:-none})" [ -n "$aid" ]
wait_job "$aid" 900; rc=$?
say "array job $aid took $(( $(date +%s) - t0 )) s"
for i in 0 1 2; do
  show_log "slurm-scanflash-shard-${aid}_$i.out"
  check "array task $i: shard $i/3 into arr.shard$i.h5" \
    grep -Eq -- "run $spec -o arr.shard$i.h5 --shard $i/3( |$)" "slurm-scanflash-shard-${aid}_$i.out"
done
check "array job $aid: every task exit 0" [ "$rc" = 0 ]
: >shard-keys.txt
for i in 0 1 2; do
  check "arr.shard$i.h5 exists" [ -f "arr.shard$i.h5" ]
  if $h5keys "arr.shard$i.h5" >rows$i.txt; then
    check "arr.shard$i.h5: every item finished (none interrupted)" [ -z "$(awk '$2 == "interrupted"' rows$i.txt)" ]
    cut -d' ' -f1 rows$i.txt >>shard-keys.txt
    say "shard $i: $(wc -l <rows$i.txt) items"
  else
    check "arr.shard$i.h5 readable" false
  fi
done
check "shards: disjoint" [ -z "$(sort shard-keys.txt | uniq -d)" ]
check "shards: together the planned keys" cmp -s <(sort -u shard-keys.txt) want.txt
"$SF_BIN" merge arr.shard*.h5 -o arr.h5 >merge.out 2>&1
check "scanflash merge arr.shard*.h5 -o arr.h5: exit 0" [ $? = 0 ]
sed 's/^/  merge: /' merge.out
check_file "merged arr.h5" arr.h5 want.txt
check "merged arr.h5: the same key set as one job" cmp -s <($h5keys arr.h5 | cut -d' ' -f1 | sort) one-keys.txt

# slurm/submit --array 2: the array and a dependent merge job
SCANFLASH=$SF_BIN "$slurm_dir/submit" "$spec" --array 2 --gpus-per-node 0 --tasks-per-node 2 --cpus-per-task 1 \
  --time 10 --run-args "--backend cpu" -o sub.h5 >submit.out 2>&1
check "slurm/submit --array 2: exit 0" [ $? = 0 ]
sed 's/^/  submit: /' submit.out
ids=($(grep -oE 'Submitted batch job [0-9]+' submit.out | grep -oE '[0-9]+$'))
check "slurm/submit --array 2: two submissions (array, merge)" [ ${#ids[@]} = 2 ]
if [ ${#ids[@]} = 2 ]; then
  check "merge job ${ids[1]} depends on array job ${ids[0]}" \
    grep -q "afterok:${ids[0]}" <<<"$(job_field "${ids[1]}" Dependency)$(grep -o 'afterok:[0-9]*' submit.out)"
  wait_job "${ids[1]}" 900; rc=$?
  check "merge job ${ids[1]}: exit 0" [ "$rc" = 0 ]
  wait_job "${ids[0]}" 60 >/dev/null; check "array job ${ids[0]}: exit 0" [ $? = 0 ]
  show_log "slurm-scanflash-merge-${ids[1]}.out"
  check "sub.shard0.h5 and sub.shard1.h5 written" test -f sub.shard0.h5 -a -f sub.shard1.h5
  check_file "sub.h5 merged by the dependent job" sub.h5 want.txt
fi
finish
