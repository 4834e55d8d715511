/* GPT-NeoX rotary embedding (rotate_half) on the first rot_dim channels of
 * each head, in place, fp32 reference. With h = rot_dim / 2:
 *   inv_freq[i] = base^(-2i / rot_dim),  angle = position * inv_freq[i],
 *   x[i]   <- x[i]   cos - x[i+h] sin
 *   x[i+h] <- x[i+h] cos + x[i]   sin      (i < h)
 * The angle and its cos/sin are computed in double: at positions near 1M an
 * fp32 angle would already be off by ~0.06 rad. The heads of x2 (k, when x
 * is q) take the same cos/sin as x's. */
#include <math.h>
#include <stdlib.h>

#include "cpu_ops.h"

/* Rotates the first 2h channels of n_heads heads of one token. */
static void rotate_heads(float *x, int32_t n_heads, int64_t head_stride, int32_t h,
                         const float *cosv, const float *sinv) {
  for (int32_t hd = 0; hd < n_heads; hd++) {
    float *xh = x + (int64_t)hd * head_stride;
    for (int32_t i = 0; i < h; i++) {
      const float x1 = xh[i], x2 = xh[i + h];
      xh[i] = x1 * cosv[i] - x2 * sinv[i];
      xh[i + h] = x2 * cosv[i] + x1 * sinv[i];
    }
  }
}

SF_CPU_OP(rotary, sf_rotary_params) {
  (void)ctx;
  SF_CPU_REQUIRE_F32("rotary", p->dtype);
  int nothing;
  SF_TRY(sf_rotary_check(p, &nothing, err));
  if (nothing) return SF_OK;
  const int32_t heads2 = sf_rotary_heads2(p);
  for (int64_t t = 0; t < p->n_tokens; t++)
    if (p->positions[t] < 0)
      return sf_fail(err, SF_ERR_ARG, "rotary: token %lld has negative position %d",
                     (long long)t, (int)p->positions[t]);

  const int32_t h = p->rot_dim / 2;
  double *inv_freq = malloc((size_t)h * sizeof *inv_freq);
  if (!inv_freq) return sf_fail(err, SF_ERR_NOMEM, "rotary: cannot allocate %d frequencies", (int)h);
  for (int32_t i = 0; i < h; i++)
    inv_freq[i] = pow((double)p->base, -2.0 * (double)i / (double)p->rot_dim);

  float *x = (float *)p->x, *x2 = (float *)p->x2;
  int nomem = 0;
#pragma omp parallel if (p->n_tokens * (p->n_heads + heads2) * p->rot_dim > 16384)
  {
    float *cs = malloc((size_t)h * 2 * sizeof *cs);
    if (!cs) {
#pragma omp atomic write
      nomem = 1;
    }
#pragma omp for schedule(static)
    for (int64_t t = 0; t < p->n_tokens; t++) {
      if (!cs) continue;
      float *cosv = cs, *sinv = cs + h;
      const double pos = (double)p->positions[t];
      for (int32_t i = 0; i < h; i++) {
        double ang = pos * inv_freq[i];
        cosv[i] = (float)cos(ang);
        sinv[i] = (float)sin(ang);
      }
      rotate_heads(x + t * p->x_token_stride, p->n_heads, p->x_head_stride, h, cosv, sinv);
      if (heads2)
        rotate_heads(x2 + t * p->x_token_stride, heads2, p->x2_head_stride, h, cosv, sinv);
    }
    free(cs);
  }
  free(inv_freq);
  if (nomem) return sf_fail(err, SF_ERR_NOMEM, "rotary: cannot allocate a cos/sin table");
  return SF_OK;
}
