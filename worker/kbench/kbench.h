/* Kernel benchmarks (DESIGN "Kernels", issue 5 item 3): `scanflash kernels`
 * and the kernels items of `scanflash run`. In the spirit of nccl-tests: one
 * harness and a table of op entries. Each entry has
 *   - a name (the op table's, e.g. "selective_scan") and a CLI alias ("scan"),
 *   - its implementations, each an entry of the op table ("chunked" ->
 *     sf_ops.selective_scan, "naive" -> sf_ops.selective_scan_naive),
 *   - shape setup from (seqlen, batch, heads, head_dim, d_state, dtype) with
 *     one layer of a published model as the default (sf_kbench_default_shape),
 *   - its FLOP, minimum-byte and exponential counts (sf_kbench_counts; each
 *     formula is written out in kbench_ops.c),
 *   - a run through the cuda op table on a context, timed with CUDA events,
 *   - a check against the cpu backend on a reduced problem of the same width.
 *
 * Timing (sf_kbench_run): inputs are random (a counter-based hash on the
 * device; never zeros), allocated once per row. Each call is preceded on
 * the stream by a write of a buffer twice the L2 size (the L2 is flushed:
 * every repeat reads its inputs from device memory, and the flush keeps the
 * device busy while the host queues the call, so no launch gap is timed),
 * then bracketed by two CUDA events. Warm-ups first (untimed), then the
 * repeats; median, p10 and p90 over the repeats (linear interpolation
 * between order statistics). A slow shape gets fewer repeats: after the
 * first warm-up, repeats = clamp(row_budget_s / t_call, 3, repeats) and one
 * warm-up only when a call takes more than 0.25 s.
 *
 * Ceilings (sf_kbench_ceilings; measured once per context, then cached):
 *   gemm_tflops  bf16 GEMM 8192 x 8192 x 8192 through the op table (cuBLASLt,
 *                fp32 accumulation), random data, median of 10 after 3 warm-ups;
 *   copy_gbps    cudaMemcpyAsync device to device of 2 GiB, (bytes read +
 *                bytes written) / median time, 10 repeats after 2 warm-ups;
 *   exp_per_s    ex2.approx.f32 (MUFU.EX2, what expf/__expf compile to)
 *                throughput of a kernel with 8 independent chains a thread
 *                over the whole device: the special-function ceiling.
 * Roofline: t_roof = max(flops / F, bytes / copy_gbps, exps / exp_per_s),
 * where F is the GEMM ceiling for ops whose fast form runs on tensor cores
 * (attention, SSD, GEMM) and no term for the rest; the selective scan and its
 * state update are bounded by exponentials (one exp per token, channel and
 * state), the remaining ops by bytes. In a row:
 *   tflops          flops / median (FlashAttention's count for attention);
 *   gbps            minimum bytes / median (each input read once, each output
 *                   written once, states read and written);
 *   pct_flops_roof  tensor-core ops: tflops / gemm_tflops; exp-bound ops:
 *                   (exps / median) / exp_per_s; memory-bound ops: NaN;
 *   pct_bw_roof     gbps / copy_gbps;
 *   % of roofline = t_roof / median = the larger of the two (printed).
 *
 * Check (opts.check): the same op and implementation on a reduced problem
 * of the same width (fewer tokens: sf_kbench_check_shape), fresh random
 * inputs rounded to the dtype, the cpu backend computing in fp32 on those
 * values; every output (and final state) compared element by element:
 *   rel_i = |gpu_i - cpu_i| / (|cpu_i| + rms(cpu))
 *   n_wrong = #{i : rel_i > tol(dtype)} + NaN/inf outputs + unwritten outputs
 *   max_rel_err = max_i rel_i
 * with tol 4e-2 (bf16), 8e-3 (f16), 1e-3 (f32 and fp32 states), as in
 * tests/gpu. Results are cached per reduced shape in the context, so a
 * length sweep checks each op once.
 *
 * Library code: nothing here prints or exits. Without CUDA in the build, the
 * context cannot be created (SF_ERR_UNSUPPORTED, "no CUDA device (built
 * without CUDA)"); the tables, counts and parsers work everywhere. */
#ifndef SCANFLASH_KBENCH_H
#define SCANFLASH_KBENCH_H

#include <stdint.h>

#include "model/model.h"
#include "ops/op_table.h"
#include "scanflash/error.h"
#include "scanflash/records.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the op table ------------------------------------------------------- */

