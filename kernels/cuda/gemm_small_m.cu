/* Decode-shaped GEMMs: c[m, n] = a[m, k] . w[n, k]^T (+ bias) (+ c) for a
 * few rows (m <= SF_CUDA_GEMV_MAX_M: one token per sequence at small
 * batch), 16-bit a and w, out in the input type or f32. Such a product is a
 * weight stream: every weight is read once and used m times, so its time is
 * bytes / bandwidth plus the latency of getting the stream going; cuBLASLt's
 * kernels for these shapes leave bandwidth unused and need a separate
 * kernel to convert the bias.
 *
 * Here S warps (1, 2, 4 or 8) of a block own one output column n: each
 * streams an interleaved share of the weight row w[n, :] with 16-byte loads
 * (evict-first: the weights do not fit in L2 and are not read again this
 * step), takes the matching words of each row of a from shared memory
 * (the block copies a there once, up to 48 KiB; else from L1), and the S
 * partial sums meet in shared memory; c = dot + bias
 * (+ c), then the activation epilogue if any, in fp32 before the one
 * rounding to the output type. With a conv update epilogue (Mamba decode:
 * in_proj's x columns feed the causal conv) the thread that writes a
 * column of the conv's input also runs that channel's conv step
 * (conv1d_update.cuh): one kernel fewer a layer. Each lane keeps U 16-byte words in flight;
 * U and S by gemv_choice (measured). S > 1 spreads narrow products
 * (x_proj: 160 columns) over more SMs.
 *
 * Under programmatic dependent launch (cuda_common.cuh) the kernel lets its
 * successor launch at once and loads its first U words before it waits for
 * its predecessor: the weights are constants of the step, so their stream
 * overlaps the kernels before (a norm, a state update) and the weight
 * streams of consecutive products run back to back instead of each waiting
 * for the last one to drain.
 *
 * Needs k, lda and ldw multiples of 8 and 16-byte aligned a and w; the
 * caller (gemm.cu) falls back to cuBLASLt otherwise. Workspace: none. */
#include <type_traits>

#include "conv1d_update.cuh"

enum { GEMV_WARPS = 8, GEMV_STAGE_MAX = 48 * 1024 /* dynamic shared memory without opting in */ };

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

/* One round of a warp's share of the row: words i0, i0 + 32, ...,
 * i0 + 32 (U - 1), all loads first. */
template <int U>
__device__ __forceinline__ void gemv_load(uint4 (&wv)[U], const uint4 *wr, int64_t i0, int64_t k8) {
#pragma unroll
  for (int u = 0; u < U; u++) {
    const int64_t i = i0 + (int64_t)u * 32;
    wv[u] = i < k8 ? __ldcs(wr + i) : make_uint4(0, 0, 0, 0);
  }
}

/* What the kernel reads and writes. */
template <typename TI, typename TO>
struct gemv_args {
  int m, split;
  int64_t n, k8; /* k8: 16-byte words of a row (k / 8) */
  const TI *a;
  int64_t lda;
  const TI *w;
  int64_t ldw;
  const TI *bias;
  TO *c;
  int64_t ldc;
  int accumulate;
  int act; /* -1: none; else an sf_act_kind */
  int stage_a; /* a copied to shared memory first (m * k8 words) */
  /* sf_gemm_params conv_update (conv_dim 0: none): columns [conv_col0,
   * conv_col0 + conv_dim) of c are its input; row r is sequence r. */
  int64_t conv_col0, conv_dim;
  int conv_width, conv_silu;
  const TI *conv_w, *conv_bias;
  TI *conv_state;
  int64_t conv_sbs;
  TI *conv_out;
  int64_t conv_obs;
};

/* Column col's conv channel, or -1 where the column is not the conv's. */
template <typename TI, typename TO>
__device__ __forceinline__ int64_t gemv_conv_channel(const gemv_args<TI, TO> &g, int64_t col) {
  const int64_t ch = col - g.conv_col0;
  return ch >= 0 && ch < g.conv_dim ? ch : -1;
}

/* The conv step's operands of column col (a writer thread's), asked of L1
 * early: its weights and bias (constants) before the wait, each row's state
 * (the previous step's) after it. Fire and forget; without this the
 * epilogue waits a DRAM round trip for them after the product. */
