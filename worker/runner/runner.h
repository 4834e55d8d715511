/* The item runner: runs one work item on this rank's backend and measures it
 * (DESIGN "Metrics"). It builds the model (or reuses the one the previous
 * item built: consecutive items of a sweep mostly share it), a session for
 * the item's batch, then warm-ups and timed repeats; it fills the /items row
 * and the /repeats and /decode_steps rows.
 *
 * An item's own failure is its status, not a return code: errors (status
 * error, with the message), failed allocations (oom: everything the item
 * built is freed first), the deadline (timeout) and the poll callback
 * (interrupted) all end in *out with SF_OK returned, so a sweep goes on.
 * sf_runner_run fails only when the runner itself is unusable (bad
 * arguments, host memory for its own records).
 *
 * What one repeat of a generate item measures (backend synced before each
 * clock read, monotonic clock):
 *   prefill_s  the prompt's prefill (every chunk) + the first token's
 *              choice: the time to first token (TTFT);
 *   each decode step on its own: feed the previous tokens (one per
 *              sequence), choose the next ones; its latency and the
 *              position (tokens in the longest sequence's cache before it)
 *              go to /decode_steps; decode_s is their sum;
 *   total_s    prefill_s + decode_s.
 * Sequence b generates gen[b] tokens (the first from prefill, gen[b] - 1 from
 * decode steps); a batch with different gen[b] runs max(gen) - 1 steps, every
 * sequence stepping (finished ones' tokens are dropped), and counts each
 * sequence's own tokens. Prefill items time prefill_s only (gen = 0, still
 * including the first token's choice, so TTFT means the same in both kinds).
 *
 * Metrics of an ok item (/items), over its repeats:
 *   ttft_s         median prefill_s
 *   prefill_tok_s  prompt tokens (all sequences) / ttft_s
 *   decode_tok_s   decode tokens (sum of gen[b] - 1) / median decode_s
 *   e2e_tok_s      generated tokens (sum of gen[b]) / median total_s
 *   tpot_p50/90/99 percentiles of every decode step's latency of every
 *                  repeat (linear interpolation between order statistics)
 *   prefill_cv     sample standard deviation / mean of prefill_s (0 with one
 *                  repeat)
 *   weights_bytes  the weights as allocated; kv_cache_bytes (Transformer)
 *                  or state_bytes (Mamba: conv + SSM state) as the session
 *                  allocated them; peak_bytes = weights + state + activation
 *                  scratch, what the engine holds at its peak;
 *   est_bytes      the memory model's estimate with the item's real prompt
 *                  and generation lengths, in the dtype the backend computes
 *                  in (f32 on cpu), so it compares with peak_bytes (the plan's
 *                  estimate, for the sweep's dtype, stays in the item's row).
 *   energy_j       median over repeats of the GPU's energy counter (NVML)
 *                  across the repeat; j_per_token = energy_j / (prompt +
 *                  generated tokens of one repeat); sm/mem_clock_mhz: the
 *                  clocks at the end of the last repeat (NVML)
 * On the cuda backend peak_bytes is the device memory the rank held at the
 * item's peak (weights, the session's arena, op and cuBLAS workspaces: every
 * allocation counted by the backend) and decode steps replay a CUDA graph
 * from the third step of a session on (the first two run eagerly: sizing,
 * then capture). A prefill_chunk of 0 picks the largest chunk whose estimate
 * fits in the free device memory (the prompt in one call when it fits); the
 * message of an ok item says which chunk ran.
 * Metrics that do not apply are NaN (decode metrics of prefill items; energy
 * and J/token without NVML; every metric of an item that is not ok). Items
 * that are not ok keep no /repeats or /decode_steps rows.
 *
 * Check points: before each run, between prefill chunks and between decode
 * steps the runner checks the deadline (item->timeout_s, 0 = none; warm-ups
 * and building the model count) and calls the poll callback. A prefill with
 * prefill_chunk > 0 is fed to the engine one chunk per call so there are
 * check points inside it; each call ends with the engine's head over the
 * batch's last rows (batch x vocab x d_model), one more than a single call
 * would run: small next to a chunk of >= 16 tokens per sequence at the
 * published shapes. With prefill_chunk 0 the prompt is one call. */
#ifndef SCANFLASH_RUNNER_H
#define SCANFLASH_RUNNER_H

#include <stdint.h>

#include "devices/devices.h"
#include "model/model.h"
#include "scanflash/error.h"
#include "scanflash/records.h"

typedef struct sf_runner sf_runner;
typedef struct sf_transport sf_transport; /* parallel/transport_api.h */

/* Returns non-zero when the item in hand must be abandoned now (a signal,
 * or the driver's abort): it is recorded as interrupted. */
typedef int (*sf_runner_poll_fn)(void *user);

typedef struct sf_runner_config {
  int rank;                 /* MPI rank, for the records */
  const char *backend;      /* "cpu" (NULL too) or "cuda" */
  int device;               /* cuda: the CUDA ordinal this rank uses */
  int num_threads;          /* cpu: OpenMP threads (0 = the runtime's default) */
  int no_graphs;            /* decode steps without CUDA graphs (comparisons) */
  const char *fail_key;     /* testing aid: an item with this key fails with
                               "injected failure (SCANFLASH_FAIL_ITEM)"; NULL = none.
                               "KEY@G": only rank G of the item's group fails, in the
                               middle of the measurement (after the model and the
                               session exist), so the group must carry the failure
                               to every member (a one-rank item is its own group's
                               rank 0) */
  sf_runner_poll_fn poll;   /* may be NULL */
  void *poll_user;
} sf_runner_config;