typedef enum sf_kbench_op {
  SF_KB_SCAN = 0,       /* Mamba-1 selective scan (prefill) */
  SF_KB_SSD,            /* Mamba-2 SSD (prefill) */
  SF_KB_CONV,           /* causal depthwise conv1d (prefill) */
  SF_KB_ATTN,           /* attention prefill */
  SF_KB_ATTN_DECODE,    /* attention decode over a KV cache of seqlen tokens */
  SF_KB_STATE_UPDATE,   /* Mamba-1 selective state update (decode) */
  SF_KB_SSD_UPDATE,     /* Mamba-2 SSD state update (decode) */
  SF_KB_CONV_UPDATE,    /* conv1d state update (decode) */
  SF_KB_GEMM,           /* a layer's projection through cuBLASLt */
  SF_KB_OP_COUNT
} sf_kbench_op;

/* What bounds an op on the roofline besides bytes. */
typedef enum sf_kbench_roof {
  SF_KB_ROOF_TC = 0,    /* tensor-core FLOPs (the bf16 GEMM ceiling) */
  SF_KB_ROOF_SFU,       /* exponentials (the special-function ceiling) */
  SF_KB_ROOF_MEM        /* bytes only */
} sf_kbench_roof;

enum { SF_KB_MAX_IMPLS = 2 };

typedef struct sf_kbench_opinfo {
  const char *name;          /* row op, the op table's name: "selective_scan" */
  const char *alias;         /* CLI name: "scan" */
  const char *arch;          /* "mamba1", "mamba2", "transformer", "-" */
  int n_impls;
  const char *impls[SF_KB_MAX_IMPLS];       /* "chunked", "naive" */
  const char *table_names[SF_KB_MAX_IMPLS]; /* op table entries: "selective_scan", "selective_scan_naive" */
  int per_token;             /* 1: swept over --seqlen; 0: one token per sequence (swept over batch) */
  sf_kbench_roof roof;
  const char *model;         /* the default layer: "mamba-1.4b" */
} sf_kbench_opinfo;

const sf_kbench_opinfo *sf_kbench_op_info(sf_kbench_op op);

/* A benchmark shape. Fields that do not apply to the op are 0. */
typedef struct sf_kbench_shape {
  sf_kbench_op op;
  int impl;                  /* index into the op's impls */
  sf_dtype dtype;
  int64_t seqlen;            /* tokens per sequence; attention decode: cache length; 1 for updates */
  int32_t batch;
  int32_t heads, kv_heads;   /* attention heads (kv_heads < heads: GQA); SSD: heads */
  int32_t head_dim;          /* attention head dim; SSD: P (channels per head); gemm: k */
  int64_t dim;               /* scan/state update: d_inner; conv: channels; attention: kv_heads*head_dim;
                                SSD: heads*head_dim; gemm: n */
  int32_t d_state, n_groups, chunk, width;
  int causal;                /* attention prefill */
  sf_arch arch;              /* of the model the shape comes from */
  char model[SF_NAME_LEN];   /* the layer the shape comes from ("mamba-1.4b", "custom") */
} sf_kbench_shape;

/* Shape of op/impl for one layer of cfg (the op must apply to its arch):
 * scan, state_update: d_inner, d_state; ssd, ssd_update: ssm_heads x
 * ssm_head_dim, n_groups, d_state, chunk_size; conv, conv_update: d_inner
 * (Mamba-2: d_inner + 2 n_groups d_state, the conv runs over x, B, C), d_conv;
 * attention: n_heads, n_kv_heads, head_dim, causal; gemm: in_proj
 * (n = 2 d_inner, k = d_model) for Mamba-1, the fused in_proj for Mamba-2
 * (n = 2 d_inner + 2 n_groups d_state + ssm_heads), QKV for Transformers
 * (n = 3 d_model, k = d_model). seqlen is forced to 1 for the update ops. */
sf_status sf_kbench_shape_from_model(sf_kbench_op op, int impl, const sf_model_config *cfg, sf_dtype dtype,
                                     int64_t seqlen, int32_t batch, sf_kbench_shape *out, sf_error *err);

/* The defaults (DESIGN "Kernels"): Mamba-1 ops on mamba-1.4b (d_inner 4096,
 * d_state 16, d_conv 4), Mamba-2 on mamba2-1.3b (64 heads x 64, d_state 128,
 * ngroups 1, chunk 256), attention on pythia-1.4b (16 heads x 128, causal);
 * gemm on mamba-1.4b's in_proj. head_dim 64 asks for the attention variant
 * of the same width (32 heads x 64, model "pythia-1.4b-hd64"); 0 = the
 * model's own. */