__device__ __forceinline__ void prefetch_l1(const void *p) { asm volatile("prefetch.global.L1 [%0];" ::"l"(p)); }
template <typename TI, typename TO>
__device__ __forceinline__ void gemv_conv_prefetch(const gemv_args<TI, TO> &g, int64_t col, bool state) {
  const int64_t ch = gemv_conv_channel(g, col);
  if (ch < 0) return;
  const int W = g.conv_width;
  if (!state) {
    prefetch_l1(g.conv_w + ch * W);
    prefetch_l1(g.conv_w + ch * W + W - 1);
    if (g.conv_bias) prefetch_l1(g.conv_bias + ch);
    return;
  }
  if (W < 2) return;
  for (int r = 0; r < g.m; r++) {
    const TI *st = g.conv_state + r * g.conv_sbs + ch * (W - 1);
    prefetch_l1(st);
    prefetch_l1(st + W - 2);
  }
}

/* The conv update of column col of row r, given its value in c. */
template <typename TI, typename TO>
__device__ __forceinline__ void gemv_conv(const gemv_args<TI, TO> &g, int r, int64_t col, TO xt) {
  if constexpr (std::is_same<TI, TO>::value) {
    const int64_t ch = gemv_conv_channel(g, col);
    if (ch < 0) return;
    const int W = g.conv_width;
    TI *st = g.conv_state ? g.conv_state + r * g.conv_sbs + ch * (W - 1) : nullptr;
    g.conv_out[r * g.conv_obs + ch] = sf_conv1d_update_channel<TI>(
        xt, g.conv_w + ch * W, g.conv_bias ? sf_ldg<TI>(g.conv_bias + ch) : 0.0f, st, W, g.conv_silu);
  }
}

/* a's rows as 16-byte words: row r at a + r * ars (shared memory when
 * staged, else global). */
template <typename TI, int M, int U>
__device__ __forceinline__ void gemv_round(const uint4 (&wv)[U], int64_t i0, int64_t k8, int m,
                                           const uint4 *a, int64_t ars, float (&acc)[M]) {
#pragma unroll
  for (int u = 0; u < U; u++) {
    const int64_t i = i0 + (int64_t)u * 32;
    if (i >= k8) break;
    float wf[8];
    unpack8<TI>(wv[u], wf);
#pragma unroll
    for (int r = 0; r < M; r++) {
      if (r >= m) break;
      float af[8];
      unpack8<TI>(a[r * ars + i], af);
#pragma unroll
      for (int j = 0; j < 8; j++) acc[r] = fmaf(wf[j], af[j], acc[r]);
    }
  }
}

__device__ __forceinline__ float gemv_act(int act, float v) {
  if (act == SF_ACT_GELU) return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
  if (act == SF_ACT_SILU) return sf_silu(v);
  return sf_softplus(v);
}

/* The weights are constants of the step, so the first round is loaded
 * before sf_pdl_wait; everything that reads a or c comes after it. a is
 * the predecessor's output, so it is read with plain loads (cuda_common.cuh
 * sf_ld), once per block into shared memory where it fits (stage_a), which
 * all warps then read, as the read-only cache served them before. */