/* The item's sequences, built by the caller (packing lives on the driver
 * side): prompts packed one after another, sequence b after the sum of the
 * previous lens. */
typedef struct sf_runner_batch {
  int32_t batch;            /* = item->batch */
  const int32_t *ids;
  const int32_t *lens;      /* [batch] prompt tokens, >= 1 each */
  const int32_t *gen;       /* [batch] tokens to generate, >= 1 each (generate items);
                               ignored for prefill items */
} sf_runner_batch;

/* The model of an item: its shape, and a Hugging Face folder or NULL for
 * seeded random weights (item->seed). */
typedef struct sf_runner_model {
  const sf_model_config *cfg;
  const char *checkpoint;
} sf_runner_model;

/* Records of one item. The arrays are the runner's, reused from item to item
 * (valid until the next sf_runner_run or sf_runner_free). */
typedef struct sf_runner_output {
  sf_item_result result;
  const sf_repeat_result *repeats;
  int64_t n_repeats;
  const sf_step_result *steps;
  int64_t n_steps;
  const sf_kernel_result *kernels;  /* kernels items: the /kernels row */
  int64_t n_kernels;
} sf_runner_output;

/* What this rank runs on, for the /devices row. */
typedef struct sf_runner_device {
  const char *backend;      /* "cpu" or "cuda" */
  int device;               /* CUDA ordinal; -1 for cpu */
  char name[96];            /* the GPU's name, or the CPU model from /proc/cpuinfo, or "cpu" */
  char uuid[64];            /* cuda: "GPU-..."; cpu: "" */
  int64_t memory_bytes;     /* device memory (cuda) or physical memory (cpu) */
  int32_t num_threads;      /* cpu threads the ops use */
  char energy_note[128];    /* "" when NVML measures energy, else why not */
  sf_device_info gpu;       /* cuda: the GPU's properties (zeroed on cpu) */
  int32_t max_sm_clock_mhz, max_mem_clock_mhz; /* cuda with NVML; else 0 */
} sf_runner_device;

sf_status sf_runner_create(const sf_runner_config *cfg, sf_runner **out, sf_error *err);
void sf_runner_free(sf_runner *r);
void sf_runner_describe(const sf_runner *r, sf_runner_device *out);

/* Runs item: generate and prefill items on the engine; kernels items
 * through the kernel benchmark harness (cuda backend; skipped on cpu), one
 * /kernels row with the check against the cpu reference (ref_max_rel_err);
 * items needing gpus > 1 are skipped here (they run through
 * sf_runner_run_group). in may be NULL for kernels items. */
sf_status sf_runner_run(sf_runner *r, const sf_work_item *item, const sf_runner_model *model,
                        const sf_runner_batch *in, sf_runner_output *out, sf_error *err);

/* A context-parallel item (gpus = k > 1) on this rank as one of the k
 * ranks of the group t (t->size = item->gpus; docs/context-parallel.md).
 * Every member calls it with the same item and the same batch; each builds
 * the same model (same seed) and a context-parallel session
 * (sf_session_create_parallel), and they measure together: the prompt in
 * one prefill pass shared out over the group (prefill_chunk does not
 * apply), decode steps replicated and run eagerly (no CUDA graphs). Check
 * points are agreed: a failure of any member since the last check point
 * becomes every member's status (through t->agree), and a stop (signal,
 * abort, deadline) seen by any member stops all of them there (t->max_int;
 * interrupted wins over timeout). So every member ends with the same status
 * and no member is left waiting in a transfer; the group's leader (t->rank
 * 0) reports its out (its own timings, which cover the group's: every
 * prefill and step ends in an agreement; peak and cache bytes per rank;
 * est_bytes per rank, the cache and activations divided by k), the others'
 * out is theirs to drop. An item with gpus <= 1 here is a caller error. */
sf_status sf_runner_run_group(sf_runner *r, sf_transport *t, const sf_work_item *item,
                              const sf_runner_model *model, const sf_runner_batch *in,
                              sf_runner_output *out, sf_error *err);

/* The runner's backend context (a group's NCCL transport is made on it). */
sf_op_ctx *sf_runner_op_ctx(sf_runner *r);

/* Frees the cached model (the next item builds its own). */
void sf_runner_drop_model(sf_runner *r);

/* A result row for item with nothing measured yet: the key, rank, host,
 * device, est_bytes = item->est_bytes, every metric NaN, t_start = t_end =
 * now; status ok. For rows the driver writes without running the item
 * (oom_predicted, skipped). */
void sf_runner_result_init(sf_item_result *res, const sf_work_item *item, int rank, int device,
                           const char *host);
void sf_runner_result_set(sf_item_result *res, sf_item_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Seconds since the Unix epoch (CLOCK_REALTIME): t_start / t_end. */
double sf_runner_unix_now(void);

/* Statistics (NaN for n == 0). x is not modified. */
double sf_stat_median(const double *x, int64_t n);
/* q in [0, 1]: linear interpolation between the order statistics
 * (numpy's default "linear" method). */
double sf_stat_quantile(const double *x, int64_t n, double q);
/* Sample standard deviation / mean; 0 for n == 1. */
double sf_stat_cv(const double *x, int64_t n);

#endif
