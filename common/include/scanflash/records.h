/* What the driver hands out (work items) and what comes back (result
 * records): shared by driver, worker and analysis. Fixed-size plain structs
 * so they travel over MPI as bytes (same binary on every rank) and map onto
 * HDF5 compound types one-to-one. Strings are NUL-terminated in fixed
 * buffers; times in seconds unless the name says otherwise. */
#ifndef SCANFLASH_RECORDS_H
#define SCANFLASH_RECORDS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { SF_KEY_LEN = 17, SF_NAME_LEN = 48, SF_MSG_LEN = 256, SF_HOST_LEN = 64 };

typedef enum sf_item_kind { SF_ITEM_GENERATE = 0, SF_ITEM_PREFILL = 1, SF_ITEM_KERNELS = 2 } sf_item_kind;

typedef enum sf_item_status {
  SF_STATUS_OK = 0,
  SF_STATUS_OOM = 1,            /* a real allocation failed */
  SF_STATUS_OOM_PREDICTED = 2,  /* the estimate exceeded free memory: not run */
  SF_STATUS_ERROR = 3,
  SF_STATUS_TIMEOUT = 4,
  SF_STATUS_SKIPPED = 5,
  SF_STATUS_INTERRUPTED = 6     /* abandoned on SIGTERM/SIGUSR1; retried on --resume */
} sf_item_status;

const char *sf_item_kind_name(sf_item_kind k);
const char *sf_item_status_name(sf_item_status s);

enum { SF_GEN_CANONICAL = -1 }; /* generation length = the canonical solution's tokens */

/* One unit of scheduled work. Its key is a hash of the canonical config
 * (everything below except estimates and timeouts), stable across runs,
 * machines and rank counts: --resume and merge match on it. */
/* Every rank expands the same spec (its text is broadcast), so an item
 * refers to the spec's model list and problem selection by position.
 * Conventions: kernels items have gen 0, first_problem -1 and op set;
 * prefill items have gen 0. */
typedef struct sf_work_item {
  char key[SF_KEY_LEN];         /* 16 hex digits */
  int32_t index;                /* position in the sweep's item list */
  int32_t kind;                 /* sf_item_kind */
  char arch[16];                /* "mamba1", "mamba2", "transformer" */
  char model[SF_NAME_LEN];      /* preset name or checkpoint label */
  int32_t model_index;          /* entry in the spec's model list (shape, checkpoint) */
  char op[24];                  /* kernels items: the op benchmarked */
  char dtype[8];                /* "bf16", "f16", "f32" */
  int64_t context;              /* tokens per sequence; 0 = natural prompt */
  int64_t prefill_chunk;        /* tokens per prefill chunk; 0 = as memory allows */
  int32_t batch;
  int32_t gen;                  /* new tokens, or SF_GEN_CANONICAL */
  int32_t first_problem;        /* position in the spec's problem selection; sequences use
                                   positions first, first+1, ... (mod selection size) */
  int32_t oom_predicted;        /* est_bytes exceeds the device memory budget */
  int32_t repeats, warmup;
  int32_t gpus;                 /* ranks this item needs (context parallel when > 1) */
  uint64_t seed;
  double timeout_s;             /* 0 = none */
  double est_cost;              /* relative cost, for largest-first scheduling */
  int64_t est_bytes;            /* predicted device memory */
} sf_work_item;

/* Per-item summary: the /items table. */
typedef struct sf_item_result {
  char key[SF_KEY_LEN];
  int32_t status;               /* sf_item_status */
  char message[SF_MSG_LEN];
  int32_t rank, device;
  char host[SF_HOST_LEN];
  double t_start, t_end;        /* unix time */
  int64_t prompt_tokens, generated_tokens; /* summed over the batch, one repeat */
  double ttft_s;                /* median over repeats */
  double prefill_tok_s, decode_tok_s, e2e_tok_s;
  double tpot_p50_s, tpot_p90_s, tpot_p99_s;
  double prefill_cv;            /* coefficient of variation over repeats */
  int64_t peak_bytes, weights_bytes, kv_cache_bytes, state_bytes, est_bytes;
  double energy_j, j_per_token; /* NaN when NVML is unavailable */
  int32_t sm_clock_mhz, mem_clock_mhz;
  double ref_max_rel_err;       /* spot check vs the reference; NaN when not checked */
} sf_item_result;

/* One timed repeat: the /repeats table. */
typedef struct sf_repeat_result {
  char key[SF_KEY_LEN];
  int32_t repeat;
  double prefill_s, decode_s, total_s;
  int64_t prompt_tokens, generated_tokens;
  double energy_j;
} sf_repeat_result;

/* One decode step of one repeat: the /decode_steps table. */
typedef struct sf_step_result {
  char key[SF_KEY_LEN];
  int32_t repeat, step;
  int64_t position;             /* tokens in the cache before this step */
  double latency_s;
} sf_step_result;

/* One kernel benchmark row: the /kernels table. */
typedef struct sf_kernel_result {
  char key[SF_KEY_LEN];
  char op[24], impl[24], dtype[8];
  int32_t batch, heads, head_dim, d_state;
  int64_t seqlen, dim;
  double median_s, p10_s, p90_s;
  double tflops, gbps, pct_flops_roof, pct_bw_roof;
  int64_t n_wrong;
  double max_rel_err;
} sf_kernel_result;

#ifdef __cplusplus
}
#endif
#endif
