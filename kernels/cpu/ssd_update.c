/* Mamba-2 decode step, fp32 reference (the semantics of
 * selective_state_update_ref with heads, plus the dt clamp of the prefill):
 * one token per batch row b, per head h (group g = h / (n_heads/n_groups)),
 * channel p and state n
 *   dt        = clamp(softplus?(dt[b,h] + dt_bias[h]), dt_min, dt_max)
 *   S[h,p,n]  = exp(dt * A[h]) * S[h,p,n] + dt * B[b,g,n] * x[b,h,p]
 *   y[b,h,p]  = sum_n C[b,g,n] S[h,p,n] + D[h] x[b,h,p];  y *= silu(z) if z
 * x, z and out hold head h at h * head_dim; B and C group g at g * d_state;
 * dt is [batch, n_heads]. The arithmetic is that of sf_cpu_ssd_naive for one
 * token. Parallel over (batch row, head); out may alias x. */
#include <math.h>

#include "cpu_common.h"



SF_CPU_OP(ssd_update, sf_ssd_update_params) {
  SF_CPU_REQUIRE_F32("ssd_update", p->dtype);
  if (p->batch < 0) return sf_fail(err, SF_ERR_ARG, "ssd_update: batch must be >= 0, got %d", p->batch);
  if (p->n_heads < 1 || p->head_dim < 1 || p->n_groups < 1 || p->d_state < 1)
    return sf_fail(err, SF_ERR_ARG, "ssd_update: n_heads %d, head_dim %d, n_groups %d, d_state %d must all be >= 1",
                   p->n_heads, p->head_dim, p->n_groups, p->d_state);
  if (p->n_heads % p->n_groups)
    return sf_fail(err, SF_ERR_ARG, "ssd_update: n_heads %d is not a multiple of n_groups %d", p->n_heads,
                   p->n_groups);
  if (!(p->dt_min <= p->dt_max))
    return sf_fail(err, SF_ERR_ARG, "ssd_update: dt_min %g > dt_max %g", (double)p->dt_min, (double)p->dt_max);
  if (p->batch > 0 && (!p->x || !p->dt || !p->A || !p->B || !p->C || !p->state || !p->out))
    return sf_fail(err, SF_ERR_ARG, "ssd_update: x, dt, A, B, C, state and out are required");
  const int64_t per_seq = (int64_t)p->n_heads * p->head_dim * p->d_state;
  if (p->batch > 1 && p->state_batch_stride < per_seq)
    return sf_fail(err, SF_ERR_ARG,
                   "ssd_update: state_batch_stride %lld < n_heads * head_dim * d_state = %lld (states overlap)",
                   (long long)p->state_batch_stride, (long long)per_seq);

  const int32_t batch = p->batch, heads = p->n_heads;
  const int64_t P = p->head_dim, N = p->d_state;
  const int32_t heads_per_group = p->n_heads / p->n_groups;
  const float *X = p->x, *DT = p->dt, *Bm = p->B, *Cm = p->C, *Z = p->z;
  float *out = p->out;
  const int nt = sf_cpu_threads(ctx, (double)batch * heads * (double)P * (double)N);

#pragma omp parallel for collapse(2) schedule(static) num_threads(nt)
  for (int32_t b = 0; b < batch; b++) {
    for (int32_t h = 0; h < heads; h++) {
      const int64_t g = h / heads_per_group;
      float dt = DT[(int64_t)b * p->dt_batch_stride + h] + (p->dt_bias ? p->dt_bias[h] : 0.0f);
      if (p->dt_softplus) dt = sf_softplus_f(dt);
      dt = fminf(fmaxf(dt, p->dt_min), p->dt_max);
      const float da = expf(dt * p->A[h]), D = p->D ? p->D[h] : 0.0f;
      const float *B = Bm + (int64_t)b * p->B_batch_stride + g * N;
      const float *C = Cm + (int64_t)b * p->C_batch_stride + g * N;
      const float *x = X + (int64_t)b * p->x_batch_stride + (int64_t)h * P;
      const float *z = Z ? Z + (int64_t)b * p->z_batch_stride + (int64_t)h * P : NULL;
      float *o = out + (int64_t)b * p->out_batch_stride + (int64_t)h * P;
      float *S = p->state + (int64_t)b * p->state_batch_stride + (int64_t)h * P * N;
      for (int64_t i = 0; i < P; i++) {
        const float xi = x[i], dtx = dt * xi;
        float *Si = S + i * N;
        float y = 0.0f;
        for (int64_t n = 0; n < N; n++) {
          Si[n] = da * Si[n] + dtx * B[n];
          y += C[n] * Si[n];
        }
        y += D * xi;
        if (z) y *= sf_silu_f(z[i]);
        o[i] = y;
      }
    }
  }
  return SF_OK;
}
