/* Double-precision references the op tests compare against. Each is written
 * straight from the math, as plainly as possible, on dense inputs (the tests
 * gather strided views into dense arrays first), independently of the
 * kernels/cpu code it checks. Inputs are the exact fp32 values the op sees;
 * everything is computed and returned in double. */
#ifndef SCANFLASH_TESTS_REF_H
#define SCANFLASH_TESTS_REF_H

#include <stdint.h>

/* ===== basic and attention ops (ref_basic.c, ref_attention.c) ===== */

/* out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i], i < d. */
void ref_rms_norm(const float *x, const float *w, int64_t d, double eps, double *out);
/* out[i] = (x[i] - mean) / sqrt(var + eps) * w[i] + b[i] (biased var; b may be NULL). */
void ref_layer_norm(const float *x, const float *w, const float *b, int64_t d, double eps,
                    double *out);
/* g = x * silu(z); per group of group_size channels: out = g / sqrt(mean(g^2) + eps) * w. */
void ref_gated_rms_norm(const float *x, const float *z, const float *w, int64_t d,
                        int64_t group_size, double eps, double *out);
/* c[i][j] = sum_l a[i][l] w[j][l] + bias[j]; a [m][k], w [n][k], c [m][n] dense; bias may be NULL. */
void ref_gemm(const float *a, const float *w, const float *bias, int64_t m, int64_t n, int64_t k,
              double *c);
/* GPT-NeoX rotary of one head x[head_dim] at a position (channels >= rot_dim copied). */
void ref_rotary(const float *x, int64_t head_dim, int64_t rot_dim, double base, int64_t position,
                double *out);
double ref_gelu(double x);     /* x/2 (1 + erf(x / sqrt 2)) */
double ref_silu(double x);     /* x / (1 + exp(-x)) */
double ref_softplus(double x); /* log(1 + exp(x)), x above 20 */
/* p[i] = exp(l[i] / T) / sum_j exp(l[j] / T), i < n. */
void ref_softmax_t(const double *l, int64_t n, double temperature, double *p);

/* One query q[head_dim] against n_keys dense keys/values k, v [n_keys][head_dim]:
 * s_j = scale q.k_j, out = sum_j softmax(s)_j v_j, *lse = log sum_j exp(s_j). */
void ref_attention_query(const float *q, const float *k, const float *v, int64_t n_keys,
                         int64_t head_dim, double scale, double *out, double *lse);

/* ===== end of basic and attention ops ===== */

/* ===== Mamba ops (ref_mamba.c) ===== */
/* One sequence at a time on dense token-major inputs ([len][width] rows);
 * every initial state may be NULL (zeros); final states are returned in
 * double. The update ops are the one-token case of the same math. */

/* Causal depthwise conv: x [len][dim], w [dim][width], bias [dim] or NULL,
 * hist [dim][width-1] inputs before the first token (oldest first) or NULL.
 * out[t][c] = act(bias[c] + sum_j w[c][j] in[t-(width-1)+j][c]) with act =
 * silu when silu, identity otherwise; new_hist [dim][width-1] = the last
 * width-1 inputs of hist ++ x. */
void ref_mamba_conv1d(int64_t len, int64_t dim, int width, int silu, const float *x, const float *w,
                      const float *bias, const float *hist, double *out, double *new_hist);

/* Mamba-1 selective scan: u, delta, z [len][dim]; B, C [len][d_state];
 * A [dim][d_state]; delta_bias, D [dim] or NULL; z may be NULL; h0 and
 * h [dim][d_state]; out [len][dim]. */
void ref_mamba_selective_scan(int64_t len, int64_t dim, int64_t d_state, const float *u,
                              const float *delta, const float *delta_bias, int softplus,
                              const float *A, const float *B, const float *C, const float *D,
                              const float *z, const float *h0, double *out, double *h);

