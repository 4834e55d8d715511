/* Mamba-1 and Mamba-2 sequence mixing: causal depthwise conv1d, the
 * selective scan and its one-token update, the SSD chunked scan and its
 * one-token update. SSM state is always fp32. For every prefill op the state
 * buffer holds the initial state on entry when has_initial_state (else zero
 * is used) and the final state on return: chunked prefill is several calls
 * that carry it.
 * Defaults: chunk_size 0 means 2048 tokens for the selective scan and 256 for
 * SSD; conv width 1..8 (conv_state may be NULL when width is 1).
 * Aliasing: out may equal the input x/u for conv1d, the scans, ssd_naive and
 * the update ops, never for the chunked ssd (it rereads x across chunks).
 * The dt clamp (dt_min, dt_max) applies in ssd_update as in ssd. */
#ifndef SCANFLASH_OPS_MAMBA_H
#define SCANFLASH_OPS_MAMBA_H

#include "ops/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Causal depthwise conv over the token dimension:
 * out[t, c] = act(bias[c] + sum_j w[c, j] * x[t - (width-1) + j, c]), where
 * inputs before the sequence's first token come from conv_state (the last
 * width-1 inputs of the previous chunk, oldest first) or are zero.
 * conv_state[b] ([dim, width-1], dtype) is updated to the last width-1
 * inputs (including history when the chunk is shorter than width-1). */
typedef struct sf_conv1d_params {
  sf_dtype dtype;
  int64_t dim;
  int32_t width;
  int silu;
  sf_seqs seqs;
  const void *x; int64_t x_token_stride;      /* channel stride 1 */
  const void *weight;                         /* [dim, width] */
  const void *bias;                           /* [dim]; may be NULL */
  void *conv_state; int64_t state_batch_stride; /* [batch, dim, width-1] */
  int has_initial_state;
  void *out; int64_t out_token_stride;
} sf_conv1d_params;

/* One token per sequence: shifts it into conv_state and returns the output. */
typedef struct sf_conv1d_update_params {
  sf_dtype dtype;
  int32_t batch;
  int64_t dim;
  int32_t width;
  int silu;
  const void *x; int64_t x_batch_stride;
  const void *weight, *bias;
  void *conv_state; int64_t state_batch_stride;
  void *out; int64_t out_batch_stride;
} sf_conv1d_update_params;

/* Mamba-1 selective scan, per channel c and state n:
 *   dt = delta[t,c] + delta_bias[c], softplus if delta_softplus
 *   h[c,n] = exp(dt * A[c,n]) * h[c,n] + dt * B[t,n] * u[t,c]
 *   y[t,c] = sum_n C[t,n] h[c,n] + D[c] u[t,c];  y *= silu(z[t,c]) if z
 * chunk_size: the scan is computed chunk by chunk carrying h (0 = default). */
typedef struct sf_selective_scan_params {
  sf_dtype dtype;                 /* u, delta, B, C, z, out */
  int64_t dim;
  int32_t d_state;
  int32_t chunk_size;
  sf_seqs seqs;
  const void *u; int64_t u_token_stride;
  const void *delta; int64_t delta_token_stride;
  const float *delta_bias;        /* [dim]; may be NULL */
  int delta_softplus;
  const float *A;                 /* [dim, d_state] (A = -exp(A_log)) */
  const void *B; int64_t B_token_stride;   /* [tokens, d_state] */
  const void *C; int64_t C_token_stride;
  const float *D;                 /* [dim]; may be NULL */
  const void *z; int64_t z_token_stride;   /* may be NULL */
  float *state; int64_t state_batch_stride; /* [batch, dim, d_state] */
  int has_initial_state;
  void *out; int64_t out_token_stride;
} sf_selective_scan_params;

/* The same recurrence for one token per sequence (decode).
 * Optionally Mamba-1's dt_proj too (a decode step's kernel fewer per layer):
 * with dt_proj_w set, dt points at dt_low (the first dt_rank columns of
 * x_proj's output, row stride dt_batch_stride) and
 *   dt[b,c] = round(sum_k dt_proj_w[c,k] dt_low[b,k])   (fp32 sum)
 * before dt_bias and softplus as above, round() to dtype: what the unfused
 * dt_proj GEMM writes in the activation type, up to summation order. out
 * must not overlap dt_low then (every channel reads all of it). */
typedef struct sf_selective_state_update_params {
  sf_dtype dtype;
  int32_t batch;
  int64_t dim;
  int32_t d_state;
  const void *x; int64_t x_batch_stride;
  const void *dt; int64_t dt_batch_stride;
  const float *dt_bias;
  int dt_softplus;
  const float *A;
  const void *B; int64_t B_batch_stride;
  const void *C; int64_t C_batch_stride;
  const float *D;
  const void *z; int64_t z_batch_stride;
  float *state; int64_t state_batch_stride;
  void *out; int64_t out_batch_stride;
  const void *dt_proj_w; int32_t dt_rank; /* [dim, dt_rank], dtype; NULL: dt is delta */
} sf_selective_state_update_params;

