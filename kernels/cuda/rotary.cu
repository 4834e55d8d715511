/* GPT-NeoX rotary on the first rot_dim channels of each head, in place.
 * One block per token (grid-stride), threads over (head, pair). The
 * frequencies and angles are computed in double (positions reach 1M, where a
 * float angle would be off by ~0.06 rad); inv_freq is computed once per
 * block into shared memory. The optional x2 (k, when x is q) adds its heads
 * after x's to the same (head, pair) range: q and k in one kernel.
 * Workspace: none. */
#include "cuda_common.cuh"

template <typename T>
__global__ void rotary_kernel(int64_t n_tokens, int n_heads, int rot_dim, double log_base, T *x,
                              int64_t ts, int64_t hs, const int32_t *__restrict__ positions, T *x2,
                              int n_heads2, int64_t hs2) {
  sf_pdl_release();
  extern __shared__ double inv_freq[]; /* [rot_dim / 2] */
  const int h = rot_dim / 2;
  /* The frequencies depend on no earlier kernel: computed while it ends. */
  for (int i = threadIdx.x; i < h; i += blockDim.x)
    inv_freq[i] = exp(-log_base * (2.0 * i / (double)rot_dim));
  __syncthreads();
  sf_pdl_wait();
  const int pairs = (n_heads + n_heads2) * h;
  for (int64_t t = blockIdx.x; t < n_tokens; t += gridDim.x) {
    const double pos = (double)__ldg(positions + t);
    for (int idx = threadIdx.x; idx < pairs; idx += blockDim.x) {
      const int head = idx / h, i = idx % h;
      double sn, cs;
      sincos(pos * inv_freq[i], &sn, &cs);
      const float s = (float)sn, c = (float)cs;
      T *xh = head < n_heads ? x + t * ts + (int64_t)head * hs
                             : x2 + t * ts + (int64_t)(head - n_heads) * hs2;
      const float x0 = sf_to_f<T>(xh[i]), x1 = sf_to_f<T>(xh[i + h]);
      xh[i] = sf_from_f<T>(x0 * c - x1 * s);
      xh[i + h] = sf_from_f<T>(x1 * c + x0 * s);
    }
  }
}

template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_rotary_params *p, sf_error *err) {
  const int heads2 = sf_rotary_heads2(p);
  const int pairs = (p->n_heads + heads2) * (p->rot_dim / 2);
  const int threads = pairs >= 256 ? 256 : (pairs >= 128 ? 128 : 64);
  const unsigned blocks = sf_grid_for(p->n_tokens, 1, 1 << 18);
  SF_CUDA_LAUNCH("rotary_kernel", ctx, rotary_kernel<T>, blocks, threads, sizeof(double) * (p->rot_dim / 2),
                 p->n_tokens, p->n_heads, p->rot_dim, log((double)p->base), (T *)p->x, p->x_token_stride,
                 p->x_head_stride, p->positions, (T *)p->x2, heads2, p->x2_head_stride);
  return SF_OK;
}

extern "C" SF_CUDA_OP(rotary, sf_rotary_params) {
  int nothing;
  SF_TRY(sf_rotary_check(p, &nothing, err));
  if (p->x_token_stride < 0 || p->x_head_stride < 0 || (p->x2 && p->x2_head_stride < 0))
    return sf_fail(err, SF_ERR_ARG, "rotary: negative stride");
  if (nothing) return SF_OK;
  SF_DISPATCH(p->dtype, "rotary", launch<T>(ctx, p, err));
}
