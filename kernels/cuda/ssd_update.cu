/* Mamba-2 SSD decode step: the recurrence for one token per sequence. One
 * thread per (sequence, head, channel), its d_state states updated in place
 * (fp32), any d_state. Workspace: none. */
#include "cuda_common.cuh"

template <typename T>
__global__ void ssd_update_kernel(int head_dim, int heads_per_group, int d_state, const T *x,
                                  int64_t xbs, const T *__restrict__ dtp, int64_t dtbs, const float *__restrict__ dt_bias,
                                  int softplus, float dt_min, float dt_max, const float *__restrict__ A,
                                  const T *__restrict__ Bm, int64_t Bbs, const T *__restrict__ Cm, int64_t Cbs,
                                  const float *__restrict__ D, const T *__restrict__ z, int64_t zbs, float *state,
                                  int64_t sbs, T *out, int64_t obs) {
  const int b = blockIdx.z, h = blockIdx.y;
  const int pch = blockIdx.x * blockDim.x + threadIdx.x;
  if (pch >= head_dim) return;
  const int g = h / heads_per_group;
  const int64_t ch = (int64_t)h * head_dim + pch;
  float dt = sf_to_f<T>(dtp[(int64_t)b * dtbs + h]) + (dt_bias ? dt_bias[h] : 0.0f);
  if (softplus) dt = sf_softplus(dt);
  dt = fminf(fmaxf(dt, dt_min), dt_max);
  const float dA = expf(dt * A[h]);
  const float xv = sf_to_f<T>(x[(int64_t)b * xbs + ch]);
  float *hs = state + (int64_t)b * sbs + ch * d_state;
  const T *Bt = Bm + (int64_t)b * Bbs + (int64_t)g * d_state, *Ct = Cm + (int64_t)b * Cbs + (int64_t)g * d_state;
  float y = 0.0f;
  for (int n = 0; n < d_state; n++) {
    const float sn = dA * hs[n] + dt * sf_ld<T>(Bt + n) * xv;
    hs[n] = sn;
    y += sf_ld<T>(Ct + n) * sn;
  }
  y += (D ? D[h] : 0.0f) * xv;
  if (z) y *= sf_silu(sf_to_f<T>(z[(int64_t)b * zbs + ch]));
  out[(int64_t)b * obs + ch] = sf_from_f<T>(y);
}

template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_ssd_update_params *p, sf_error *err) {
  const int threads = p->head_dim >= 128 ? 128 : (p->head_dim >= 64 ? 64 : 32);
  dim3 grid((unsigned)((p->head_dim + threads - 1) / threads), (unsigned)p->n_heads, (unsigned)p->batch);
  ssd_update_kernel<T><<<grid, threads, 0, sf_cuda_stream(ctx)>>>(
      p->head_dim, p->n_heads / p->n_groups, p->d_state, (const T *)p->x, p->x_batch_stride, (const T *)p->dt,
      p->dt_batch_stride, p->dt_bias, p->dt_softplus, p->dt_min, p->dt_max, p->A, (const T *)p->B, p->B_batch_stride,
      (const T *)p->C, p->C_batch_stride, p->D, (const T *)p->z, p->z_batch_stride, p->state, p->state_batch_stride,
      (T *)p->out, p->out_batch_stride);
  SF_CUDA_LAUNCHED("ssd_update_kernel");
  return SF_OK;
}

extern "C" SF_CUDA_OP(ssd_update, sf_ssd_update_params) {
  if (p->n_heads <= 0 || p->head_dim <= 0 || p->d_state <= 0 || p->n_groups <= 0 || p->n_heads % p->n_groups != 0 ||
      p->batch < 0)
    return sf_fail(err, SF_ERR_ARG,
                   "ssd_update: need n_heads, head_dim, d_state > 0, n_groups dividing n_heads, batch >= 0 "
                   "(got %d, %d, %d, %d, %d)",
                   (int)p->n_heads, (int)p->head_dim, (int)p->d_state, (int)p->n_groups, (int)p->batch);
  if (isnan(p->dt_min) || isnan(p->dt_max) || p->dt_min > p->dt_max)
    return sf_fail(err, SF_ERR_ARG, "ssd_update: dt clamp [%g, %g] is empty", (double)p->dt_min, (double)p->dt_max);
  if (p->batch > 65535 || p->n_heads > 65535)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "ssd_update: batch %d or n_heads %d > 65535", (int)p->batch,
                   (int)p->n_heads);
  if (p->batch == 0) return SF_OK;
  if (!p->x || !p->dt || !p->A || !p->B || !p->C || !p->state || !p->out)
    return sf_fail(err, SF_ERR_ARG, "ssd_update: x, dt, A, B, C, state and out must be non-NULL");
  SF_DISPATCH(p->dtype, "ssd_update", launch<T>(ctx, p, err));
}
