/* Decode-shaped GEMMs: c[m, n] = a[m, k] . w[n, k]^T (+ bias) (+ c) for a few
 * rows (m <= SF_CUDA_GEMV_MAX_M) (one token per sequence at small batch), 16-bit a and w, out in the
 * input type or f32. Such a product is a weight stream: every weight is read
 * once and used m times, so time is bytes / bandwidth. cuBLASLt's kernels
 * for these shapes leave bandwidth unused and need a separate kernel to
 * convert the bias; here one warp owns one output column n: it streams the
 * weight row w[n, :] with 16-byte loads (evict-first: the weights do not fit
 * in L2 and are not read again this step), takes each row of a from L1 (all
 * warps share it), reduces the m dot products with shuffles, and writes
 * c = dot + bias (+ c) in fp32 before the one rounding to the output type.
 * Needs k, lda and ldw multiples of 8 and 16-byte aligned a and w; the
 * caller (gemm.cu) falls back to cuBLASLt otherwise. Workspace: none. */
#include "cuda_common.cuh"

enum { GEMV_WARPS = 8, GEMV_UNROLL = 8 };

/* Eight 16-bit values in a 16-byte word, widened to fp32. */
template <typename T> __device__ __forceinline__ void unpack8(const uint4 &v, float *f);
template <> __device__ __forceinline__ void unpack8<__nv_bfloat16>(const uint4 &v, float *f) {
  const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&v);
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const float2 t = __bfloat1622float2(h[i]);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}
template <> __device__ __forceinline__ void unpack8<__half>(const uint4 &v, float *f) {
  const __half2 *h = reinterpret_cast<const __half2 *>(&v);
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const float2 t = __half22float2(h[i]);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}

template <typename TI, typename TO, int M>
__global__ void __launch_bounds__(GEMV_WARPS * 32)
gemv_kernel(int m, int64_t n, int64_t k8, const TI *__restrict__ a, int64_t lda, const TI *__restrict__ w,
            int64_t ldw, const TI *__restrict__ bias, TO *c, int64_t ldc, int accumulate) {
  const int lane = threadIdx.x & 31;
  const int64_t col = (int64_t)blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
  if (col >= n) return;
  const uint4 *wr = reinterpret_cast<const uint4 *>(w + col * ldw);
  float acc[M];
#pragma unroll
  for (int r = 0; r < M; r++) acc[r] = 0.0f;
  for (int64_t i0 = lane; i0 < k8; i0 += 32 * GEMV_UNROLL) {
    uint4 wv[GEMV_UNROLL];
    /* All loads of the weight row first: several 16-byte requests in flight per lane. */
#pragma unroll
    for (int u = 0; u < GEMV_UNROLL; u++) {
      const int64_t i = i0 + (int64_t)u * 32;
      wv[u] = i < k8 ? __ldcs(wr + i) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < GEMV_UNROLL; u++) {
      const int64_t i = i0 + (int64_t)u * 32;
      if (i >= k8) break;
      float wf[8];
      unpack8<TI>(wv[u], wf);
#pragma unroll
      for (int r = 0; r < M; r++) {
        if (r >= m) break;
        float af[8];
        unpack8<TI>(__ldg(reinterpret_cast<const uint4 *>(a + r * lda) + i), af);
#pragma unroll
        for (int j = 0; j < 8; j++) acc[r] = fmaf(wf[j], af[j], acc[r]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < M; r++) {
    if (r >= m) break;
    float v = acc[r];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) {
      if (bias) v += sf_to_f<TI>(bias[col]);
      TO *e = c + r * ldc + col;
      if (accumulate) v += sf_to_f<TO>(*e);
      *e = sf_from_f<TO>(v);
    }
  }
}

template <typename TI, typename TO, int M>
static sf_status launch_m(sf_op_ctx *ctx, const sf_gemm_params *p, sf_error *err) {
  const unsigned blocks = (unsigned)((p->n + GEMV_WARPS - 1) / GEMV_WARPS);
  gemv_kernel<TI, TO, M><<<blocks, GEMV_WARPS * 32, 0, sf_cuda_stream(ctx)>>>(
      (int)p->m, p->n, p->k / 8, (const TI *)p->a, p->lda, (const TI *)p->w, p->ldw, (const TI *)p->bias,
      (TO *)p->c, p->ldc, p->accumulate);
  SF_CUDA_LAUNCHED("gemv_kernel");
  return SF_OK;
}

template <typename TI, typename TO>
static sf_status launch(sf_op_ctx *ctx, const sf_gemm_params *p, sf_error *err) {
  static_assert(SF_CUDA_GEMV_MAX_M <= 2, "instantiate more row counts");
  if (p->m <= 1) return launch_m<TI, TO, 1>(ctx, p, err);
  return launch_m<TI, TO, 2>(ctx, p, err);
}

static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

extern "C" sf_status sf_cuda_gemm_small_m(sf_op_ctx *ctx, const sf_gemm_params *p, int *done, sf_error *err) {
  *done = 0;
  const int half = p->dtype == SF_BF16 || p->dtype == SF_F16;
  if (!half || p->m < 1 || p->m > SF_CUDA_GEMV_MAX_M || p->n < 1 || p->k < 8 || p->k % 8 || p->lda % 8 ||
      p->ldw % 8 || !aligned16(p->a) || !aligned16(p->w) || p->n > (int64_t)UINT32_MAX * GEMV_WARPS)
    return SF_OK;
  if (p->out_dtype != p->dtype && p->out_dtype != SF_F32) return SF_OK;
  *done = 1;
  const int f32 = p->out_dtype == SF_F32;
  if (p->dtype == SF_BF16)
    return f32 ? launch<__nv_bfloat16, float>(ctx, p, err) : launch<__nv_bfloat16, __nv_bfloat16>(ctx, p, err);
  return f32 ? launch<__half, float>(ctx, p, err) : launch<__half, __half>(ctx, p, err);
}