/* Mamba-2 SSD recurrence: x, z [len][n_heads*head_dim]; dt [len][n_heads];
 * B, C [len][n_groups*d_state]; A, dt_bias, D [n_heads] (dt_bias, D, z may
 * be NULL); dt = clamp(softplus?(dt + dt_bias), dt_min, dt_max); S0 and
 * S [n_heads][head_dim][d_state]; out [len][n_heads*head_dim]. */
void ref_mamba_ssd(int64_t len, int64_t n_heads, int64_t head_dim, int64_t n_groups, int64_t d_state,
                   const float *x, const float *dt, const float *dt_bias, int softplus, double dt_min,
                   double dt_max, const float *A, const float *B, const float *C, const float *D,
                   const float *z, const float *S0, double *out, double *S);

/* One decode token (len 1) of the two recurrences above, from the state the
 * op sees (fp32). */
void ref_mamba_selective_state_update(int64_t dim, int64_t d_state, const float *x, const float *dt,
                                      const float *dt_bias, int softplus, const float *A,
                                      const float *B, const float *C, const float *D, const float *z,
                                      const float *h0, double *out, double *h);
void ref_mamba_ssd_update(int64_t n_heads, int64_t head_dim, int64_t n_groups, int64_t d_state,
                          const float *x, const float *dt, const float *dt_bias, int softplus,
                          double dt_min, double dt_max, const float *A, const float *B, const float *C,
                          const float *D, const float *z, const float *S0, double *out, double *S);

/* Helpers of the Mamba op tests (tests/unit/test_ops_mamba*.c). */
typedef struct mref_rng { uint64_t s; } mref_rng;
uint64_t mref_next(mref_rng *r);                       /* splitmix64 */
double mref_uniform(mref_rng *r, double lo, double hi); /* [lo, hi) */
double mref_randn(mref_rng *r);                         /* N(0, 1) */
void mref_fill_randn(mref_rng *r, float *a, int64_t n, double scale);
void mref_fill_uniform(mref_rng *r, float *a, int64_t n, double lo, double hi);
void mref_fill_nan(float *a, int64_t n);
/* ||got - ref|| / ||ref|| (or ||got - ref|| when ref is 0); NaN if got has one. */
double mref_rel_err(const float *got, const double *ref, int64_t n);
double mref_rel_err_f(const float *got, const float *ref, int64_t n);
int64_t mref_count_nan(const float *a, int64_t n);

/* A batch of sequences laid out padded (start[b] = b * max_len, max_len =
 * longest + pad_tokens) or varlen (packed), and the packed dense form
 * (dense_off[b] = sum of the earlier lens) the references work on. */
typedef struct mref_batch {
  int32_t batch;
  int64_t max_len, rows, total; /* rows the layout spans; total tokens */
  int64_t *start, *dense_off;
  int32_t *len;
} mref_batch;
void mref_batch_init(mref_batch *bt, int32_t batch, const int32_t *len, int padded, int64_t pad_tokens);
void mref_batch_free(mref_batch *bt);
/* Copies dense [total][w] to/from columns [col, col+w) of the rows of buf. */
void mref_scatter(const mref_batch *bt, const float *dense, int64_t w, float *buf, int64_t stride,
                  int64_t col);
void mref_gather(const mref_batch *bt, const float *buf, int64_t stride, int64_t col, int64_t w,
                 float *dense);
/* Entries of buf [rows][stride] outside the sequences' columns [col, col+w)
 * that are not NaN (i.e. were written although they must be untouched). */
int64_t mref_count_touched(const mref_batch *bt, const float *buf, int64_t stride, int64_t col,
                           int64_t w);
/* Packs tokens [from[b], from[b] + count[b]) of each sequence of the dense
 * [bt->total][w] array into out (count[b] tokens each, in order). */
void mref_slice(const mref_batch *bt, const float *dense, int64_t w, const int32_t *from,
                const int32_t *count, float *out);

/* ===== end of Mamba ops ===== */

#endif
