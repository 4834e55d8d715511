/* Mamba-1 selective state update: the scan's recurrence for one token per
 * sequence (decode). One thread per (sequence, channel), the state updated
 * in place (fp32), any d_state. Workspace: none. */
#include "cuda_common.cuh"

template <typename T>
__global__ void selective_state_update_kernel(int32_t batch, int64_t dim, int d_state, const T *x,
                                              int64_t xbs, const T *__restrict__ dtp, int64_t dtbs,
                                              const float *__restrict__ dt_bias, int softplus,
                                              const float *__restrict__ A, const T *__restrict__ Bm, int64_t Bbs,
                                              const T *__restrict__ Cm, int64_t Cbs, const float *__restrict__ D,
                                              const T *__restrict__ z, int64_t zbs, float *state, int64_t sbs,
                                              T *out, int64_t obs) {
  const int b = blockIdx.y;
  const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= dim || b >= batch) return;
  float dt = sf_to_f<T>(dtp[(int64_t)b * dtbs + c]) + (dt_bias ? dt_bias[c] : 0.0f);
  if (softplus) dt = sf_softplus(dt);
  const float xv = sf_to_f<T>(x[(int64_t)b * xbs + c]);
  float *hs = state + (int64_t)b * sbs + c * d_state;
  const T *Bt = Bm + (int64_t)b * Bbs, *Ct = Cm + (int64_t)b * Cbs;
  float y = 0.0f;
  for (int n = 0; n < d_state; n++) {
    const float hn = expf(dt * A[c * d_state + n]) * hs[n] + dt * sf_ld<T>(Bt + n) * xv;
    hs[n] = hn;
    y += sf_ld<T>(Ct + n) * hn;
  }
  y += (D ? D[c] : 0.0f) * xv;
  if (z) y *= sf_silu(sf_to_f<T>(z[(int64_t)b * zbs + c]));
  out[(int64_t)b * obs + c] = sf_from_f<T>(y);
}

template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_selective_state_update_params *p, sf_error *err) {
  dim3 grid((unsigned)((p->dim + 127) / 128), (unsigned)p->batch);
  selective_state_update_kernel<T><<<grid, 128, 0, sf_cuda_stream(ctx)>>>(
      p->batch, p->dim, p->d_state, (const T *)p->x, p->x_batch_stride, (const T *)p->dt, p->dt_batch_stride,
      p->dt_bias, p->dt_softplus, p->A, (const T *)p->B, p->B_batch_stride, (const T *)p->C, p->C_batch_stride,
      p->D, (const T *)p->z, p->z_batch_stride, p->state, p->state_batch_stride, (T *)p->out, p->out_batch_stride);
  SF_CUDA_LAUNCHED("selective_state_update_kernel");
  return SF_OK;
}

extern "C" SF_CUDA_OP(selective_state_update, sf_selective_state_update_params) {
  if (p->dim <= 0 || p->d_state <= 0 || p->batch < 0)
    return sf_fail(err, SF_ERR_ARG, "selective_state_update: need dim > 0, d_state > 0, batch >= 0 (got %lld, %d, %d)",
                   (long long)p->dim, (int)p->d_state, (int)p->batch);
  if (p->batch > 65535)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "selective_state_update: batch %d > 65535", (int)p->batch);
  if (p->batch == 0) return SF_OK;
  if (!p->x || !p->dt || !p->A || !p->B || !p->C || !p->state || !p->out)
    return sf_fail(err, SF_ERR_ARG, "selective_state_update: x, dt, A, B, C, state and out must be non-NULL");
  SF_DISPATCH(p->dtype, "selective_state_update", launch<T>(ctx, p, err));
}
