#!/usr/bin/env bash
# slurm/scanflash.sbatch on the real local Slurm: sweeps/tiny.yaml (cpu
# backend, 2 ranks via srun --mpi=pmix) runs to completion and the file holds
# exactly `scanflash plan`'s keys, each once, all ok; submitting it again
# resumes (nothing is run twice); slurm/submit sizes and submits a quick-flag
# sweep that completes too.
. "$(dirname "$0")/common.bash"
start_slurm
cd "$work" || exit 1
# a snapshot of sweeps/tiny.yaml: the keys planned and the keys run come from one text
cp "$SF_SOURCE_DIR/sweeps/tiny.yaml" tiny.yaml
spec=$work/tiny.yaml
plan_keys "$spec" >want.txt
check "plan lists keys" [ -s want.txt ]

t0=$(date +%s)
id=$(SPEC=$spec OUT=tiny.h5 SCANFLASH_ARGS="--backend cpu" \
     sbatch --parsable "${cpu_job_opts[@]}" "$slurm_dir/scanflash.sbatch")
check "sbatch accepted scanflash.sbatch (job ${id:-none})" [ -n "$id" ]
wait_job "$id" 600; rc=$?
say "job $id took $(( $(date +%s) - t0 )) s"
log=slurm-scanflash-$id.out
show_log "$log"
check "job $id: exit 0" [ "$rc" = 0 ]
check "job $id: 2 ranks through srun --mpi=pmix" grep -q "on 2 rank(s)" "$log"
check "job $id: srun --mpi=pmix ... run" grep -Eq "running: srun --mpi=pmix .* run $spec -o tiny.h5 --backend cpu" "$log"
check "job $id: a fresh run (no --resume)" bash -c "! grep -q -- '-o tiny.h5 --resume' '$log'"
check_file "tiny.h5 after job $id" tiny.h5 want.txt
cp tiny.h5 first.h5

# the same submission again: the file exists, so it resumes and runs nothing
id2=$(SPEC=$spec OUT=tiny.h5 SCANFLASH_ARGS="--backend cpu" \
      sbatch --parsable "${cpu_job_opts[@]}" "$slurm_dir/scanflash.sbatch")
wait_job "$id2" 300; rc=$?
log2=slurm-scanflash-$id2.out
show_log "$log2"
check "job $id2 (again): exit 0" [ "$rc" = 0 ]
check "job $id2 (again): resumes" grep -q -- "-o tiny.h5 --resume" "$log2"
check_file "tiny.h5 after job $id2" tiny.h5 want.txt
check "job $id2 (again): no item ran again (same key, t_start rows)" \
  cmp -s <($h5keys first.h5 t_start | sort) <($h5keys tiny.h5 t_start | sort)

# slurm/submit: a quick-flag sweep, sized by plan, submitted for real
qf=(--model tiny-mamba1,tiny-transformer --context 256 --gen 4 --problems 0-2 --repeats 1)
plan_keys "${qf[@]}" >want-quick.txt
SCANFLASH=$SF_BIN "$slurm_dir/submit" --gpus-per-node 0 --tasks-per-node 2 --cpus-per-task 1 \
  --run-args "--backend cpu" -o quick.h5 -- "${qf[@]}" >submit.out 2>&1
check "slurm/submit: exit 0" [ $? = 0 ]
sed 's/^/  submit: /' submit.out
id3=$(grep -oE 'Submitted batch job [0-9]+' submit.out | grep -oE '[0-9]+$')
check "slurm/submit: submitted (job ${id3:-none})" [ -n "$id3" ]
if [ -n "$id3" ]; then
  wait_job "$id3" 300; rc=$?
  show_log "slurm-scanflash-$id3.out"
  check "job $id3 (submit): exit 0" [ "$rc" = 0 ]
  check "job $id3 (submit): the suggested time limit ($(grep -oE 'suggested --time [0-9:]+' submit.out))" \
    [ "$(job_field "$id3" TimeLimit)" = "$(grep -oE 'suggested --time [0-9:]+' submit.out | cut -d' ' -f3)" ]
  check_file "quick.h5 from slurm/submit" quick.h5 want-quick.txt all-ok
fi
finish
