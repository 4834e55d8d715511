/* Mamba-1 selective scan, the baseline of the report: the plain sequential
 * recurrence, one thread per (sequence, channel), the states updated in
 * place in the state buffer (global memory) token after token, any d_state.
 * Workspace: none. */
#include "cuda_common.cuh"

sf_status sf_cuda_selective_scan_check(const sf_selective_scan_params *p, const char *name, sf_error *err);

template <typename T>
__global__ void selective_scan_naive_kernel(int64_t dim, int d_state, const int64_t *start, const int32_t *len,
                                            const T *u, int64_t uts, const T *delta, int64_t dts,
                                            const float *delta_bias, int softplus, const float *A, const T *Bm,
                                            int64_t Bts, const T *Cm, int64_t Cts, const float *D, const T *z,
                                            int64_t zts, float *state, int64_t sbs, int has_init, T *out,
                                            int64_t ots) {
  const int b = blockIdx.y;
  const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= dim) return;
  const int64_t L = len[b], s0 = start[b];
  float *hs = state + (int64_t)b * sbs + c * d_state;
  const float *a = A + c * d_state;
  if (!has_init)
    for (int n = 0; n < d_state; n++) hs[n] = 0.0f;
  for (int64_t i = 0; i < L; i++) {
    const int64_t tok = s0 + i;
    float dt = sf_to_f<T>(delta[tok * dts + c]) + (delta_bias ? delta_bias[c] : 0.0f);
    if (softplus) dt = sf_softplus(dt);
    const float uv = sf_to_f<T>(u[tok * uts + c]);
    float y = 0.0f;
    for (int n = 0; n < d_state; n++) {
      hs[n] = expf(dt * a[n]) * hs[n] + dt * sf_to_f<T>(Bm[tok * Bts + n]) * uv;
      y += sf_to_f<T>(Cm[tok * Cts + n]) * hs[n];
    }
    y += (D ? D[c] : 0.0f) * uv;
    if (z) y *= sf_silu(sf_to_f<T>(z[tok * zts + c]));
    out[tok * ots + c] = sf_from_f<T>(y);
  }
}

template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_selective_scan_params *p, sf_error *err) {
  dim3 grid((unsigned)((p->dim + 127) / 128), (unsigned)p->seqs.batch);
  selective_scan_naive_kernel<T><<<grid, 128, 0, sf_cuda_stream(ctx)>>>(
      p->dim, p->d_state, p->seqs.start, p->seqs.len, (const T *)p->u, p->u_token_stride, (const T *)p->delta,
      p->delta_token_stride, p->delta_bias, p->delta_softplus, p->A, (const T *)p->B, p->B_token_stride,
      (const T *)p->C, p->C_token_stride, p->D, (const T *)p->z, p->z_token_stride, p->state,
      p->state_batch_stride, p->has_initial_state, (T *)p->out, p->out_token_stride);
  SF_CUDA_LAUNCHED("selective_scan_naive_kernel");
  return SF_OK;
}

extern "C" SF_CUDA_OP(selective_scan_naive, sf_selective_scan_params) {
  SF_TRY(sf_cuda_selective_scan_check(p, "selective_scan_naive", err));
  if (p->seqs.batch == 0) return SF_OK;
  SF_DISPATCH(p->dtype, "selective_scan_naive", launch<T>(ctx, p, err));
}