template <typename TI, typename TO, int M, int U>
__global__ void __launch_bounds__(GEMV_WARPS * 32) gemv_kernel(const gemv_args<TI, TO> g) {
  __shared__ float part[GEMV_WARPS][M];
  extern __shared__ uint4 a_s[]; /* [m][k8] when g.stage_a */
  sf_pdl_release();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, split = g.split;
  const int64_t col = (int64_t)blockIdx.x * (GEMV_WARPS / split) + warp / split;
  const int slice = warp % split;
  const bool live = col < g.n;
  const uint4 *wr = reinterpret_cast<const uint4 *>(g.w + (live ? col : 0) * g.ldw);
  const int64_t stride = (int64_t)32 * U * split, k8 = g.k8;
  int64_t i0 = lane + (int64_t)32 * U * slice;
  uint4 wv[U];
  if (live) gemv_load<U>(wv, wr, i0, k8);
  const bool conv_writer = g.conv_dim && live && slice == 0 && lane == 0;
  if (conv_writer) gemv_conv_prefetch(g, col, false);
  sf_pdl_wait();
  if (conv_writer) gemv_conv_prefetch(g, col, true);
  const uint4 *a = reinterpret_cast<const uint4 *>(g.a);
  int64_t ars = g.lda / 8;
  if (g.stage_a) {
    for (int r = 0; r < g.m; r++)
      for (int64_t i = threadIdx.x; i < k8; i += blockDim.x) a_s[r * k8 + i] = a[r * ars + i];
    __syncthreads();
    a = a_s, ars = k8;
  }
  float acc[M];
#pragma unroll
  for (int r = 0; r < M; r++) acc[r] = 0.0f;
  if (live) {
    for (;;) {
      gemv_round<TI, M, U>(wv, i0, k8, g.m, a, ars, acc);
      i0 += stride;
      if (i0 >= k8) break;
      gemv_load<U>(wv, wr, i0, k8);
    }
  }
#pragma unroll
  for (int r = 0; r < M; r++) acc[r] = sf_warp_sum(acc[r]);
  if (split > 1) {
    if (lane == 0)
#pragma unroll
      for (int r = 0; r < M; r++) part[warp][r] = acc[r];
    __syncthreads();
    if (slice == 0)
#pragma unroll
      for (int r = 0; r < M; r++) {
        float v = 0.0f;
        for (int j = 0; j < split; j++) v += part[warp + j][r];
        acc[r] = v;
      }
  }
  if (!live || slice != 0 || lane != 0) return;
#pragma unroll
  for (int r = 0; r < M; r++) {
    if (r >= g.m) break;
    float v = acc[r];
    if (g.bias) v += sf_to_f<TI>(g.bias[col]);
    TO *e = g.c + r * g.ldc + col;
    if (g.accumulate) v += sf_to_f<TO>(*e);
    if (g.act >= 0) v = gemv_act(g.act, v);
    *e = sf_from_f<TO>(v);
    if (g.conv_dim) gemv_conv(g, r, col, sf_from_f<TO>(v));
  }
}

template <typename TI, typename TO, int M, int U>
static sf_status launch_mu(sf_op_ctx *ctx, const sf_gemm_params *p, int split, sf_error *err) {
  const int64_t cols_per_block = GEMV_WARPS / split;
  const unsigned blocks = (unsigned)((p->n + cols_per_block - 1) / cols_per_block);
  gemv_args<TI, TO> g = {};
  g.m = (int)p->m, g.split = split, g.n = p->n, g.k8 = p->k / 8;
  g.a = (const TI *)p->a, g.lda = p->lda, g.w = (const TI *)p->w, g.ldw = p->ldw;
  g.bias = (const TI *)p->bias, g.c = (TO *)p->c, g.ldc = p->ldc, g.accumulate = p->accumulate;
  g.act = p->has_act ? (int)p->act : -1;
  const size_t a_bytes = (size_t)p->m * (size_t)p->k * sizeof(TI);
  g.stage_a = a_bytes <= GEMV_STAGE_MAX;
  if (const sf_conv1d_update_params *cv = p->conv_update) { /* checked by sf_gemm_check_epilogue */
    g.conv_col0 = ((const char *)cv->x - (const char *)p->c) / (ptrdiff_t)sizeof(TO);
    g.conv_dim = cv->dim, g.conv_width = cv->width, g.conv_silu = cv->silu;
    g.conv_w = (const TI *)cv->weight, g.conv_bias = (const TI *)cv->bias;
    g.conv_state = (TI *)cv->conv_state, g.conv_sbs = cv->state_batch_stride;
    g.conv_out = (TI *)cv->out, g.conv_obs = cv->out_batch_stride;
  }
  SF_CUDA_LAUNCH("gemv_kernel", ctx, gemv_kernel<TI, TO, M, U>, blocks, GEMV_WARPS * 32,
                 g.stage_a ? a_bytes : 0, g);
  return SF_OK;
}

/* The default tuning. In a decode step the products follow small kernels
 * and, under programmatic dependent launch, a product's blocks start while
 * those run and load their first round of weights before they wait: the
 * more of the matrix one resident wave holds in that round, the more of
 * its stream overlaps the kernels before it. So one warp per column and
 * the whole row in one round (8 words a lane up to 2048 elements, 16 up to
 * 4096), split over warps (4 words a lane) only when the columns are too
 * few to give every SM eight warps (x_proj: 160 columns). Measured on an
 * H100 in the decode step (mamba-1.4b at 2k, batch 1): 1.81 ms with this
 * choice. Products chained alone (bench_gemv) favour 4 words a lane and
 * more warps per column (89% of the copy rate instead of 85% on 8192 x
 * 2048), but that takes two waves where this takes one; the one step
 * measured with it (together with a norm fused into the products, since
 * dropped: every block recomputed it) took 1.97 ms. */