/* Every layer of a Mamba-1 decode step for one sequence (batch 1), as the
 * engine runs them op by op (mamba1.c: RMSNorm, in_proj with the conv
 * update, x_proj, the state update with dt_proj, out_proj adding into the
 * residual), in one call. x: the residual row (f32, d_model), read and
 * written; each layer's conv and SSM states updated in place. The cuda
 * backend runs it as one persistent kernel (mamba1_decode.cu, sm_90); a backend
 * without it leaves the entry NULL, and SF_ERR_UNSUPPORTED says a shape it
 * does not take (the caller then runs the ops). */
enum { SF_MAMBA1_DECODE_MAX_LAYERS = 64 };
typedef struct sf_mamba1_layer_ptrs {
  const void *norm_w;                  /* [d_model], dtype */
  const void *in_proj_w;               /* [2 d_inner, d_model] */
  const void *conv_w, *conv_b;         /* [d_inner, d_conv], [d_inner] (conv_b may be NULL) */
  const void *x_proj_w;                /* [dt_rank + 2 d_state, d_inner] */
  const void *dt_proj_w;               /* [d_inner, dt_rank] */
  const void *out_proj_w;              /* [d_model, d_inner] */
  const float *dt_bias, *A, *D;        /* [d_inner], [d_inner, d_state], [d_inner] (dt_bias, D may be NULL) */
  void *conv_state;                    /* [d_inner, d_conv - 1], dtype */
  float *ssm_state;                    /* [d_inner, d_state] */
} sf_mamba1_layer_ptrs;

typedef struct sf_mamba1_decode_params {
  sf_dtype dtype;
  int32_t n_layers;
  int64_t d_model, d_inner;
  int32_t d_state, dt_rank, d_conv;
  float eps;                           /* of the RMSNorms */
  float *x;                            /* [d_model] f32 */
  const sf_mamba1_layer_ptrs *layers;  /* n_layers entries (host memory) */
  uint64_t *trace;                     /* NULL, or (benchmarks) a device buffer of [blocks][n_layers]
                                          [SF_MAMBA1_DECODE_TRACE] times in ns (mamba1_decode.cu) */
  /* Tuning of the weight stream (benchmarks; 0 for the defaults, tuned on
   * an H100): the ring slots whose copies may be in flight at once (more
   * than the ring: all of it), how many chunks ahead of the ring the
   * producer asks L2 for while it waits for a free slot, and the bytes of a
   * slot (one bulk copy; at least the longest row). */
  int32_t inflight, l2_ahead, slot_bytes;
  /* Benchmarks only (bf16): nonzero streams the weights through the ring
   * and computes nothing (x and the states are left as they were): the
   * stream's own ceiling. */
  int32_t stream_only;
} sf_mamba1_decode_params;
enum { SF_MAMBA1_DECODE_TRACE = 18 };

/* Mamba-2 SSD, per head h (group g = h / (n_heads / n_groups)), channel p,
 * state n:
 *   dt = clamp(softplus?(dt[t,h] + dt_bias[h]), dt_min, dt_max)
 *   S[h,p,n] = exp(dt * A[h]) * S[h,p,n] + dt * B[t,g,n] * x[t,h,p]
 *   y[t,h,p] = sum_n C[t,g,n] S[h,p,n] + D[h] x[t,h,p];  y *= silu(z) if z
 * computed by the chunked (state-space dual) algorithm with chunk_size. */
typedef struct sf_ssd_params {
  sf_dtype dtype;                 /* x, dt, B, C, z, out */
  int32_t n_heads, head_dim, n_groups, d_state, chunk_size;
  sf_seqs seqs;
  const void *x; int64_t x_token_stride;   /* head h at x + h * head_dim */
  const void *dt; int64_t dt_token_stride; /* [tokens, n_heads] */
  const float *dt_bias;           /* [n_heads]; may be NULL */
  int dt_softplus;
  float dt_min, dt_max;           /* clamp; 0 and INFINITY for none */
  const float *A;                 /* [n_heads] */
  const void *B; int64_t B_token_stride;   /* group g at B + g * d_state */
  const void *C; int64_t C_token_stride;
  const float *D;                 /* [n_heads]; may be NULL */
  const void *z; int64_t z_token_stride;   /* [tokens, n_heads * head_dim]; may be NULL */
  float *state; int64_t state_batch_stride; /* [batch, n_heads, head_dim, d_state] */
  int has_initial_state;
  void *out; int64_t out_token_stride;
} sf_ssd_params;

/* The SSD recurrence for one token per sequence (decode). */
typedef struct sf_ssd_update_params {
  sf_dtype dtype;
  int32_t batch, n_heads, head_dim, n_groups, d_state;
  const void *x; int64_t x_batch_stride;
  const void *dt; int64_t dt_batch_stride;
  const float *dt_bias;
  int dt_softplus;
  float dt_min, dt_max;
  const float *A;
  const void *B; int64_t B_batch_stride;
  const void *C; int64_t C_batch_stride;
  const float *D;
  const void *z; int64_t z_batch_stride;
  float *state; int64_t state_batch_stride;
  void *out; int64_t out_batch_stride;
} sf_ssd_update_params;

#ifdef __cplusplus
}
#endif
#endif
