/* Internals shared by the runner's files: the runner's state (backend
 * context, the cached model, the record arrays it reuses) and the measuring
 * loop runner.c calls. */
#ifndef SCANFLASH_RUNNER_INTERNAL_H
#define SCANFLASH_RUNNER_INTERNAL_H

#include "devices/nvml.h"
#include "engine/engine.h"
#include "kbench/kbench.h"
#include "ops/op_table.h"
#include "runner/runner.h"

struct sf_runner {
  sf_runner_config cfg;
  char *fail_key;             /* owned copy of cfg.fail_key, without "@G" */
  int fail_member;            /* G of "KEY@G", else -1 */
  char host[SF_HOST_LEN];
  sf_op_ctx ctx;
  int ctx_ok;
  int cuda;                   /* ctx is the cuda backend's */
  sf_nvml *nvml;              /* energy and clocks; NULL without NVML */
  char energy_note[128];      /* why energy is NaN */
  sf_device_info gpu;         /* cuda: this rank's GPU */
  sf_kbench_ctx *kbench;      /* kernels items: made by the first one */
  sf_kernel_result kernel_row;

  /* The model of the previous item, kept for the next one with the same
   * shape, weights source and seed (random init of a 2.8B model takes
   * longer than many of its items). */
  sf_model model;
  int have_model;
  sf_model_config model_cfg;
  uint64_t model_seed;
  char *model_checkpoint;

  /* Records of the item in hand, grown as needed and reused. */
  sf_repeat_result *repeats;
  int64_t n_repeats, cap_repeats;
  sf_step_result *steps;
  int64_t n_steps, cap_steps;
};

/* Why a measurement stopped early (besides an engine error). */
typedef struct rn_stop {
  sf_item_status status;      /* SF_STATUS_OK: it did not stop */
  char message[SF_MSG_LEN];
} rn_stop;

/* What the engine holds for the item at its peak, and how it ran. */
typedef struct rn_memory {
  int64_t state_bytes, scratch_bytes;
  int64_t chunk_tokens;       /* prefill chunk per sequence */
  int64_t n_chunks;
  int graphs;                 /* decode steps replayed a graph */
  int persistent;             /* decode steps ran every layer as one kernel (Mamba-1, batch 1) */
  int cp_k;                   /* ranks of the group (1: alone) */
} rn_memory;

/* Warm-ups and timed repeats of item on r->model, appending to r->repeats and
 * r->steps. deadline: monotonic seconds (0 = none). An engine failure is
 * returned (its code decides oom vs error); a deadline or poll stop is in
 * *stop with SF_OK returned. t: the item's context-parallel group, or NULL;
 * with a group every member returns the same status and stop. */
sf_status rn_measure(sf_runner *r, sf_transport *t, const sf_work_item *item, const sf_runner_batch *in,
                     double deadline, rn_stop *stop, rn_memory *mem, sf_error *err);

/* Appends one repeat / step record (host memory failures: SF_ERR_NOMEM). */
sf_status rn_push_repeat(sf_runner *r, const sf_repeat_result *rep, sf_error *err);
sf_status rn_push_step(sf_runner *r, const sf_step_result *st, sf_error *err);

/* Fills the metrics of an ok item from r->repeats / r->steps. */
void rn_metrics(const sf_runner *r, const sf_work_item *item, const sf_runner_batch *in, sf_item_result *res);

#endif
