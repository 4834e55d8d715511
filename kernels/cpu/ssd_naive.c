/* Mamba-2 SSD as the plain sequential recurrence, fp32 reference (the
 * baseline the chunked form is checked against). Per sequence b, head h
 * (group g = h / (n_heads/n_groups)), channel p, state n, token by token:
 *   dt        = clamp(softplus?(dt[t,h] + dt_bias[h]), dt_min, dt_max)
 *   S[h,p,n]  = exp(dt * A[h]) * S[h,p,n] + dt * B[t,g,n] * x[t,h,p]
 *   y[t,h,p]  = sum_n C[t,g,n] S[h,p,n] + D[h] x[t,h,p];  y *= silu(z) if z
 * Parallel over (sequence, head); S lives in the state buffer throughout.
 * A token's inputs are read before its output is written, so out may alias
 * x (same token stride). */
#include <math.h>

#include "cpu_common.h"



SF_CPU_OP(ssd_naive, sf_ssd_params) {
  SF_CPU_REQUIRE_F32("ssd_naive", p->dtype);
  SF_TRY(sf_cpu_check_ssd("ssd_naive", p, err));
  const int32_t batch = p->seqs.batch, heads = p->n_heads;
  const int64_t P = p->head_dim, N = p->d_state;
  const int32_t heads_per_group = p->n_heads / p->n_groups;
  const float *X = p->x, *DT = p->dt, *Bm = p->B, *Cm = p->C, *Z = p->z;
  float *out = p->out;
  const int nt = sf_cpu_threads(ctx, (double)batch * heads * (double)p->seqs.max_len * (double)P * (double)N);

#pragma omp parallel for collapse(2) schedule(dynamic, 1) num_threads(nt)
  for (int32_t b = 0; b < batch; b++) {
    for (int32_t h = 0; h < heads; h++) {
      const int64_t g = h / heads_per_group;
      const float A = p->A[h], D = p->D ? p->D[h] : 0.0f, bias = p->dt_bias ? p->dt_bias[h] : 0.0f;
      float *S = p->state + (int64_t)b * p->state_batch_stride + (int64_t)h * P * N;
      if (!p->has_initial_state)
        for (int64_t i = 0; i < P * N; i++) S[i] = 0.0f;
      const int64_t t0 = p->seqs.start[b], len = p->seqs.len[b];
      for (int64_t t = 0; t < len; t++) {
        const int64_t row = t0 + t;
        float dt = DT[row * p->dt_token_stride + h] + bias;
        if (p->dt_softplus) dt = sf_softplus_f(dt);
        dt = fminf(fmaxf(dt, p->dt_min), p->dt_max);
        const float da = expf(dt * A);
        const float *B = Bm + row * p->B_token_stride + g * N;
        const float *C = Cm + row * p->C_token_stride + g * N;
        const float *x = X + row * p->x_token_stride + (int64_t)h * P;
        const float *z = Z ? Z + row * p->z_token_stride + (int64_t)h * P : NULL;
        float *o = out + row * p->out_token_stride + (int64_t)h * P;
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
  }
  return SF_OK;
}