sf_status sf_kbench_default_shape(sf_kbench_op op, int impl, sf_dtype dtype, int64_t seqlen, int32_t batch,
                                  int32_t head_dim, sf_kbench_shape *out, sf_error *err);

/* Counts of one call on shape s (formulas in kbench_ops.c). */
typedef struct sf_kbench_counts {
  double flops;              /* FLOPs (attention: 4 b s^2 h d, halved when causal) */
  double bytes;              /* minimum bytes moved through device memory */
  double exps;               /* exponentials per (token, channel, state) for the scans */
} sf_kbench_counts;

sf_kbench_counts sf_kbench_counts_of(const sf_kbench_shape *s);

/* The reduced problem the check runs: same widths, fewer tokens / sequences. */
void sf_kbench_check_shape(const sf_kbench_shape *s, sf_kbench_shape *out);

/* "b 1 L 16384 d_inner 4096 N 16" and the like, for tables and messages. */
void sf_kbench_shape_str(const sf_kbench_shape *s, char *buf, size_t cap);

/* Row op name: the op's name, "attention_noncausal" for non-causal prefill. */
const char *sf_kbench_row_op(const sf_kbench_shape *s);

/* ---- parsing (CLI and items) ------------------------------------------- */

/* One selected op with a mask of its implementations (bit i = impl i). */
typedef struct sf_kbench_sel {
  sf_kbench_op op;
  unsigned impl_mask;
} sf_kbench_sel;

/* CLI names: an op's alias or name means every implementation ("scan",
 * "selective_scan", "ssd", "attn"); "OP:IMPL" picks one ("attn:naive");
 * another op table entry its implementation ("selective_scan_naive").
 * *impl_mask gets the impls selected. */
sf_status sf_kbench_find_op(const char *name, sf_kbench_op *op, unsigned *impl_mask, sf_error *err);
/* Item names: exactly an op table entry ("ssd" = the chunked SSD,
 * "ssd_naive" the naive one). Returns 1 when found. */
int sf_kbench_find_table_op(const char *name, sf_kbench_op *op, unsigned *impl_mask);

/* Comma-separated list of ops ("all" = every op, all impls). Entries for
 * the same op merge their impl masks; order is the list's. */
sf_status sf_kbench_parse_ops(const char *list, sf_kbench_sel *out, int max, int *n, sf_error *err);

/* A comma-separated list of counts and ranges: "512", "2k", "1M",
 * "512:1M:x2" (geometric, both ends included when reached), "1k:4k:+1k"
 * (arithmetic). Values > 0, at most max of them; `what` names the flag. */
sf_status sf_kbench_parse_counts(const char *list, const char *what, int64_t *out, int max, int *n,
                                 sf_error *err);

/* "bf16", "f16", "f32" (also "fp16", "fp32", "float32", "bfloat16"). */
sf_status sf_kbench_parse_dtype(const char *s, sf_dtype *out, sf_error *err);

/* ---- the harness ---------------------------------------------------------- */

typedef struct sf_kbench_opts {
  int repeats;               /* timed repeats [10] */
  int warmup;                /* untimed calls first [3] */
  double row_budget_s;       /* repeats are cut so that they take about this long (min 3) [5] */
  int check;                 /* run the check against the cpu backend [1] */
  int flush_l2;              /* write a 2 x L2 buffer before each call [1] */
  uint64_t seed;             /* inputs [0] */
} sf_kbench_opts;

void sf_kbench_opts_default(sf_kbench_opts *o);

typedef struct sf_kbench_ceilings {
  double gemm_tflops;        /* bf16 8192^3 through the op table (cuBLASLt) */
  double copy_gbps;          /* device-to-device copy, bytes read + written */
  double exp_per_s;          /* MUFU.EX2 throughput */
  double gemm_s, copy_s, exp_s; /* the median times they come from */
  int64_t copy_bytes;        /* bytes copied per call (moved: twice that) */
} sf_kbench_ceilings;

typedef struct sf_kbench_device {
  int index;
  char name[96];
  char uuid[48];
  int cc_major, cc_minor, sm_count;
  int sm_clock_mhz, mem_clock_mhz, mem_bus_width_bits;
  int64_t memory_bytes, l2_bytes;
  int driver_version, runtime_version;
} sf_kbench_device;

typedef struct sf_kbench_check_entry sf_kbench_check_entry;

/* One per process (or rank): the cuda backend's op context, a cpu context
 * for the checks, the device, the cached ceilings and the L2 flush buffer. */
