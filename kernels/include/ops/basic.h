/* Elementwise and row-wise ops: embedding, norms, GEMM, rotary, activations. */
#ifndef SCANFLASH_OPS_BASIC_H
#define SCANFLASH_OPS_BASIC_H

#include "ops/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out[t, :] = table[ids[t], :]. An id outside [0, vocab) is an error. */
typedef struct sf_embedding_params {
  sf_dtype dtype;                 /* table, and out unless out_f32 */
  int out_f32;                    /* out is f32 (a residual stream kept in f32) */
  int64_t n_tokens, d;
  int32_t vocab;
  const int32_t *ids;
  const void *table; int64_t table_row_stride;
  void *out; int64_t out_row_stride;
} sf_embedding_params;

/* RMSNorm: out = x / sqrt(mean(x^2) + eps) * w.
 * LayerNorm: out = (x - mean) / sqrt(var + eps) * w + b (biased variance).
 * Gated RMSNorm (Mamba-2, norm_before_gate = false): g = x * silu(z), then
 * RMSNorm of g over groups of group_size channels (group_size = d / ngroups;
 * 0 means d), times w. Statistics in fp32. x may be f32 while the rest is
 * dtype (x_f32): the residual stream is kept in f32 over bf16 activations. */
typedef enum sf_norm_kind { SF_NORM_RMS, SF_NORM_LAYER, SF_NORM_GATED_RMS } sf_norm_kind;

typedef struct sf_norm_params {
  sf_norm_kind kind;
  sf_dtype dtype;                 /* z, weight, bias, out; x unless x_f32 */
  int x_f32;                      /* x is f32 (not gated; out must not alias x then) */
  int64_t n_rows, d, group_size;
  float eps;
  const void *x; int64_t x_row_stride;
  const void *z; int64_t z_row_stride;   /* gated only */
  const void *weight;             /* [d] */
  const void *bias;               /* [d] LayerNorm; may be NULL */
  void *out; int64_t out_row_stride;     /* may alias x */
  /* Optional second output (RMS and LayerNorm only; off while weight2 is
   * NULL): out2 = the same normalisation of x, from the same row statistics,
   * with weight2 and bias2 (LayerNorm; may be NULL) in place of weight and
   * bias. GPT-NeoX's parallel residual normalises one x twice: one kernel a
   * layer fewer in a decode step. dtype as out; out2 must alias neither x
   * nor out. */
  const void *weight2, *bias2;    /* [d] */
  void *out2; int64_t out2_row_stride;
} sf_norm_params;

/* out = f(x): GELU (exact, erf), SiLU, softplus (log1p(exp(x)), x for x > 20). */
typedef enum sf_act_kind { SF_ACT_GELU, SF_ACT_SILU, SF_ACT_SOFTPLUS } sf_act_kind;

struct sf_conv1d_update_params; /* ops/mamba.h */

/* c[m, n] = a[m, k] . w[n, k]^T + bias[n]  (w is a PyTorch Linear weight),
 * or c += ... when accumulate (the residual add folded into the GEMM).
 * With has_act, c = act(a . w^T + bias) (not with accumulate): a decode step
 * is a chain of small kernels, each costing about two microseconds on an
 * H100 however little it moves, so a backend folds the activation into the
 * product where it can and otherwise runs the activation op after it
 * (sf_gemm_unfused), the same result up to one rounding. */
typedef struct sf_gemm_params {
  sf_dtype dtype;                 /* a and w */
  sf_dtype out_dtype;             /* c (logits may be f32 over bf16 inputs) */
  int64_t m, n, k;
  const void *a; int64_t lda;
  const void *w; int64_t ldw;
  const void *bias;               /* [n], dtype; may be NULL */
  void *c; int64_t ldc;
  int accumulate;
  int has_act;
  sf_act_kind act;
  /* Then, where non-NULL, the conv update of a Mamba decode step
   * (ops/mamba.h) on columns of c: its x must be the view of c it
   * convolves (x = c + col0 elements, x_batch_stride = ldc, batch = m,
   * [col0, col0 + dim) within [0, n), dtype = out_dtype = dtype), and the
   * product may not accumulate or have an activation. c still receives the
   * product. The same result as the two ops in turn (sf_gemm_unfused), one
   * kernel fewer in the step where a backend fuses it. */
  const struct sf_conv1d_update_params *conv_update;
} sf_gemm_params;

/* GPT-NeoX rotary on the first rot_dim channels of each head, in place:
 * with h = rot_dim / 2, inv_freq[i] = base^(-2i / rot_dim), angle =
 * position * inv_freq[i]: x[i] <- x[i] cos - x[i+h] sin and
 * x[i+h] <- x[i+h] cos + x[i] sin for i < h. With x2 set, the n_heads2
 * heads of x2 (head stride x2_head_stride; token stride, positions and
 * rotation as x's) are rotated in the same call: q and k of a layer in one
 * kernel, a kernel a layer fewer in a decode step (GQA: n_heads2 =
 * n_kv_heads). x2's heads must not overlap x's.
 * The angle must be reduced with about double accuracy (in fp32 it is off by
 * ~0.06 rad at position 1M). rot_dim 0 is a no-op; rot_dim must be even. */
typedef struct sf_rotary_params {
  sf_dtype dtype;
  int64_t n_tokens;
  int32_t n_heads, head_dim, rot_dim;
  float base;
  void *x; int64_t x_token_stride, x_head_stride;
  const int32_t *positions;       /* [n_tokens] absolute positions */
  void *x2; int32_t n_heads2; int64_t x2_head_stride;  /* optional: NULL, 0, 0 */
} sf_rotary_params;

/* out = f(x) elementwise (sf_act_kind above). */
typedef struct sf_activation_params {
  sf_act_kind kind;
  sf_dtype dtype;
  int64_t n_rows, d;
  const void *x; int64_t x_row_stride;
  void *out; int64_t out_row_stride;     /* may alias x */
} sf_activation_params;

/* Greedy (top_k <= 1 or temperature <= 0: argmax, lowest id on ties) or
 * top-k sampling at a temperature. Logits are fp32; NaN ranks below every
 * number. Top-k keeps the k largest (ties to the lower id) in descending
 * order, weights exp((l - max) / temperature), and takes the first whose
 * running sum exceeds u * total, with u from a counter-based stream so every
 * backend replays the same tokens:
 *   sf_rng_seed_stream(&s, seed, step); key = sf_rng_next(&s);
 *   sf_rng_seed_stream(&r, key, row);   u = sf_rng_uniform(&r); */
typedef struct sf_sample_params {
  int32_t batch, vocab;
  const float *logits; int64_t logits_row_stride;
  int32_t top_k;
  float temperature;
  uint64_t seed, step;
  int32_t *out_ids;               /* [batch] */
} sf_sample_params;

#ifdef __cplusplus
}
#endif
#endif
