/* Mamba-1 decode step, fp32 reference (the semantics of
 * selective_state_update_ref): one token per batch row b, per channel c and
 * state n
 *   raw     = dt[b,c], or with dt_proj_w sum_k dt_proj_w[c,k] dt[b,k] (the
 *             fused dt_proj, dt being dt_low; f32 only here, so the fp32
 *             sum is already in the dtype)
 *   dt      = raw + dt_bias[c]       (softplus, threshold 20, if asked)
 *   h[c,n]  = exp(dt * A[c,n]) * h[c,n] + dt * B[b,n] * x[b,c]
 *   y[b,c]  = sum_n C[b,n] h[c,n] + D[c] x[b,c];   y *= silu(z[b,c]) if z
 * The arithmetic is that of sf_cpu_selective_scan_naive for one token, so a
 * prefill followed by updates matches a longer prefill. Parallel over
 * (batch row, channel); out may alias x. */
#include <math.h>

#include "cpu_common.h"



SF_CPU_OP(selective_state_update, sf_selective_state_update_params) {
  SF_CPU_REQUIRE_F32("selective_state_update", p->dtype);
  SF_TRY(sf_selective_state_update_check(p, err));

  const int32_t batch = p->batch;
  const int64_t dim = p->dim, ds = p->d_state;
  const float *xs = p->x, *dts = p->dt, *Bs = p->B, *Cs = p->C, *zs = p->z, *W = p->dt_proj_w;
  const int64_t R = p->dt_rank;
  float *out = p->out;
  const int nt = sf_cpu_threads(ctx, (double)batch * (double)dim * (double)(ds + (W ? R : 0)));

#pragma omp parallel for collapse(2) schedule(static) num_threads(nt)
  for (int32_t b = 0; b < batch; b++) {
    for (int64_t c = 0; c < dim; c++) {
      const float x = xs[(int64_t)b * p->x_batch_stride + c];
      const float *dtb = dts + (int64_t)b * p->dt_batch_stride;
      float raw = 0.0f;
      if (W)
        for (int64_t k = 0; k < R; k++) raw += W[c * R + k] * dtb[k];
      else
        raw = dtb[c];
      float dt = raw + (p->dt_bias ? p->dt_bias[c] : 0.0f);
      if (p->dt_softplus) dt = sf_softplus_f(dt);
      const float *A = p->A + c * ds;
      const float *B = Bs + (int64_t)b * p->B_batch_stride;
      const float *C = Cs + (int64_t)b * p->C_batch_stride;
      float *h = p->state + (int64_t)b * p->state_batch_stride + c * ds;
      const float dtx = dt * x;
      float y = 0.0f;
      for (int64_t n = 0; n < ds; n++) {
        h[n] = expf(dt * A[n]) * h[n] + dtx * B[n];
        y += C[n] * h[n];
      }
      if (p->D) y += p->D[c] * x;
      if (zs) y *= sf_silu_f(zs[(int64_t)b * p->z_batch_stride + c]);
      out[(int64_t)b * p->out_batch_stride + c] = y;
    }
  }
  return SF_OK;
}
