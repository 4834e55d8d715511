/* Mamba-2 SSD as the plain sequential recurrence, the baseline of the
 * report: one thread per (sequence, head, channel) updates its d_state
 * states in place in the state buffer (global memory), token after token,
 * any d_state. Workspace: none. */
#include "cuda_common.cuh"

sf_status sf_cuda_ssd_check(const sf_ssd_params *p, const char *name, sf_error *err);

template <typename T>
__global__ void ssd_naive_kernel(int head_dim, int heads_per_group, int d_state, const int64_t *start,
                                 const int32_t *len, const T *x, int64_t xts, const T *dtp, int64_t dtts,
                                 const float *dt_bias, int softplus, float dt_min, float dt_max, const float *A,
                                 const T *Bm, int64_t Bts, const T *Cm, int64_t Cts, const float *D, const T *z,
                                 int64_t zts, float *state, int64_t sbs, int has_init, T *out, int64_t ots) {
  const int b = blockIdx.z, h = blockIdx.y;
  const int pch = blockIdx.x * blockDim.x + threadIdx.x;
  if (pch >= head_dim) return;
  const int g = h / heads_per_group;
  const int64_t L = len[b], s0 = start[b], ch = (int64_t)h * head_dim + pch;
  float *hs = state + (int64_t)b * sbs + ch * d_state;
  if (!has_init)
    for (int n = 0; n < d_state; n++) hs[n] = 0.0f;
  for (int64_t i = 0; i < L; i++) {
    const int64_t tok = s0 + i;
    float dt = sf_to_f<T>(dtp[tok * dtts + h]) + (dt_bias ? dt_bias[h] : 0.0f);
    if (softplus) dt = sf_softplus(dt);
    dt = fminf(fmaxf(dt, dt_min), dt_max);
    const float dA = expf(dt * A[h]);
    const float xv = sf_to_f<T>(x[tok * xts + ch]);
    const T *Bt = Bm + tok * Bts + (int64_t)g * d_state, *Ct = Cm + tok * Cts + (int64_t)g * d_state;
    float y = 0.0f;
    for (int n = 0; n < d_state; n++) {
      hs[n] = dA * hs[n] + dt * sf_to_f<T>(Bt[n]) * xv;
      y += sf_to_f<T>(Ct[n]) * hs[n];
    }
    y += (D ? D[h] : 0.0f) * xv;
    if (z) y *= sf_silu(sf_to_f<T>(z[tok * zts + ch]));
    out[tok * ots + ch] = sf_from_f<T>(y);
  }
}

template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_ssd_params *p, sf_error *err) {
  const int threads = p->head_dim >= 128 ? 128 : (p->head_dim >= 64 ? 64 : 32);
  dim3 grid((unsigned)((p->head_dim + threads - 1) / threads), (unsigned)p->n_heads, (unsigned)p->seqs.batch);
  ssd_naive_kernel<T><<<grid, threads, 0, sf_cuda_stream(ctx)>>>(
      p->head_dim, p->n_heads / p->n_groups, p->d_state, p->seqs.start, p->seqs.len, (const T *)p->x,
      p->x_token_stride, (const T *)p->dt, p->dt_token_stride, p->dt_bias, p->dt_softplus, p->dt_min, p->dt_max, p->A,
      (const T *)p->B, p->B_token_stride, (const T *)p->C, p->C_token_stride, p->D, (const T *)p->z,
      p->z_token_stride, p->state, p->state_batch_stride, p->has_initial_state, (T *)p->out, p->out_token_stride);
  SF_CUDA_LAUNCHED("ssd_naive_kernel");
  return SF_OK;
}

extern "C" SF_CUDA_OP(ssd_naive, sf_ssd_params) {
  SF_TRY(sf_cuda_ssd_check(p, "ssd_naive", err));
  if (p->seqs.batch == 0) return SF_OK;
  SF_DISPATCH(p->dtype, "ssd_naive", launch<T>(ctx, p, err));
}
