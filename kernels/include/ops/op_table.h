/* The op table: what a backend (cpu, cuda) provides and what the models
 * call. The same model code drives both, so the cpu backend is the
 * end-to-end reference for the cuda one. Every entry returns SF_OK or an
 * error in err; none prints or exits. Memory entries move bytes between host
 * and backend memory (plain memcpy on cpu); upload returns when src may be
 * reused, download when dst holds the data. */
#ifndef SCANFLASH_OPS_OP_TABLE_H
#define SCANFLASH_OPS_OP_TABLE_H

#include "ops/attention.h"
#include "ops/basic.h"
#include "ops/mamba.h"
#include "ops/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SF_OP(name, params) sf_status (*name)(sf_op_ctx *ctx, const params *p, sf_error *err)

struct sf_ops {
  const char *name;               /* "cpu", "cuda" */
  sf_dtype act_dtype;             /* activations and weights it computes in */

  /* memory */
  sf_status (*alloc)(sf_op_ctx *ctx, size_t bytes, void **ptr, sf_error *err);
  void (*free)(sf_op_ctx *ctx, void *ptr);
  sf_status (*upload)(sf_op_ctx *ctx, void *dst, const void *src, size_t bytes, sf_error *err);
  sf_status (*download)(sf_op_ctx *ctx, void *dst, const void *src, size_t bytes, sf_error *err);
  sf_status (*zero)(sf_op_ctx *ctx, void *dst, size_t bytes, sf_error *err);
  sf_status (*sync)(sf_op_ctx *ctx, sf_error *err);
  /* Bytes the backend could still allocate, and its total memory (device
   * memory on cuda; available and physical host memory on cpu). */
  sf_status (*mem_info)(sf_op_ctx *ctx, int64_t *free_bytes, int64_t *total_bytes, sf_error *err);

  /* Graphs (NULL where the backend has none, cpu): the ops issued between
   * graph_begin and graph_end are captured, not run, into *graph (an
   * instantiated graph); graph_launch replays it on the stream. Nothing may
   * wait for the stream (download, sync) or grow the workspace while
   * capturing: run the same ops once before capturing them. */
  sf_status (*graph_begin)(sf_op_ctx *ctx, sf_error *err);
  sf_status (*graph_end)(sf_op_ctx *ctx, void **graph, sf_error *err);
  sf_status (*graph_launch)(sf_op_ctx *ctx, void *graph, sf_error *err);
  void (*graph_free)(sf_op_ctx *ctx, void *graph);

  /* ops */
  SF_OP(embedding, sf_embedding_params);
  SF_OP(norm, sf_norm_params);
  SF_OP(gemm, sf_gemm_params);
  SF_OP(rotary, sf_rotary_params);
  SF_OP(activation, sf_activation_params);
  SF_OP(sample, sf_sample_params);
  SF_OP(kv_append, sf_kv_append_params);
  SF_OP(attention, sf_attention_params);         /* tiled, online softmax */
  SF_OP(attention_naive, sf_attention_params);   /* full scores, baseline */
  SF_OP(attention_decode, sf_attention_decode_params);
  SF_OP(attention_merge, sf_attention_merge_params);   /* log-sum-exp merge (context parallel) */
  SF_OP(conv1d, sf_conv1d_params);
  SF_OP(conv1d_update, sf_conv1d_update_params);
  SF_OP(selective_scan, sf_selective_scan_params);       /* chunked */
  SF_OP(selective_scan_naive, sf_selective_scan_params); /* sequential baseline */
  SF_OP(selective_state_update, sf_selective_state_update_params);
  SF_OP(ssd, sf_ssd_params);                     /* chunked (SSD) */
  SF_OP(ssd_naive, sf_ssd_params);               /* sequential recurrence */
  SF_OP(ssd_update, sf_ssd_update_params);
  /* Whole-step fusions (NULL where the backend has none: the engine runs
   * the ops above instead). */
  SF_OP(mamba1_decode, sf_mamba1_decode_params);
};

#undef SF_OP

/* The cpu backend's table and its context setup (kernels/cpu). */
extern const sf_ops sf_ops_cpu;
sf_status sf_cpu_ctx_init(sf_op_ctx *ctx, int num_threads, sf_error *err);

/* A gemm with an epilogue (sf_gemm_params has_act, conv_update) run as
 * ops on ctx: `plain` (the backend's gemm, called without the epilogue),
 * then the activation in place on c, then the conv update. For backends,
 * and shapes, without a fused kernel (kernels/gemm_epilogue.c). */
sf_status sf_gemm_unfused(sf_op_ctx *ctx, const sf_gemm_params *p,
                          sf_status (*plain)(sf_op_ctx *, const sf_gemm_params *, sf_error *), sf_error *err);
/* The checks every backend makes of the epilogue fields (argument errors). */
sf_status sf_gemm_check_epilogue(const sf_gemm_params *p, sf_error *err);
int sf_gemm_has_epilogue(const sf_gemm_params *p);
/* Argument checks shared by the backends (kernels/op_checks.c). norm:
 * group is the statistics' group size (d unless gated with group_size).
 * rotary: nothing is set when the call has no work (then x and positions
 * may be NULL); the cpu also refuses negative positions, the cuda backend
 * negative strides. selective_state_update: the sizes, dt_rank with a fused
 * dt_proj, the operands (when batch > 0) and states that do not overlap. */
sf_status sf_norm_check(const sf_norm_params *p, int64_t *group, sf_error *err);
const char *sf_norm_name(const sf_norm_params *p);
sf_status sf_rotary_check(const sf_rotary_params *p, int *nothing, sf_error *err);
sf_status sf_selective_state_update_check(const sf_selective_state_update_params *p, sf_error *err);
/* The heads of x2 a rotary call rotates (0 without x2). */
static inline int32_t sf_rotary_heads2(const sf_rotary_params *p) { return p->x2 ? p->n_heads2 : 0; }
void sf_cpu_ctx_destroy(sf_op_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
