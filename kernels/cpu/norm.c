/* RMSNorm, LayerNorm and gated RMSNorm (Mamba-2, norm_before_gate = false),
 * fp32 reference. Row statistics are accumulated in double; every element of a
 * row (or group) is read before any of it is written, so out may alias x.
 * RMS and LayerNorm may write a second output with other weights from the
 * same statistics (weight2: out2 first, so out may still alias x). */
#include <math.h>

#include "cpu_common.h"


/* A row's statistics: its mean (LayerNorm; 0 for RMSNorm) and 1 / sqrt(the
 * mean square about it + eps). */
static void row_stats(const float *x, int center, float eps, int64_t d, float *mean, float *r) {
  double m = 0.0, ss = 0.0;
  if (center) {
    for (int64_t i = 0; i < d; i++) m += x[i];
    m /= (double)d;
  }
  for (int64_t i = 0; i < d; i++) {
    double c = (double)x[i] - m;
    ss += c * c;
  }
  *r = (float)(1.0 / sqrt(ss / (double)d + (double)eps));
  *mean = (float)m;
}

/* out = (x - mean) * r * w + b (b may be NULL). */
static void apply_row(const float *x, float mean, float r, const float *w, const float *b, int64_t d,
                      float *out) {
  for (int64_t i = 0; i < d; i++) out[i] = (x[i] - mean) * r * w[i] + (b ? b[i] : 0.0f);
}

/* One group of the gated norm: g = x * silu(z), out = g / rms(g) * w. */
static void gated_group(const float *x, const float *z, const float *w, float eps, int64_t g,
                        float *out) {
  double ss = 0.0;
  for (int64_t i = 0; i < g; i++) {
    double v = (double)(x[i] * sf_silu_f(z[i]));
    ss += v * v;
  }
  float r = (float)(1.0 / sqrt(ss / (double)g + (double)eps));
  for (int64_t i = 0; i < g; i++) out[i] = (x[i] * sf_silu_f(z[i])) * r * w[i];
}

SF_CPU_OP(norm, sf_norm_params) {
  (void)ctx;
  SF_CPU_REQUIRE_F32("norm", p->dtype);
  int64_t group;
  SF_TRY(sf_norm_check(p, &group, err));
  if (p->n_rows == 0) return SF_OK;

  const float *x = (const float *)p->x, *z = (const float *)p->z;
  const float *w = (const float *)p->weight, *w2 = (const float *)p->weight2;
  /* RMSNorm takes no bias. */
  const float *b = p->kind == SF_NORM_LAYER ? (const float *)p->bias : NULL;
  const float *b2 = p->kind == SF_NORM_LAYER ? (const float *)p->bias2 : NULL;
  float *out = (float *)p->out, *out2 = (float *)p->out2;
  const int64_t n = p->n_rows, d = p->d;
  const sf_norm_kind kind = p->kind;
  const float eps = p->eps;
#pragma omp parallel for schedule(static) if (n * d > 16384)
  for (int64_t r = 0; r < n; r++) {
    const float *xr = x + r * p->x_row_stride;
    float *orow = out + r * p->out_row_stride;
    if (kind != SF_NORM_GATED_RMS) {
      float mean, rs;
      row_stats(xr, kind == SF_NORM_LAYER, eps, d, &mean, &rs);
      if (w2) apply_row(xr, mean, rs, w2, b2, d, out2 + r * p->out2_row_stride);
      apply_row(xr, mean, rs, w, b, d, orow);
    } else {
      const float *zr = z + r * p->z_row_stride;
      for (int64_t g0 = 0; g0 < d; g0 += group)
        gated_group(xr + g0, zr + g0, w + g0, eps, group, orow + g0);
    }
  }
  return SF_OK;
}