typedef struct sf_kbench_ctx {
  sf_op_ctx gpu, cpu;
  int have_gpu, have_cpu;
  sf_kbench_device dev;
  sf_kbench_ceilings ceil;
  int have_ceilings;
  void *flush;               /* device buffer, 2 x L2 */
  size_t flush_bytes;
  void *ev[2];               /* cudaEvent_t */
  sf_kbench_check_entry *checks;
  int n_checks, cap_checks;
} sf_kbench_ctx;

/* Creates the contexts on CUDA device `device`. No device (or no CUDA in
 * the build): SF_ERR_UNSUPPORTED with "no CUDA device (REASON)". */
sf_status sf_kbench_ctx_init(sf_kbench_ctx *ctx, int device, sf_error *err);
void sf_kbench_ctx_destroy(sf_kbench_ctx *ctx);

/* Measures the ceilings on the first call and returns the cached values. */
sf_status sf_kbench_ceilings_get(sf_kbench_ctx *ctx, const sf_kbench_ceilings **out, sf_error *err);

/* Everything a row carries besides the /kernels record. */
typedef struct sf_kbench_info {
  sf_item_status status;     /* ok, oom (an allocation failed), error */
  char message[SF_MSG_LEN];  /* why, when not ok */
  int repeats, warmup;       /* what ran */
  double t_roof_s;           /* roofline time of the shape */
  double pct_roof;           /* t_roof / median, in % */
  const char *bound;         /* "tc", "sfu", "mem": the largest roofline term */
  int checked;               /* the check ran */
  int64_t check_seqlen;      /* its reduced length (cache length for decode; m for gemm) */
  int32_t check_batch;
  double t_start, t_end;     /* unix time */
} sf_kbench_info;

/* Fills the /kernels row's identity fields (op, impl, dtype, shape) and NaN
 * figures: what a row of a shape that did not run holds. */
void sf_kbench_row_init(const sf_kbench_shape *s, sf_kernel_result *row);

/* Benchmarks one shape into row (key left empty) and info. The shape's
 * failure is its status: an allocation that fails is status oom (everything
 * of the row freed, the sweep can go on), a failing call status error; both
 * return SF_OK with NaN figures. Returns an error only when the context
 * itself is unusable (a sticky device error, a failed ceiling). */
sf_status sf_kbench_run(sf_kbench_ctx *ctx, const sf_kbench_shape *s, const sf_kbench_opts *opts,
                        sf_kernel_result *row, sf_kbench_info *info, sf_error *err);

/* Predicted seconds per call of `next`, from a measured call of `prev` (same
 * op and impl): prev_s scaled by the largest ratio of flops, bytes and exps. */
double sf_kbench_predict_s(const sf_kbench_shape *prev, double prev_s, const sf_kbench_shape *next);

/* ---- kernels items of `scanflash run` ------------------------------------ */

/* Runs one kernels work item: item->op is an op table name of the spec
 * ("selective_scan", "selective_scan_naive", "ssd", "ssd_naive", "conv1d",
 * "attention", "attention_naive", "attention_decode"; also
 * "selective_state_update", "ssd_update", "conv1d_update", "gemm" and the
 * CLI aliases), item->model a preset name (its layer gives the shape),
 * item->dtype, ->context (seqlen; the cache length for attention_decode),
 * ->batch, ->repeats, ->warmup, ->seed; item->timeout_s > 0 bounds the timed
 * repeats to about half of it. Writes one row (rows[0], key = item->key;
 * *n = 1) whenever the item's shape could be built, also on failure (NaN
 * figures). Returns SF_OK (status ok), SF_ERR_NOMEM (status oom: an
 * allocation failed; err says which), SF_ERR_ARG (the item cannot be run:
 * unknown op or model, op not for the model's arch), SF_ERR_UNSUPPORTED (no
 * CUDA), or another code with err's message (status error). The row's
 * max_rel_err / n_wrong hold the check. */
sf_status sf_kbench_run_item(sf_kbench_ctx *ctx, const sf_work_item *item, sf_kernel_result *rows,
                             int max_rows, int *n, sf_error *err);

/* The same with the model's shape given (custom shapes of the spec: pass
 * spec->models[item->model_index].cfg); info (may be NULL) gets the details. */
sf_status sf_kbench_run_item_cfg(sf_kbench_ctx *ctx, const sf_work_item *item, const sf_model_config *cfg,
                                 sf_kernel_result *rows, int max_rows, int *n, sf_kbench_info *info,
                                 sf_error *err);

#ifdef __cplusplus
}
#endif
#endif
