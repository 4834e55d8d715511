/* Elementwise activations, fp32 reference: exact (erf) GELU, SiLU, and
 * softplus with PyTorch's threshold (x for x > 20). out may alias x. */
#include <math.h>

#include "cpu_common.h"

static inline float gelu_f(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f)); }

SF_CPU_OP(activation, sf_activation_params) {
  (void)ctx;
  SF_CPU_REQUIRE_F32("activation", p->dtype);
  if (p->kind != SF_ACT_GELU && p->kind != SF_ACT_SILU && p->kind != SF_ACT_SOFTPLUS)
    return sf_fail(err, SF_ERR_ARG, "activation: unknown kind %d", (int)p->kind);
  if (p->n_rows < 0 || p->d < 0)
    return sf_fail(err, SF_ERR_ARG, "activation: negative size (n_rows %lld, d %lld)",
                   (long long)p->n_rows, (long long)p->d);
  if (p->x_row_stride < p->d || p->out_row_stride < p->d)
    return sf_fail(err, SF_ERR_ARG, "activation: row strides (x %lld, out %lld) must be >= d = %lld",
                   (long long)p->x_row_stride, (long long)p->out_row_stride, (long long)p->d);
  if (p->n_rows == 0 || p->d == 0) return SF_OK;
  if (!p->x || !p->out) return sf_fail(err, SF_ERR_ARG, "activation: x and out must be non-NULL");

  const float *x = (const float *)p->x;
  float *out = (float *)p->out;
  const int64_t n = p->n_rows, d = p->d;
  const sf_act_kind kind = p->kind;
#pragma omp parallel for schedule(static) if (n * d > 16384)
  for (int64_t r = 0; r < n; r++) {
    const float *xr = x + r * p->x_row_stride;
    float *orow = out + r * p->out_row_stride;
    switch (kind) {
      case SF_ACT_GELU:
        for (int64_t i = 0; i < d; i++) orow[i] = gelu_f(xr[i]);
        break;
      case SF_ACT_SILU:
        for (int64_t i = 0; i < d; i++) orow[i] = sf_silu_f(xr[i]);
        break;
      case SF_ACT_SOFTPLUS:
        for (int64_t i = 0; i < d; i++) orow[i] = sf_softplus_f(xr[i]);
        break;
    }
  }
  return SF_OK;
}
