/* Double-precision references for the Mamba ops (see ref.h), written as plain
 * loops from the recurrences in kernels/include/ops/mamba.h, one sequence at
 * a time; plus the small helpers the Mamba op tests share. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref.h"

static double m_silu(double v) { return v / (1.0 + exp(-v)); }
static double m_softplus(double v) { return v > 20.0 ? v : log1p(exp(v)); }

void ref_mamba_conv1d(int64_t len, int64_t dim, int width, int silu, const float *x, const float *w,
                      const float *bias, const float *hist, double *out, double *new_hist) {
  const int64_t k = width - 1;
  for (int64_t c = 0; c < dim; c++) {
    /* the input at position q (q < 0: history) */
    for (int64_t t = 0; t < len; t++) {
      double s = bias ? (double)bias[c] : 0.0;
      for (int64_t j = 0; j < width; j++) {
        int64_t q = t - k + j;
        double in;
        if (q >= 0) in = x[q * dim + c];
        else in = hist ? (double)hist[c * k + (k + q)] : 0.0;
        s += (double)w[c * width + j] * in;
      }
      out[t * dim + c] = silu ? m_silu(s) : s;
    }
    /* history after the chunk: positions len-k .. len-1 */
    for (int64_t j = 0; j < k; j++) {
      int64_t q = len - k + j;
      if (q >= 0) new_hist[c * k + j] = x[q * dim + c];
      else new_hist[c * k + j] = hist ? (double)hist[c * k + (k + q)] : 0.0;
    }
  }
}

void ref_mamba_selective_scan(int64_t len, int64_t dim, int64_t d_state, const float *u,
                              const float *delta, const float *delta_bias, int softplus,
                              const float *A, const float *B, const float *C, const float *D,
                              const float *z, const float *h0, double *out, double *h) {
  for (int64_t i = 0; i < dim * d_state; i++) h[i] = h0 ? (double)h0[i] : 0.0;
  for (int64_t t = 0; t < len; t++) {
    for (int64_t c = 0; c < dim; c++) {
      double dt = (double)delta[t * dim + c] + (delta_bias ? (double)delta_bias[c] : 0.0);
      if (softplus) dt = m_softplus(dt);
      double ut = u[t * dim + c], y = 0.0;
      for (int64_t n = 0; n < d_state; n++) {
        double *hn = &h[c * d_state + n];
        *hn = exp(dt * (double)A[c * d_state + n]) * *hn + dt * (double)B[t * d_state + n] * ut;
        y += (double)C[t * d_state + n] * *hn;
      }
      if (D) y += (double)D[c] * ut;
      if (z) y *= m_silu((double)z[t * dim + c]);
      out[t * dim + c] = y;
    }
  }
}

void ref_mamba_ssd(int64_t len, int64_t n_heads, int64_t head_dim, int64_t n_groups, int64_t d_state,
                   const float *x, const float *dt, const float *dt_bias, int softplus, double dt_min,
                   double dt_max, const float *A, const float *B, const float *C, const float *D,
                   const float *z, const float *S0, double *out, double *S) {
  const int64_t width = n_heads * head_dim, gw = n_groups * d_state;
  for (int64_t i = 0; i < n_heads * head_dim * d_state; i++) S[i] = S0 ? (double)S0[i] : 0.0;
  for (int64_t t = 0; t < len; t++) {
    for (int64_t h = 0; h < n_heads; h++) {
      int64_t g = h / (n_heads / n_groups);
      double d = (double)dt[t * n_heads + h] + (dt_bias ? (double)dt_bias[h] : 0.0);
      if (softplus) d = m_softplus(d);
      if (d < dt_min) d = dt_min;
      if (d > dt_max) d = dt_max;
      double decay = exp(d * (double)A[h]);
      for (int64_t p = 0; p < head_dim; p++) {
        double xv = x[t * width + h * head_dim + p], y = 0.0;
        for (int64_t n = 0; n < d_state; n++) {
          double *s = &S[(h * head_dim + p) * d_state + n];
          *s = decay * *s + d * (double)B[t * gw + g * d_state + n] * xv;
          y += (double)C[t * gw + g * d_state + n] * *s;
        }
        if (D) y += (double)D[h] * xv;
        if (z) y *= m_silu((double)z[t * width + h * head_dim + p]);
        out[t * width + h * head_dim + p] = y;
      }
    }
  }
}

void ref_mamba_selective_state_update(int64_t dim, int64_t d_state, const float *x, const float *dt,
                                      const float *dt_bias, int softplus, const float *A,
                                      const float *B, const float *C, const float *D, const float *z,
                                      const float *h0, double *out, double *h) {
  ref_mamba_selective_scan(1, dim, d_state, x, dt, dt_bias, softplus, A, B, C, D, z, h0, out, h);
}

void ref_mamba_ssd_update(int64_t n_heads, int64_t head_dim, int64_t n_groups, int64_t d_state,
                          const float *x, const float *dt, const float *dt_bias, int softplus,
                          double dt_min, double dt_max, const float *A, const float *B, const float *C,
                          const float *D, const float *z, const float *S0, double *out, double *S) {
  ref_mamba_ssd(1, n_heads, head_dim, n_groups, d_state, x, dt, dt_bias, softplus, dt_min, dt_max, A, B,
                C, D, z, S0, out, S);
}