static void gemv_choice(sf_op_ctx *ctx, int64_t n, int64_t k8, int *words, int *split) {
  const int64_t want = (int64_t)sf_cuda_impl_of(ctx)->num_sms * 8;
  *split = 1;
  while (*split < GEMV_WARPS && n * *split < want && k8 >= (int64_t)64 * 4 * *split) *split *= 2;
  *words = *split > 1 ? 4 : (k8 > 256 ? 16 : 8);
}

template <typename TI, typename TO, int M>
static sf_status launch_m(sf_op_ctx *ctx, const sf_gemm_params *p, int u, int split, sf_error *err) {
  if (u == 4) return launch_mu<TI, TO, M, 4>(ctx, p, split, err);
  if (u == 16) return launch_mu<TI, TO, M, 16>(ctx, p, split, err);
  return launch_mu<TI, TO, M, 8>(ctx, p, split, err);
}

template <typename TI, typename TO>
static sf_status launch(sf_op_ctx *ctx, const sf_gemm_params *p, int u, int split, sf_error *err) {
  static_assert(SF_CUDA_GEMV_MAX_M <= 2, "instantiate more row counts");
  if (p->m <= 1) return launch_m<TI, TO, 1>(ctx, p, u, split, err);
  return launch_m<TI, TO, 2>(ctx, p, u, split, err);
}

static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* Whether the kernel takes p (else cuBLASLt). */
static int gemv_applies(const sf_gemm_params *p) {
  const int half = p->dtype == SF_BF16 || p->dtype == SF_F16;
  const sf_conv1d_update_params *cv = p->conv_update;
  if (cv && (cv->dim <= 0 || cv->width < 1 || !cv->weight || !cv->out || (cv->width > 1 && !cv->conv_state)))
    return 0; /* unfused: the conv1d_update op names what is wrong */
  return half && p->m >= 1 && p->m <= SF_CUDA_GEMV_MAX_M && p->n >= 1 && p->k >= 8 && p->k % 8 == 0 &&
         p->lda % 8 == 0 && aligned16(p->a) && p->ldw % 8 == 0 && aligned16(p->w) && p->n <= (int64_t)UINT32_MAX &&
         (p->out_dtype == p->dtype || p->out_dtype == SF_F32);
}

static sf_status gemv_run(sf_op_ctx *ctx, const sf_gemm_params *p, int u, int split, sf_error *err) {
  const int f32 = p->out_dtype == SF_F32;
  if (p->dtype == SF_BF16)
    return f32 ? launch<__nv_bfloat16, float>(ctx, p, u, split, err)
               : launch<__nv_bfloat16, __nv_bfloat16>(ctx, p, u, split, err);
  return f32 ? launch<__half, float>(ctx, p, u, split, err) : launch<__half, __half>(ctx, p, u, split, err);
}

extern "C" sf_status sf_cuda_gemm_small_m(sf_op_ctx *ctx, const sf_gemm_params *p, int *done, sf_error *err) {
  *done = 0;
  if (!gemv_applies(p)) return SF_OK;
  *done = 1;
  int words, split;
  gemv_choice(ctx, p->n, p->k / 8, &words, &split);
  return gemv_run(ctx, p, words, split, err);
}

extern "C" sf_status sf_cuda_gemm_small_m_variant(sf_op_ctx *ctx, const sf_gemm_params *p, int words, int split,
                                                  sf_error *err) {
  if (!gemv_applies(p))
    return sf_fail(err, SF_ERR_UNSUPPORTED, "gemm (weight stream): the kernel does not take this problem");
  if ((words != 4 && words != 8 && words != 16) || (split != 1 && split != 2 && split != 4 && split != 8))
    return sf_fail(err, SF_ERR_ARG, "gemm (weight stream): words %d (4, 8, 16) or split %d (1, 2, 4, 8)", words,
                   split);
  return gemv_run(ctx, p, words, split, err);
}
