/* Mamba-1 selective scan, sequential over tokens (the correct base; the
 * chunked parallel scan comes later). One thread per (sequence, channel)
 * walks the sequence's tokens with its d_state <= 16 states in registers
 * (fp32); B and C rows are shared by every thread of the block through the
 * cache. dt, the decay exp(dt A) and the output gate in fp32. chunk_size is
 * accepted and has no effect here: carrying h token by token computes the
 * same function. d_state > 16 runs the naive kernel. The final state is
 * written to state. Workspace: none. */
#include "cuda_common.cuh"

enum { SSCAN_THREADS = 128, SSCAN_DS = 16 };

template <typename T>
__global__ void __launch_bounds__(SSCAN_THREADS)
selective_scan_kernel(int64_t dim, int d_state, const int64_t *__restrict__ start, const int32_t *__restrict__ len,
                      const T *u, int64_t uts, const T *__restrict__ delta, int64_t dts,
                      const float *__restrict__ delta_bias, int softplus, const float *__restrict__ A,
                      const T *__restrict__ Bm, int64_t Bts, const T *__restrict__ Cm, int64_t Cts,
                      const float *__restrict__ D, const T *__restrict__ z, int64_t zts, float *__restrict__ state,
                      int64_t sbs, int has_init, T *out, int64_t ots) {
  const int b = blockIdx.y;
  const int64_t c = (int64_t)blockIdx.x * SSCAN_THREADS + threadIdx.x;
  if (c >= dim) return;
  const int64_t L = len[b], s0 = start[b];
  float *hs = state + (int64_t)b * sbs + c * d_state;
  float h[SSCAN_DS], a[SSCAN_DS];
#pragma unroll
  for (int n = 0; n < SSCAN_DS; n++) {
    h[n] = (n < d_state && has_init) ? hs[n] : 0.0f;
    a[n] = n < d_state ? A[c * d_state + n] : 0.0f;
  }
  const float db = delta_bias ? delta_bias[c] : 0.0f, Dc = D ? D[c] : 0.0f;
  for (int64_t i = 0; i < L; i++) {
    const int64_t tok = s0 + i;
    float dt = sf_to_f<T>(delta[tok * dts + c]) + db;
    if (softplus) dt = sf_softplus(dt);
    const float uv = sf_to_f<T>(u[tok * uts + c]);
    const T *Bt = Bm + tok * Bts, *Ct = Cm + tok * Cts;
    float y = 0.0f;
#pragma unroll
    for (int n = 0; n < SSCAN_DS; n++) {
      if (n < d_state) {
        h[n] = expf(dt * a[n]) * h[n] + dt * sf_ld<T>(Bt + n) * uv;
        y += sf_ld<T>(Ct + n) * h[n];
      }
    }
    y += Dc * uv;
    if (z) y *= sf_silu(sf_to_f<T>(z[tok * zts + c]));
    out[tok * ots + c] = sf_from_f<T>(y);
  }
#pragma unroll
  for (int n = 0; n < SSCAN_DS; n++)
    if (n < d_state) hs[n] = h[n];
}

template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_selective_scan_params *p, sf_error *err) {
  dim3 grid((unsigned)((p->dim + SSCAN_THREADS - 1) / SSCAN_THREADS), (unsigned)p->seqs.batch);
  selective_scan_kernel<T><<<grid, SSCAN_THREADS, 0, sf_cuda_stream(ctx)>>>(
      p->dim, p->d_state, p->seqs.start, p->seqs.len, (const T *)p->u, p->u_token_stride, (const T *)p->delta,
      p->delta_token_stride, p->delta_bias, p->delta_softplus, p->A, (const T *)p->B, p->B_token_stride,
      (const T *)p->C, p->C_token_stride, p->D, (const T *)p->z, p->z_token_stride, p->state,
      p->state_batch_stride, p->has_initial_state, (T *)p->out, p->out_token_stride);
  SF_CUDA_LAUNCHED("selective_scan_kernel");
  return SF_OK;
}

/* Shared with selective_scan_naive.cu. */
sf_status sf_cuda_selective_scan_check(const sf_selective_scan_params *p, const char *name, sf_error *err) {
  if (p->dim <= 0 || p->d_state <= 0)
    return sf_fail(err, SF_ERR_ARG, "%s: need dim > 0 and d_state > 0, got %lld and %d", name, (long long)p->dim,
                   (int)p->d_state);
  if (p->seqs.batch < 0 || p->seqs.max_len < 0 || p->chunk_size < 0)
    return sf_fail(err, SF_ERR_ARG, "%s: negative batch %d, max_len %lld or chunk_size %d", name,
                   (int)p->seqs.batch, (long long)p->seqs.max_len, (int)p->chunk_size);
  if (p->u_token_stride < p->dim || p->delta_token_stride < p->dim || p->out_token_stride < p->dim ||
      (p->z && p->z_token_stride < p->dim) || p->B_token_stride < p->d_state || p->C_token_stride < p->d_state)
    return sf_fail(err, SF_ERR_ARG, "%s: token strides must cover dim = %lld (u, delta, z, out) and d_state = %d (B, C)",
                   name, (long long)p->dim, (int)p->d_state);
  if (p->seqs.batch > 65535 || (p->dim + 127) / 128 > 0x7fffffffLL)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "%s: batch %d > 65535", name, (int)p->seqs.batch);
  if (p->seqs.batch > 0 && (!p->seqs.start || !p->seqs.len || !p->u || !p->delta || !p->A || !p->B || !p->C ||
                            !p->state || !p->out))
    return sf_fail(err, SF_ERR_ARG, "%s: seqs, u, delta, A, B, C, state and out must be non-NULL", name);
  return SF_OK;
}

extern "C" SF_CUDA_OP(selective_scan, sf_selective_scan_params) {
  SF_TRY(sf_cuda_selective_scan_check(p, "selective_scan", err));
  if (p->seqs.batch == 0) return SF_OK;
  if (p->d_state > SSCAN_DS) return sf_cuda_selective_scan_naive(ctx, p, err);
  SF_DISPATCH(p->dtype, "selective_scan", launch<T>(ctx, p, err));
}