/* ---- test helpers ---- */

uint64_t mref_next(mref_rng *r) {
  uint64_t v = (r->s += 0x9E3779B97F4A7C15ull);
  v = (v ^ (v >> 30)) * 0xBF58476D1CE4E5B9ull;
  v = (v ^ (v >> 27)) * 0x94D049BB133111EBull;
  return v ^ (v >> 31);
}

double mref_uniform(mref_rng *r, double lo, double hi) {
  return lo + (hi - lo) * ((double)(mref_next(r) >> 11) * 0x1.0p-53);
}

double mref_randn(mref_rng *r) {
  double u1 = mref_uniform(r, 0.0, 1.0), u2 = mref_uniform(r, 0.0, 1.0);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void mref_fill_randn(mref_rng *r, float *a, int64_t n, double scale) {
  for (int64_t i = 0; i < n; i++) a[i] = (float)(scale * mref_randn(r));
}

void mref_fill_uniform(mref_rng *r, float *a, int64_t n, double lo, double hi) {
  for (int64_t i = 0; i < n; i++) a[i] = (float)mref_uniform(r, lo, hi);
}

void mref_fill_nan(float *a, int64_t n) {
  for (int64_t i = 0; i < n; i++) a[i] = NAN;
}

double mref_rel_err(const float *got, const double *ref, int64_t n) {
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < n; i++) {
    if (isnan(got[i])) return NAN;
    double d = (double)got[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

double mref_rel_err_f(const float *got, const float *ref, int64_t n) {
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < n; i++) {
    if (isnan(got[i]) || isnan(ref[i])) return NAN;
    double d = (double)got[i] - (double)ref[i];
    num += d * d;
    den += (double)ref[i] * (double)ref[i];
  }
  return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

int64_t mref_count_nan(const float *a, int64_t n) {
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++) k += isnan(a[i]) ? 1 : 0;
  return k;
}

void mref_batch_init(mref_batch *bt, int32_t batch, const int32_t *len, int padded, int64_t pad_tokens) {
  memset(bt, 0, sizeof *bt);
  bt->batch = batch;
  size_t nb = (size_t)(batch > 0 ? batch : 1);
  bt->start = calloc(nb, sizeof *bt->start);
  bt->dense_off = calloc(nb, sizeof *bt->dense_off);
  bt->len = calloc(nb, sizeof *bt->len);
  int64_t longest = 0, off = 0;
  for (int32_t b = 0; b < batch; b++) {
    bt->len[b] = len[b];
    bt->dense_off[b] = off;
    off += len[b];
    if (len[b] > longest) longest = len[b];
  }
  bt->total = off;
  if (padded) {
    bt->max_len = longest + pad_tokens;
    for (int32_t b = 0; b < batch; b++) bt->start[b] = (int64_t)b * bt->max_len;
    bt->rows = (int64_t)batch * bt->max_len;
  } else {
    bt->max_len = longest;
    for (int32_t b = 0; b < batch; b++) bt->start[b] = bt->dense_off[b];
    bt->rows = off;
  }
}

void mref_batch_free(mref_batch *bt) {
  free(bt->start);
  free(bt->dense_off);
  free(bt->len);
  memset(bt, 0, sizeof *bt);
}

void mref_scatter(const mref_batch *bt, const float *dense, int64_t w, float *buf, int64_t stride,
                  int64_t col) {
  for (int32_t b = 0; b < bt->batch; b++)
    for (int64_t t = 0; t < bt->len[b]; t++)
      memcpy(buf + (bt->start[b] + t) * stride + col, dense + (bt->dense_off[b] + t) * w,
             (size_t)w * sizeof(float));
}

void mref_gather(const mref_batch *bt, const float *buf, int64_t stride, int64_t col, int64_t w,
                 float *dense) {
  for (int32_t b = 0; b < bt->batch; b++)
    for (int64_t t = 0; t < bt->len[b]; t++)
      memcpy(dense + (bt->dense_off[b] + t) * w, buf + (bt->start[b] + t) * stride + col,
             (size_t)w * sizeof(float));
}

int64_t mref_count_touched(const mref_batch *bt, const float *buf, int64_t stride, int64_t col,
                           int64_t w) {
  int64_t rows = bt->rows, bad = 0;
  unsigned char *valid = calloc((size_t)(rows > 0 ? rows : 1), 1);
  for (int32_t b = 0; b < bt->batch; b++)
    for (int64_t t = 0; t < bt->len[b]; t++) valid[bt->start[b] + t] = 1;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t i = 0; i < stride; i++) {
      int inside = valid[r] && i >= col && i < col + w;
      if (!inside && !isnan(buf[r * stride + i])) bad++;
    }
  free(valid);
  return bad;
}

void mref_slice(const mref_batch *bt, const float *dense, int64_t w, const int32_t *from,
                const int32_t *count, float *out) {
  int64_t o = 0;
  for (int32_t b = 0; b < bt->batch; b++) {
    memcpy(out + o * w, dense + (bt->dense_off[b] + from[b]) * w, (size_t)count[b] * (size_t)w * sizeof(float));
    o += count[b];
  }
}
