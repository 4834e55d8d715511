#!/usr/bin/env bash
# A scanflash.sbatch job requeued mid-run from outside (`scontrol requeue
# JOBID` while it runs, after a few items are durable, as an administrator or
# a pre-emption would) comes back with the same job id, resumes from its file
# (--resume) and completes: every planned key once, all ok, and the items
# finished before the requeue are not run again.
. "$(dirname "$0")/common.bash"
start_slurm
cd "$work" || exit 1
long_spec long.yaml
plan_keys long.yaml >want.txt
n=$(wc -l <want.txt)

t0=$(date +%s)
id=$(SPEC=$work/long.yaml OUT=rq.h5 SCANFLASH_ARGS="--backend cpu --progress 2" \
     sbatch --parsable "${cpu_job_opts[@]}" "$slurm_dir/scanflash.sbatch")
check "sbatch accepted (job ${id:-none})" [ -n "$id" ]
log=slurm-scanflash-$id.out
if ! wait_items "$id" rq.h5 5 180; then
  show_log "$log"; echo "FAIL: job $id never had 5 items done while running"; exit 1
fi
k=$(journal_items rq.h5)
say "job $id: $k of $n items durable: scontrol requeue $id"
scontrol requeue "$id"
check "scontrol requeue $id: accepted" [ $? = 0 ]
check "job $id back in the queue (PENDING, restarts 1)" wait_state "$id" '^PENDING$' 60
check "job $id: Restarts=1" [ "$(job_field "$id" Restarts)" = 1 ]
# what the first run left: the journal (or the closed file) has k..n-1 items
if [ -f rq.h5.journal ]; then left=$(journal_items rq.h5); else left=$($h5keys rq.h5 | grep -c ' ok$'); fi
say "first run left $left item(s) durable (the .h5 and journal as they are: $(ls rq.h5* | tr '\n' ' '))"
check "the requeue came mid-run ($left of $n items done, at least $k)" [ "$left" -ge "$k" -a "$left" -lt "$n" ]
cp rq.h5 before.h5 2>/dev/null; [ -f rq.h5.journal ] && cp rq.h5.journal before.h5.journal

release_requeued "$id"
wait_job "$id" 600; rc=$?
say "job $id: $(( $(date +%s) - t0 )) s from submission to completion"
show_log "$log"
check "job $id: exit 0 after the requeue" [ "$rc" = 0 ]
check "job $id: ran twice (restart 0, restart 1)" grep -q "job $id (restart 1)" "$log"
check "job $id: the second run resumed" grep -q -- "-o rq.h5 --resume" "$log"
check "job $id: the first run did not requeue itself (Slurm did)" bash -c "! grep -q 'requeueing job' '$log'"
check_file "rq.h5 after the requeue" rq.h5 want.txt all-ok
# items done before the requeue kept their first run's result
if [ -f before.h5.journal ]; then
  "$SF_BIN" merge before.h5 -o before-fixed.h5 >/dev/null 2>&1 && mv before-fixed.h5 before.h5
fi
check "items finished before the requeue were not run again" kept_items before.h5 rq.h5
finish
