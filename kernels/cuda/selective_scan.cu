/* Mamba-1 selective scan. Two kernels:
 *
 * 0. v4, the op's path for bf16/f16 with 16-byte aligned rows, d_state 16
 *    and dim a multiple of 32 (see "chunked scan, v4" below); v5 (lanes that
 *    walk the whole sequence) is kept as a tuning variant, measured slower.
 * 1. The chunked parallel scan v3 (bf16/f16, d_state <= 16), the op's path for the
 *    other layouts. A
 *    block of 128 threads takes (sequence, 16 consecutive channels); the
 *    sequence goes by in chunks of 128 tokens. Each thread owns one channel
 *    and 16 consecutive tokens of the chunk (8 threads = 8 segments a
 *    channel, all in one warp). The chunk's u, delta, z, B and C rows are
 *    read with 16-byte loads (one chunk ahead, into registers), transposed
 *    into shared memory (channel- and state-major) and read back as 16-byte
 *    vectors. Per state n: a_t = 2^(dt_t A_n log2 e) (the one exponential a
 *    (token, channel, state)), b_t = dt_t B_t[n] u_t; the thread composes its
 *    16 (a, b) pairs (product of a as 2^(A_n log2 e sum dt)), the 8
 *    segments scan their aggregates with 3 width-8 shuffles, the carried
 *    state h (fp32, in shared memory) enters as h_start = P h + q, and a
 *    second pass over the 16 tokens gives h_t and y_t += C_t[n] h_t. States
 *    go in pairs, software-pipelined: the exponentials of the next pair are
 *    computed while the current pair is scanned. D u and the
 *    silu(z) gate are fused; y is transposed back through shared memory and
 *    stored with 16-byte stores. Unaligned layouts (pointers or token strides
 *    off 16 bytes, dim not a multiple of 16) load and store element-wise.
 *    The result equals the sequential recurrence up to fp32 rounding for any
 *    chunk_size (chunk_size is accepted and has no effect).
 * 2. The sequential kernel (any dtype, d_state <= 16; f32 runs it): one
 *    thread per (sequence, channel) walks the tokens with its states in
 *    registers (fp32).
 * d_state > 16 runs the naive kernel (selective_scan_naive.cu). The final
 * state is written to state. Workspace: none. */
#include "cuda_common.cuh"
#include "ssd_mma.cuh" /* cp.async, ldmatrix and shared-address wrappers */

enum { SSCAN_THREADS = 128, SSCAN_DS = 16 };

template <typename T>
__global__ void __launch_bounds__(SSCAN_THREADS)
selective_scan_seq_kernel(int64_t dim, int d_state, const int64_t *__restrict__ start, const int32_t *__restrict__ len,
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
        h[n] = expf(dt * a[n]) * h[n] + dt * sf_ldg<T>(Bt + n) * uv;
        y += sf_ldg<T>(Ct + n) * h[n];
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
static sf_status launch_seq(sf_op_ctx *ctx, const sf_selective_scan_params *p, sf_error *err) {
  dim3 grid((unsigned)((p->dim + SSCAN_THREADS - 1) / SSCAN_THREADS), (unsigned)p->seqs.batch);
  selective_scan_seq_kernel<T><<<grid, SSCAN_THREADS, 0, sf_cuda_stream(ctx)>>>(
      p->dim, p->d_state, p->seqs.start, p->seqs.len, (const T *)p->u, p->u_token_stride, (const T *)p->delta,
      p->delta_token_stride, p->delta_bias, p->delta_softplus, p->A, (const T *)p->B, p->B_token_stride,
      (const T *)p->C, p->C_token_stride, p->D, (const T *)p->z, p->z_token_stride, p->state,
      p->state_batch_stride, p->has_initial_state, (T *)p->out, p->out_token_stride);
  SF_CUDA_LAUNCHED("selective_scan_seq_kernel");
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


/* ------------------------------------------------------------ chunked scan */

namespace {

constexpr int SC_CH = 16, SC_SEG = 8, SC_K = 16, SC_T = SC_SEG * SC_K, SC_TH = SC_CH * SC_SEG;
constexpr float SC_LOG2E = 1.4426950408889634f, SC_LN2 = 0.6931471805599453f;

template <typename T> struct ScanSmem {
  T u[SC_CH][SC_SEG][24]; /* 16 tokens + 8 pad: conflict-free 16-byte reads by segment */
  T d[SC_CH][SC_SEG][24];
  T z[SC_CH][SC_SEG][24]; /* z in, then the gated output */
  float B[16][SC_SEG][20];
  float C[16][SC_SEG][20];
  float A2[SC_CH][16];    /* A log2(e) */
  float H[SC_CH][16];     /* the carried state */
};

struct ScanArgs {
  int64_t dim;
  int d_state;
  const int64_t *start;
  const int32_t *len;
  const void *u;
  int64_t uts;
  const void *delta;
  int64_t dts;
  const float *delta_bias;
  int softplus;
  const float *A;
  const void *B;
  int64_t Bts;
  const void *C;
  int64_t Cts;
  const float *D;
  const void *z;
  int64_t zts;
  float *state;
  int64_t sbs;
  int has_init;
  void *out;
  int64_t ots;
  int vec_io, vec_bc;
};

__device__ __forceinline__ float sc_ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ float sc_lg2(float x) {
  float y;
  asm("lg2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ float sc_tanh(float x) {
  float y;
  asm("tanh.approx.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
/* log1p(e^x) (x for x > 20), two special-function ops. */
__device__ __forceinline__ float sc_softplus(float x) {
  const float e = sc_ex2(x * SC_LOG2E);
  const float series = e * (1.0f - e * (0.5f - e * (1.0f / 3.0f)));
  const float lg = sc_lg2(1.0f + e) * SC_LN2;
  return x > 20.0f ? x : (x < -4.0f ? series : lg);
}
__device__ __forceinline__ float sc_silu(float z) { return 0.5f * z * (1.0f + sc_tanh(0.5f * z)); }

template <typename T> __device__ __forceinline__ float2 sc_unpack(uint32_t w) {
  T v[2];
  memcpy(v, &w, 4);
  return make_float2(sf_to_f<T>(v[0]), sf_to_f<T>(v[1]));
}
template <typename T> __device__ __forceinline__ uint32_t sc_pack(float lo, float hi) {
  T v[2] = {sf_from_f<T>(lo), sf_from_f<T>(hi)};
  uint32_t w;
  memcpy(&w, v, 4);
  return w;
}
template <typename T> __device__ __forceinline__ T sc_elem(const uint4 &v, int j) {
  const uint32_t w = j < 2 ? v.x : (j < 4 ? v.y : (j < 6 ? v.z : v.w));
  const uint16_t hbits = (uint16_t)(j & 1 ? w >> 16 : w & 0xffffu);
  T t;
  memcpy(&t, &hbits, 2);
  return t;
}

__device__ __forceinline__ uint4 sc_ld16(const void *p) {
  uint4 v;
  asm volatile("ld.global.v4.u32 {%0,%1,%2,%3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}
__device__ __forceinline__ uint4 sc_ldg16(const void *p) { return __ldg(reinterpret_cast<const uint4 *>(p)); }
__device__ __forceinline__ void sc_st16(void *p, uint4 v) {
  asm volatile("st.global.v4.u32 [%0], {%1,%2,%3,%4};\n" ::"l"(p), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w) : "memory");
}

/* 8 consecutive elements from row[0..8) where ok(j); 0 elsewhere. */
template <typename T> __device__ __forceinline__ uint4 sc_gather(const T *row, int nvalid) {
  uint16_t e[8];
#pragma unroll
  for (int j = 0; j < 8; j++) {
    T t = j < nvalid ? row[j] : sf_from_f<T>(0.0f);
    memcpy(&e[j], &t, 2);
  }
  uint4 v;
  v.x = e[0] | ((uint32_t)e[1] << 16);
  v.y = e[2] | ((uint32_t)e[3] << 16);
  v.z = e[4] | ((uint32_t)e[5] << 16);
  v.w = e[6] | ((uint32_t)e[7] << 16);
  return v;
}

/* SC_NR states a step (4: more independent work a warp; 2). PIPE (SC_NR 2):
 * the exponentials of the next pair of states are computed while the
 * current pair is scanned, so the special-function unit has work during the
 * shuffles and the second pass. */
template <typename T, int SC_NR, bool PIPE>
__global__ void __launch_bounds__(SC_TH, 2) selective_scan_chunked_kernel(ScanArgs a) {
  __shared__ __align__(16) ScanSmem<T> sm;
  const int b = blockIdx.y;
  const int64_t c0 = (int64_t)blockIdx.x * SC_CH;
  const int tid = threadIdx.x, cl = tid >> 3, seg = tid & 7;
  const int64_t c = c0 + cl;
  const bool cok = c < a.dim;
  const int64_t L = a.len[b], s0 = a.start[b];
  const int ns = a.d_state;
  for (int i = tid; i < SC_CH * 16; i += SC_TH) {
    const int cc = i >> 4, n = i & 15;
    const int64_t ch = c0 + cc;
    const bool ok = ch < a.dim && n < ns;
    sm.A2[cc][n] = ok ? a.A[ch * ns + n] * SC_LOG2E : 0.0f;
    sm.H[cc][n] = (ok && a.has_init) ? a.state[(int64_t)b * a.sbs + ch * ns + n] : 0.0f;
  }
  const float bias = (cok && a.delta_bias) ? a.delta_bias[c] : 0.0f;
  const float Dc = (cok && a.D) ? a.D[c] : 0.0f;
  const int64_t rem_ch = a.dim - c0;
  const bool full = a.vec_io && rem_ch >= SC_CH;
  const T *u = static_cast<const T *>(a.u), *dl = static_cast<const T *>(a.delta);
  const T *zp = static_cast<const T *>(a.z), *Bp = static_cast<const T *>(a.B), *Cp = static_cast<const T *>(a.C);
  T *op = static_cast<T *>(a.out);
  uint4 pu[2], pd[2], pz[2], pb[2], pc[2];

  auto load = [&](int64_t tb) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
      const int q = tid + SC_TH * r, t = q >> 1, hf = q & 1;
      const int64_t tt = tb + t, row = s0 + tt, cb = c0 + 8 * hf;
      const bool tok = tt < L;
      if (tok && full) {
        pu[r] = sc_ld16(u + row * a.uts + cb);
        pd[r] = sc_ldg16(dl + row * a.dts + cb);
        if (zp) pz[r] = sc_ldg16(zp + row * a.zts + cb);
      } else {
        const int nv = tok ? (int)(a.dim - cb < 8 ? (a.dim - cb > 0 ? a.dim - cb : 0) : 8) : 0;
        pu[r] = sc_gather<T>(u + row * a.uts + cb, nv);
        pd[r] = sc_gather<T>(dl + row * a.dts + cb, nv);
        if (zp) pz[r] = sc_gather<T>(zp + row * a.zts + cb, nv);
      }
      if (tok && a.vec_bc) {
        pb[r] = sc_ldg16(Bp + row * a.Bts + 8 * hf);
        pc[r] = sc_ldg16(Cp + row * a.Cts + 8 * hf);
      } else {
        const int nv = tok ? (ns - 8 * hf < 8 ? (ns - 8 * hf > 0 ? ns - 8 * hf : 0) : 8) : 0;
        pb[r] = sc_gather<T>(Bp + row * a.Bts + 8 * hf, nv);
        pc[r] = sc_gather<T>(Cp + row * a.Cts + 8 * hf, nv);
      }
    }
  };
  auto stash = [&]() {
#pragma unroll
    for (int r = 0; r < 2; r++) {
      const int q = tid + SC_TH * r, t = q >> 1, hf = q & 1, sg = t >> 4, ti = t & 15;
#pragma unroll
      for (int j = 0; j < 8; j++) {
        sm.u[8 * hf + j][sg][ti] = sc_elem<T>(pu[r], j);
        sm.d[8 * hf + j][sg][ti] = sc_elem<T>(pd[r], j);
        if (zp) sm.z[8 * hf + j][sg][ti] = sc_elem<T>(pz[r], j);
        sm.B[8 * hf + j][sg][ti] = sf_to_f<T>(sc_elem<T>(pb[r], j));
        sm.C[8 * hf + j][sg][ti] = sf_to_f<T>(sc_elem<T>(pc[r], j));
      }
    }
  };

  load(0);
#pragma unroll 1
  for (int64_t t0 = 0; t0 < L; t0 += SC_T) {
    __syncthreads();
    stash();
    if (t0 + SC_T < L) load(t0 + SC_T);
    __syncthreads();
    /* ---- this thread's 16 tokens of channel c */
    const int64_t tv = L - t0 - seg * SC_K; /* valid tokens of this segment (may be <= 0 or > 16) */
    float dt[SC_K], du[SC_K], y[SC_K];
    float dtsum = 0.0f;
    {
      const uint4 u0 = *reinterpret_cast<const uint4 *>(&sm.u[cl][seg][0]);
      const uint4 u1 = *reinterpret_cast<const uint4 *>(&sm.u[cl][seg][8]);
      const uint4 d0 = *reinterpret_cast<const uint4 *>(&sm.d[cl][seg][0]);
      const uint4 d1 = *reinterpret_cast<const uint4 *>(&sm.d[cl][seg][8]);
      const uint32_t uw[8] = {u0.x, u0.y, u0.z, u0.w, u1.x, u1.y, u1.z, u1.w};
      const uint32_t dw[8] = {d0.x, d0.y, d0.z, d0.w, d1.x, d1.y, d1.z, d1.w};
#pragma unroll
      for (int e = 0; e < 8; e++) {
        const float2 uf = sc_unpack<T>(uw[e]), df = sc_unpack<T>(dw[e]);
        float v0 = df.x + bias, v1 = df.y + bias;
        if (a.softplus) {
          v0 = sc_softplus(v0);
          v1 = sc_softplus(v1);
        }
        if (2 * e >= tv) v0 = 0.0f;
        if (2 * e + 1 >= tv) v1 = 0.0f;
        dt[2 * e] = v0;
        dt[2 * e + 1] = v1;
        du[2 * e] = v0 * uf.x;
        du[2 * e + 1] = v1 * uf.y;
        dtsum += v0 + v1;
        y[2 * e] = 0.0f;
        y[2 * e + 1] = 0.0f;
      }
    }
    /* phase A of NR states from n: the exponentials a, b = dt u B, the
     * segment's aggregate (P, q); phase BC: the scan across segments, the
     * carried state, the second pass (h_t, y_t). */
    auto phaseA = [&](int n, float (&av)[SC_NR][SC_K], float (&bv)[SC_NR][SC_K], float (&P)[SC_NR],
                      float (&q)[SC_NR]) {
#pragma unroll
      for (int r = 0; r < SC_NR; r++) {
        const float A2 = sm.A2[cl][n + r];
        P[r] = sc_ex2(A2 * dtsum);
        q[r] = 0.0f;
        const float4 *bp = reinterpret_cast<const float4 *>(&sm.B[n + r][seg][0]);
#pragma unroll
        for (int v4 = 0; v4 < 4; v4++) {
          const float4 bb = bp[v4];
          const float be[4] = {bb.x, bb.y, bb.z, bb.w};
#pragma unroll
          for (int e = 0; e < 4; e++) {
            const int i = 4 * v4 + e;
            av[r][i] = sc_ex2(dt[i] * A2);
            bv[r][i] = du[i] * be[e];
            q[r] = fmaf(av[r][i], q[r], bv[r][i]);
          }
        }
      }
    };
    auto phaseBC = [&](int n, float (&av)[SC_NR][SC_K], float (&bv)[SC_NR][SC_K], float (&P)[SC_NR],
                       float (&q)[SC_NR]) {
      /* inclusive scan of the segments' (P, q) over the 8 lanes of the channel */
#pragma unroll
      for (int d = 1; d < SC_SEG; d <<= 1) {
#pragma unroll
        for (int r = 0; r < SC_NR; r++) {
          const float Pp = __shfl_up_sync(0xffffffffu, P[r], d, SC_SEG);
          const float qp = __shfl_up_sync(0xffffffffu, q[r], d, SC_SEG);
          if (seg >= d) {
            q[r] = fmaf(P[r], qp, q[r]);
            P[r] *= Pp;
          }
        }
      }
      float hs[SC_NR], he[SC_NR];
#pragma unroll
      for (int r = 0; r < SC_NR; r++) {
        const float hc = sm.H[cl][n + r];
        he[r] = fmaf(P[r], hc, q[r]); /* state after this segment */
        const float hprev = __shfl_up_sync(0xffffffffu, he[r], 1, SC_SEG);
        hs[r] = seg ? hprev : hc;
      }
      __syncwarp();
      if (seg == SC_SEG - 1) {
#pragma unroll
        for (int r = 0; r < SC_NR; r++) sm.H[cl][n + r] = he[r];
      }
#pragma unroll
      for (int r = 0; r < SC_NR; r++) {
        float h = hs[r];
        const float4 *cp = reinterpret_cast<const float4 *>(&sm.C[n + r][seg][0]);
#pragma unroll
        for (int v4 = 0; v4 < 4; v4++) {
          const float4 cc = cp[v4];
          const float ce[4] = {cc.x, cc.y, cc.z, cc.w};
#pragma unroll
          for (int e = 0; e < 4; e++) {
            const int i = 4 * v4 + e;
            h = fmaf(av[r][i], h, bv[r][i]);
            y[i] = fmaf(ce[e], h, y[i]);
          }
        }
      }
    };
    if constexpr (PIPE) {
      /* two buffers: phase A of the next states overlaps phase BC of these
       * (all 16 states; past d_state A2 = B = C = 0 is harmless) */
      static_assert(SC_NR == 2, "the pipelined order covers 16 states in pairs");
      float avA[SC_NR][SC_K], bvA[SC_NR][SC_K], PA[SC_NR], qA[SC_NR];
      float avB[SC_NR][SC_K], bvB[SC_NR][SC_K], PB[SC_NR], qB[SC_NR];
      phaseA(0, avA, bvA, PA, qA);
#pragma unroll 1
      for (int n = 0; n < 12; n += 2 * SC_NR) {
        phaseA(n + SC_NR, avB, bvB, PB, qB);
        phaseBC(n, avA, bvA, PA, qA);
        phaseA(n + 2 * SC_NR, avA, bvA, PA, qA);
        phaseBC(n + SC_NR, avB, bvB, PB, qB);
      }
      phaseA(14, avB, bvB, PB, qB);
      phaseBC(12, avA, bvA, PA, qA);
      phaseBC(14, avB, bvB, PB, qB);
    } else {
#pragma unroll 1
      for (int n = 0; n < ns; n += SC_NR) { /* states past d_state: A2 = B = C = 0, harmless */
        float av[SC_NR][SC_K], bv[SC_NR][SC_K], P[SC_NR], q[SC_NR];
        phaseA(n, av, bv, P, q);
        phaseBC(n, av, bv, P, q);
      }
    }
    /* D u, the z gate; the result replaces z in shared memory */
    {
      const uint4 u0 = *reinterpret_cast<const uint4 *>(&sm.u[cl][seg][0]);
      const uint4 u1 = *reinterpret_cast<const uint4 *>(&sm.u[cl][seg][8]);
      const uint32_t uw[8] = {u0.x, u0.y, u0.z, u0.w, u1.x, u1.y, u1.z, u1.w};
      uint32_t zw[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      if (zp) {
        const uint4 z0 = *reinterpret_cast<const uint4 *>(&sm.z[cl][seg][0]);
        const uint4 z1 = *reinterpret_cast<const uint4 *>(&sm.z[cl][seg][8]);
        zw[0] = z0.x, zw[1] = z0.y, zw[2] = z0.z, zw[3] = z0.w;
        zw[4] = z1.x, zw[5] = z1.y, zw[6] = z1.z, zw[7] = z1.w;
      }
      uint32_t ow[8];
#pragma unroll
      for (int e = 0; e < 8; e++) {
        const float2 uf = sc_unpack<T>(uw[e]);
        float o0 = fmaf(Dc, uf.x, y[2 * e]), o1 = fmaf(Dc, uf.y, y[2 * e + 1]);
        if (zp) {
          const float2 zf = sc_unpack<T>(zw[e]);
          o0 *= sc_silu(zf.x);
          o1 *= sc_silu(zf.y);
        }
        ow[e] = sc_pack<T>(o0, o1);
      }
      *reinterpret_cast<uint4 *>(&sm.z[cl][seg][0]) = make_uint4(ow[0], ow[1], ow[2], ow[3]);
      *reinterpret_cast<uint4 *>(&sm.z[cl][seg][8]) = make_uint4(ow[4], ow[5], ow[6], ow[7]);
    }
    __syncthreads();
    /* ---- store the chunk's outputs, token-major */
#pragma unroll
    for (int r = 0; r < 2; r++) {
      const int q = tid + SC_TH * r, t = q >> 1, hf = q & 1, sg = t >> 4, ti = t & 15;
      const int64_t tt = t0 + t, cb = c0 + 8 * hf;
      if (tt >= L) continue;
      T *orow = op + (s0 + tt) * a.ots + cb;
      if (full) {
        uint16_t e[8];
#pragma unroll
        for (int j = 0; j < 8; j++) memcpy(&e[j], &sm.z[8 * hf + j][sg][ti], 2);
        sc_st16(orow, make_uint4(e[0] | ((uint32_t)e[1] << 16), e[2] | ((uint32_t)e[3] << 16),
                                 e[4] | ((uint32_t)e[5] << 16), e[6] | ((uint32_t)e[7] << 16)));
      } else {
#pragma unroll
        for (int j = 0; j < 8; j++)
          if (cb + j < a.dim) orow[j] = sm.z[8 * hf + j][sg][ti];
      }
    }
  }
  __syncthreads();
  for (int i = tid; i < SC_CH * 16; i += SC_TH) {
    const int cc = i >> 4, n = i & 15;
    const int64_t ch = c0 + cc;
    if (ch < a.dim && n < ns) a.state[(int64_t)b * a.sbs + ch * ns + n] = sm.H[cc][n];
  }
}

bool sc_al16(const void *p) { return ((uintptr_t)p & 15) == 0; }
/* The v4 kernel (the op's path for bf16/f16 with 16-byte aligned rows,
 * d_state 16 and dim a multiple of 32). A block of 16 warps takes
 * (sequence, 32 channels): 4 channel groups of 8 x 4 time slots. Warp
 * (slot w, group g) processes the 64-token chunks j = w, w + 4, ... of its
 * 8 channels; lane (c = lane / 4, s = lane % 4) owns channel c and the 16
 * tokens 16 s .. 16 s + 15 of the chunk. The 4 time slots of a group form a
 * ring: slot w hands the state at the end of its chunk to slot w + 1 through
 * a shared-memory mailbox, state by state (an mbarrier per pair of states),
 * so no block-wide barrier ever runs in the main loop and the 4 warps of a
 * group (one per SM sub-partition) drift apart instead of marching in step.
 * Inputs: each warp copies its own raw u, delta, z rows (16 bytes: 8
 * channels) with cp.async one chunk ahead and transposes them with
 * ldmatrix.trans (rows swizzled against bank conflicts); the 4 warps of a
 * time slot share the chunk's B and C rows (raw by cp.async, converted once
 * to fp32 state-major; two named barriers per chunk among those 4 warps).
 * Per state n the lane computes a_t = 2^(dt_t A_n log2 e) and b_t = dt_t u_t
 * B_t[n] for its 16 tokens and their aggregate, 2 width-4 shuffle rounds
 * scan the 4 segments, the carried state enters, and a second pass gives
 * h_t and y_t += C_t[n] h_t; the second pass of state n is fused with the
 * first pass of state n + 1 (a, b rewritten in place). POLY (a 16-bit mask
 * over the 16 tokens): those tokens' exponentials run on the FMA pipe
 * (exp2 by a degree-5 polynomial on [-0.5, 0.5] and an exponent add, relative
 * error 2.4e-7, like ex2.approx) instead of the special-function unit. D u
 * and the z gate are fused; y goes back through the z tile (token-major)
 * and leaves with 16-byte stores. */
namespace v4 {

constexpr int W = 4, G = 4, NWARP = W * G, NTH = NWARP * 32, CH = 8 * G, KT = 16, TCH = 4 * KT, NPAIR = 8;

struct Smem {
  uint4 tile[NWARP][2][3][TCH]; /* u, delta, z(then out) rows: 8 channels = 16 bytes a token, swizzled */
  uint4 bcraw[W][2][4][TCH];    /* [B states 0-7, 8-15, C 0-7, 8-15][token]: 16 bytes each */
  float bcf[W][2][16][80];      /* fp32 [B, C][state][4 segments x (16 tokens + 4 pad)] */
  float A2[CH][16];             /* A log2(e) */
  float H0[CH][16];             /* the initial state */
  float mbox[G][W][16][8];      /* mailbox (g, w): the state entering slot w's chunk, written by slot w - 1 */
  unsigned long long mbar[G][W][NPAIR];
};

__device__ __forceinline__ int swz(int t) { return t ^ (((t >> 4) & 3) << 1); }

__device__ __forceinline__ void bar_named(int id, int n) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(n) : "memory");
}

__device__ __forceinline__ void mbar_init(unsigned long long *m, int count) {
  asm volatile("mbarrier.init.shared.b64 [%0], %1;\n" ::"r"(sfm_smem(m)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(unsigned long long *m) {
  asm volatile("{\n .reg .b64 st;\n mbarrier.arrive.shared.b64 st, [%0];\n}\n" ::"r"(sfm_smem(m)) : "memory");
}
__device__ __forceinline__ void mbar_wait(unsigned long long *m, int parity) {
  asm volatile(
      "{\n .reg .pred p;\n WAIT_%=:\n mbarrier.test_wait.parity.shared.b64 p, [%0], %1;\n @!p bra WAIT_%=;\n}\n" ::"r"(
          sfm_smem(m)),
      "r"(parity)
      : "memory");
}

/* 2^x on the FMA pipe: x = j + f (j = rint x, |f| <= 1/2), 2^f by a degree-5
 * polynomial (relative error 2.4e-7 in fp32), 2^j added to the exponent. x
 * is clamped to [-125, 125] (2^-125 stands for 0). */
__device__ __forceinline__ float poly_ex2(float x) {
  x = fminf(fmaxf(x, -125.0f), 125.0f);
  const float t = x + 12582912.0f; /* 1.5 * 2^23: the low mantissa bits hold rint(x) */
  const float j = t - 12582912.0f;
  const float f = x - j;
  float p = 0x1.5c08e4p-10f;
  p = fmaf(p, f, 0x1.3d0c52p-7f);
  p = fmaf(p, f, 0x1.c6b6e4p-5f);
  p = fmaf(p, f, 0x1.ebf918p-3f);
  p = fmaf(p, f, 0x1.62e428p-1f);
  p = fmaf(p, f, 0x1.000002p+0f);
  return __int_as_float(__float_as_int(p) + (__float_as_int(t) << 23));
}

template <int POLY> __device__ __forceinline__ float ex2_at(int i, float x) {
  return ((POLY >> i) & 1) ? poly_ex2(x) : sc_ex2(x);
}

template <typename T> __device__ __forceinline__ float2 unpack2(uint32_t w);
template <> __device__ __forceinline__ float2 unpack2<__nv_bfloat16>(uint32_t w) {
  return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
}
template <> __device__ __forceinline__ float2 unpack2<__half>(uint32_t w) {
  __half2 h;
  memcpy(&h, &w, 4);
  return __half22float2(h);
}

template <typename T, int POLY>
__global__ void __launch_bounds__(NTH, 1) scan_kernel(ScanArgs a) {
  extern __shared__ __align__(16) unsigned char smraw[];
  Smem &sm = *reinterpret_cast<Smem *>(smraw);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int w = warp >> 2, g = warp & 3, c = lane >> 2, s = lane & 3;
  const int b = blockIdx.y;
  const int64_t cb = (int64_t)blockIdx.x * CH, cg = cb + 8 * g, ch = cg + c;
  const int64_t L = a.len[b], s0 = a.start[b];
  const int nch = (int)((L + TCH - 1) / TCH);
  float *const gstate = a.state + (int64_t)b * a.sbs;
  for (int i = tid; i < CH * 16; i += NTH) {
    const int cc = i >> 4, n = i & 15;
    sm.A2[cc][n] = a.A[(cb + cc) * 16 + n] * SC_LOG2E;
    const float h0 = a.has_init ? gstate[(cb + cc) * 16 + n] : 0.0f;
    sm.H0[cc][n] = h0;
    sm.mbox[cc >> 3][0][n][cc & 7] = h0; /* what slot 0 takes into chunk 0 */
  }
  if (tid < G * W * NPAIR) mbar_init(&sm.mbar[0][0][0] + tid, 8);
  __syncthreads();
  if (nch == 0) { /* empty sequence: the final state is the initial one */
    if (w == 0)
      for (int i = lane; i < 8 * 16; i += 32) gstate[(cg + (i >> 4)) * 16 + (i & 15)] = sm.H0[8 * g + (i >> 4)][i & 15];
    return;
  }
  const float bias = a.delta_bias ? a.delta_bias[ch] : 0.0f;
  const float Dc = a.D ? a.D[ch] : 0.0f;
  const T *u = static_cast<const T *>(a.u), *dl = static_cast<const T *>(a.delta), *zp = static_cast<const T *>(a.z);
  const T *Bp = static_cast<const T *>(a.B), *Cp = static_cast<const T *>(a.C);
  T *op = static_cast<T *>(a.out);
  const float *A2row = sm.A2[8 * g + c];
  const float *mb_in = &sm.mbox[g][w][0][c];
  float *mb_out = &sm.mbox[g][(w + 1) & 3][0][c];
  unsigned long long *bar_in = sm.mbar[g][w], *bar_out = sm.mbar[g][(w + 1) & 3];

  auto issue = [&](int j, int st) {
    const int64_t t0 = (int64_t)j * TCH;
#pragma unroll
    for (int r = 0; r < 2; r++) {
      const int t = lane + 32 * r, ps = swz(t);
      const bool ok = t0 + t < L;
      const int64_t row = s0 + t0 + (ok ? t : 0);
      sfm_cp16(&sm.tile[warp][st][0][ps], u + row * a.uts + cg, ok);
      sfm_cp16(&sm.tile[warp][st][1][ps], dl + row * a.dts + cg, ok);
      if (zp) sfm_cp16(&sm.tile[warp][st][2][ps], zp + row * a.zts + cg, ok);
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
      const int p = g * 32 + lane + 128 * r, t = p >> 2, part = p & 3;
      const bool ok = t0 + t < L;
      const int64_t row = s0 + t0 + (ok ? t : 0);
      const T *src = part < 2 ? Bp + row * a.Bts + 8 * part : Cp + row * a.Cts + 8 * (part - 2);
      sfm_cp16(&sm.bcraw[w][st][part][t], src, ok);
    }
    sfm_cp_commit();
  };

  if (w < nch) issue(w, 0);
  int k = 0;
#pragma unroll 1
  for (int j = w; j < nch; j += W, k++) {
    const int st = k & 1;
    __syncwarp();
    if (j + W < nch) issue(j + W, st ^ 1);
    else sfm_cp_commit();
    sfm_cp_wait<1>();
    bar_named(1 + w, 128);
    /* B, C of the chunk to fp32, state-major: 2 pieces (8 states of a token) a thread */
#pragma unroll
    for (int r = 0; r < 2; r++) {
      const int p = g * 32 + lane + 128 * r, t = p & 63, part = p >> 6;
      const uint4 v = sm.bcraw[w][st][part][t];
      const uint32_t vw[4] = {v.x, v.y, v.z, v.w};
      float *dst = &sm.bcf[w][part >> 1][8 * (part & 1)][(t >> 4) * 20 + (t & 15)];
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const float2 f = unpack2<T>(vw[e]);
        dst[(2 * e) * 80] = f.x;
        dst[(2 * e + 1) * 80] = f.y;
      }
    }
    bar_named(1 + w, 128);

    /* ---- this lane's 16 tokens */
    const int64_t t0 = (int64_t)j * TCH;
    const int64_t nv = L - t0 - KT * s; /* valid tokens of the segment */
    uint32_t ur[8], dr[8];
    {
      const int mi = lane >> 3, r = lane & 7;
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int tt = swz(16 * (r >> 1) + 8 * h + 2 * mi + (r & 1));
        uint32_t x4[4];
        sfm_ldsm4_t(x4, &sm.tile[warp][st][0][tt]);
        ur[4 * h] = x4[0], ur[4 * h + 1] = x4[1], ur[4 * h + 2] = x4[2], ur[4 * h + 3] = x4[3];
        sfm_ldsm4_t(x4, &sm.tile[warp][st][1][tt]);
        dr[4 * h] = x4[0], dr[4 * h + 1] = x4[1], dr[4 * h + 2] = x4[2], dr[4 * h + 3] = x4[3];
      }
    }
    float dt[KT], du[KT], y[KT];
    float dtsum = 0.0f;
#pragma unroll
    for (int e = 0; e < 8; e++) {
      const float2 uf = unpack2<T>(ur[e]), df = unpack2<T>(dr[e]);
      float v0 = df.x + bias, v1 = df.y + bias;
      if (a.softplus) {
        v0 = sc_softplus(v0);
        v1 = sc_softplus(v1);
      }
      if (nv < KT) {
        if (2 * e >= nv) v0 = 0.0f;
        if (2 * e + 1 >= nv) v1 = 0.0f;
      }
      dt[2 * e] = v0, dt[2 * e + 1] = v1;
      du[2 * e] = v0 * uf.x, du[2 * e + 1] = v1 * uf.y;
      y[2 * e] = Dc * uf.x, y[2 * e + 1] = Dc * uf.y;
      dtsum += v0 + v1;
    }
    const float *brow0 = &sm.bcf[w][0][0][s * 20], *crow0 = &sm.bcf[w][1][0][s * 20];
    auto brow = [&](int n) { return brow0 + n * 80; };
    auto crow = [&](int n) { return crow0 + n * 80; };

    float av[KT], bv[KT];
    float Pin, qin, Pex, qex;
    /* pass 1 of state n: a, b, the segment's (P, q), then the scan over the 4 segments */
    auto scan4 = [&](float P, float q) {
      /* (lanes below the distance take the identity (1, 0)) */
      float Pp = __shfl_up_sync(0xffffffffu, P, 1, 4), qp = __shfl_up_sync(0xffffffffu, q, 1, 4);
      q = fmaf(P, s >= 1 ? qp : 0.0f, q);
      P *= s >= 1 ? Pp : 1.0f;
      Pp = __shfl_up_sync(0xffffffffu, P, 2, 4), qp = __shfl_up_sync(0xffffffffu, q, 2, 4);
      q = fmaf(P, s >= 2 ? qp : 0.0f, q);
      P *= s >= 2 ? Pp : 1.0f;
      Pin = P, qin = q;
      Pex = __shfl_up_sync(0xffffffffu, P, 1, 4), qex = __shfl_up_sync(0xffffffffu, q, 1, 4);
      Pex = s ? Pex : 1.0f, qex = s ? qex : 0.0f;
    };
    {
      const float A2 = A2row[0];
      const float4 *bp = reinterpret_cast<const float4 *>(brow(0));
      float q = 0.0f;
#pragma unroll
      for (int v = 0; v < 4; v++) {
        const float4 bb = bp[v];
        const float be[4] = {bb.x, bb.y, bb.z, bb.w};
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int i = 4 * v + e;
          av[i] = ex2_at<POLY>(i, dt[i] * A2);
          bv[i] = du[i] * be[e];
          q = fmaf(av[i], q, bv[i]);
        }
      }
      scan4(sc_ex2(A2 * dtsum), q);
    }
    const bool first = j == 0, last = j == nch - 1;
    const int par = (w == 0 ? k - 1 : k) & 1;
    auto enter = [&](int n) { /* the carried state of state n: h at the segment's start; publish the chunk's end */
      if (!first && !(n & 1)) mbar_wait(bar_in + (n >> 1), par);
      const float hin = mb_in[n * 8];
      if (s == 3) {
        mb_out[n * 8] = fmaf(Pin, hin, qin);
        if (n & 1) mbar_arrive(bar_out + (n >> 1));
      }
      return fmaf(Pex, hin, qex);
    };
    auto step = [&](int n) { /* pass 2 of state n fused with pass 1 of state n + 1 */
      float h = enter(n);
      const float A2 = A2row[n + 1];
      const float4 *bp = reinterpret_cast<const float4 *>(brow(n + 1));
      const float4 *cp = reinterpret_cast<const float4 *>(crow(n));
      float q = 0.0f;
#pragma unroll
      for (int v = 0; v < 4; v++) {
        const float4 bb = bp[v], cc = cp[v];
        const float be[4] = {bb.x, bb.y, bb.z, bb.w}, ce[4] = {cc.x, cc.y, cc.z, cc.w};
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int i = 4 * v + e;
          h = fmaf(av[i], h, bv[i]);
          y[i] = fmaf(ce[e], h, y[i]);
          av[i] = ex2_at<POLY>(i, dt[i] * A2);
          bv[i] = du[i] * be[e];
          q = fmaf(av[i], q, bv[i]);
        }
      }
      scan4(sc_ex2(A2 * dtsum), q);
    };
#if SC_V4_UNROLL
#pragma unroll
    for (int n = 0; n < 15; n++) step(n);
#else
#pragma unroll 1
    for (int n = 0; n < 14; n += 2) {
      step(n);
      step(n + 1);
    }
    step(14);
#endif
    {
      float h = enter(15);
      const float4 *cp = reinterpret_cast<const float4 *>(crow(15));
#pragma unroll
      for (int v = 0; v < 4; v++) {
        const float4 cc = cp[v];
        const float ce[4] = {cc.x, cc.y, cc.z, cc.w};
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int i = 4 * v + e;
          h = fmaf(av[i], h, bv[i]);
          y[i] = fmaf(ce[e], h, y[i]);
        }
      }
    }
    /* ---- the z gate; the outputs replace z in the tile (token-major), then 16-byte stores */
    uint16_t *otile = reinterpret_cast<uint16_t *>(&sm.tile[warp][st][2][0]);
    uint32_t ow[8];
    if (zp) {
      uint32_t zr[8];
      const int mi = lane >> 3, r = lane & 7;
#pragma unroll
      for (int h = 0; h < 2; h++) {
        uint32_t x4[4];
        sfm_ldsm4_t(x4, &sm.tile[warp][st][2][swz(16 * (r >> 1) + 8 * h + 2 * mi + (r & 1))]);
        zr[4 * h] = x4[0], zr[4 * h + 1] = x4[1], zr[4 * h + 2] = x4[2], zr[4 * h + 3] = x4[3];
      }
#pragma unroll
      for (int e = 0; e < 8; e++) {
        const float2 zf = unpack2<T>(zr[e]);
        ow[e] = sc_pack<T>(y[2 * e] * sc_silu(zf.x), y[2 * e + 1] * sc_silu(zf.y));
      }
    } else {
#pragma unroll
      for (int e = 0; e < 8; e++) ow[e] = sc_pack<T>(y[2 * e], y[2 * e + 1]);
    }
    __syncwarp();
#pragma unroll
    for (int e = 0; e < 8; e++) {
      otile[swz(KT * s + 2 * e) * 8 + c] = (uint16_t)(ow[e] & 0xffffu);
      otile[swz(KT * s + 2 * e + 1) * 8 + c] = (uint16_t)(ow[e] >> 16);
    }
    __syncwarp();
#pragma unroll
    for (int r = 0; r < 2; r++) {
      const int t = lane + 32 * r;
      if (t0 + t < L) sc_st16(op + (s0 + t0 + t) * a.ots + cg, sm.tile[warp][st][2][swz(t)]);
    }
    if (last) { /* the final state: the end of this chunk, from the mailbox it went to */
      __syncwarp();
      for (int i = lane; i < 8 * 16; i += 32) gstate[(cg + (i & 7)) * 16 + (i >> 3)] = mb_out[(i >> 3) * 8 + (i & 7) - c];
    }
  }
}

} // namespace v4


template <typename T, int POLY>
sf_status launch_v4(sf_op_ctx *ctx, const ScanArgs &a, int batch, bool *ran, sf_error *err) {
  *ran = false;
  const size_t smem = sizeof(v4::Smem);
  if (smem > sf_cuda_impl_of(ctx)->smem_optin) return SF_OK; /* the caller runs v3 */
  SF_TRY(sf_cuda_smem_optin(ctx, (const void *)v4::scan_kernel<T, POLY>, smem, "selective_scan", err));
  dim3 grid((unsigned)(a.dim / v4::CH), (unsigned)batch);
  v4::scan_kernel<T, POLY><<<grid, v4::NTH, smem, sf_cuda_stream(ctx)>>>(a);
  SF_CUDA_LAUNCHED("selective_scan v4");
  *ran = true;
  return SF_OK;
}

/* ------------------------------------------------ chunked scan, v5 (lanes) */

/* v5: no scan over time at all. A lane owns (channel, NS consecutive
 * states) and walks the whole sequence, carrying its NS states in
 * registers: per (token, state) it does a = 2^(dt A log2 e), h = a h + dt u
 * B, y += C h (x, the exponential, b, h, y: 5 instructions, against 7 and a
 * scan in v3/v4). The parallelism is channels x (16 / NS) lanes: 16384 lanes
 * (1 warp a sub-partition) for NS 4 at batch 1, twice that for NS 2. A block
 * (512 / NS threads) takes 32 channels and goes through the sequence in
 * 64-token tiles: raw u, delta, z, B, C rows by cp.async two tiles ahead; one
 * tile ahead every thread helps turn them into fp32 dt, dt u (softplus once
 * a (token, channel)) and fp32 (B, C) pairs; then each lane runs its states
 * over the tile, writing its partial y (a sum over its NS states) to shared
 * memory, and after a barrier each (token, channel) sums the 16 / NS
 * partials, adds D u, applies the z gate and stores. Two barriers a tile.
 * POLY: for NS 4, exponential (token e of 4, state r) runs on the FMA pipe
 * when bit 4 e + r is set; for NS 2, bit 2 e + r. */
namespace v5 {

constexpr int CH = 32, T = 64;

template <int NS> struct Smem {
  __nv_bfloat16 raw[3][4][T][CH]; /* u, delta, z, [B 16 | C 16] rows */
  float4 dts[2][T / 4][CH];      /* dt of 4 tokens, per channel */
  float4 dus[2][T / 4][CH];      /* dt u */
  float bc[2][T][16][2];         /* (B_n, C_n) */
  float yp[T][CH][16 / NS];      /* partial y */
};

template <typename T_, int NS, int POLY>
__global__ void __launch_bounds__(512 / NS, 1) scan_kernel(ScanArgs a) {
  constexpr int NTH = 512 / NS, NQ = 16 / NS;
  extern __shared__ __align__(16) unsigned char smraw[];
  Smem<NS> &sm = *reinterpret_cast<Smem<NS> *>(smraw);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int b = blockIdx.y;
  const int64_t cb = (int64_t)blockIdx.x * CH;
  const int64_t L = a.len[b], s0 = a.start[b];
  const int nt = (int)((L + T - 1) / T);
  float *const gstate = a.state + (int64_t)b * a.sbs;
  const T_ *u = static_cast<const T_ *>(a.u), *dl = static_cast<const T_ *>(a.delta), *zp = static_cast<const T_ *>(a.z);
  const T_ *Bp = static_cast<const T_ *>(a.B), *Cp = static_cast<const T_ *>(a.C);
  T_ *op = static_cast<T_ *>(a.out);
  /* compute lane: channel cl (of the block's 32), states q NS .. q NS + NS - 1 */
  const int cl = tid / NQ, q = tid % NQ;
  float h[NS], A2[NS];
#pragma unroll
  for (int r = 0; r < NS; r++) {
    const int64_t idx = (cb + cl) * 16 + q * NS + r;
    A2[r] = a.A[idx] * SC_LOG2E;
    h[r] = a.has_init ? gstate[idx] : 0.0f;
  }
  /* prep / epilogue thread: channel lane, rows warp, warp + NTH / 32, ... */
  const int pc = lane, prow0 = warp;
  constexpr int PSTEP = NTH / 32;
  const float bias = a.delta_bias ? a.delta_bias[cb + pc] : 0.0f;
  const float Dc = a.D ? a.D[cb + pc] : 0.0f;

  /* raw rows of tile k (zero past L): 4 arrays x 64 rows x 4 pieces of 16 bytes; thread: piece tid % 4 of rows
   * tid / 4 + NTH / 4 rr */
  const int pq = tid & 3, pr = tid >> 2;
  const T_ *src0 = u + s0 * a.uts + cb + 8 * pq, *src1 = dl + s0 * a.dts + cb + 8 * pq;
  const T_ *src2 = (zp ? zp + s0 * a.zts + cb : u) + 8 * pq;
  const T_ *src3 = pq < 2 ? Bp + s0 * a.Bts + 8 * pq : Cp + s0 * a.Cts + 8 * (pq - 2);
  const int64_t str2 = zp ? a.zts : 0, str3 = pq < 2 ? a.Bts : a.Cts;
  auto issue = [&](int k) {
    const int st = k % 3;
    const int64_t t0 = (int64_t)k * T;
#pragma unroll
    for (int rr = 0; rr < 256 / NTH; rr++) {
      const int t = pr + (NTH / 4) * rr;
      const bool ok = t0 + t < L;
      const int64_t row = ok ? t0 + t : 0;
      sfm_cp16(&sm.raw[st][0][t][8 * pq], src0 + row * a.uts, ok);
      sfm_cp16(&sm.raw[st][1][t][8 * pq], src1 + row * a.dts, ok);
      sfm_cp16(&sm.raw[st][2][t][8 * pq], src2 + row * str2, ok && zp);
      sfm_cp16(&sm.raw[st][3][t][8 * pq], src3 + row * str3, ok);
    }
    sfm_cp_commit();
  };
  auto prep = [&](int k) { /* fp32 dt, dt u, (B, C) of tile k */
    const int st = k % 3, pb = k & 1;
    const int64_t t0 = (int64_t)k * T;
    const uint16_t *ur = reinterpret_cast<const uint16_t *>(&sm.raw[st][0][0][0]);
    const uint16_t *dr = reinterpret_cast<const uint16_t *>(&sm.raw[st][1][0][0]);
    const int rem = (int)(L - t0 < T ? L - t0 : T); /* valid rows of the tile */
#pragma unroll
    for (int g4 = prow0; g4 < T / 4; g4 += PSTEP) {
      float dv[4], uv[4];
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int t = 4 * g4 + e;
        const uint32_t uw = ur[t * CH + pc], dw = dr[t * CH + pc];
        uv[e] = v4::unpack2<T_>(uw).x;
        float v = v4::unpack2<T_>(dw).x + bias;
        if (a.softplus) v = sc_softplus(v);
        dv[e] = t < rem ? v : 0.0f;
      }
      sm.dts[pb][g4][pc] = make_float4(dv[0], dv[1], dv[2], dv[3]);
      sm.dus[pb][g4][pc] = make_float4(dv[0] * uv[0], dv[1] * uv[1], dv[2] * uv[2], dv[3] * uv[3]);
    }
    for (int i = tid; i < T * 4; i += NTH) { /* 8 values of B or C a step */
      const int t = i >> 2, pc4 = i & 3;
      const uint4 v = *reinterpret_cast<const uint4 *>(&sm.raw[st][3][t][8 * pc4]);
      const uint32_t vw[4] = {v.x, v.y, v.z, v.w};
      float *dst = &sm.bc[pb][t][8 * (pc4 & 1)][pc4 >> 1];
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const float2 f = v4::unpack2<T_>(vw[e]);
        dst[4 * e] = f.x;
        dst[4 * e + 2] = f.y;
      }
    }
  };

  if (nt > 0) issue(0);
  if (nt > 1) issue(1);
  else sfm_cp_commit();
#pragma unroll 1
  for (int k = 0; k < nt; k++) {
    /* tile k's raw rows are in; prep it if it is the first */
    if (k == 0) {
      sfm_cp_wait<1>();
      __syncthreads();
      prep(0);
    }
    sfm_cp_wait<0>();
    __syncthreads(); /* B1: prep(k) done, raw k + 1 in, tile k - 1 finished */
    if (k + 2 < nt) issue(k + 2);
    if (k + 1 < nt) prep(k + 1);
    /* ---- the lanes' recurrences over tile k */
    {
      const int pb = k & 1;
      const float4 *dtp = &sm.dts[pb][0][cl], *dup = &sm.dus[pb][0][cl];
      const float4 *bcp = reinterpret_cast<const float4 *>(&sm.bc[pb][0][q * NS][0]);
      float *ypp = &sm.yp[0][cl][q];
#pragma unroll 2
      for (int g4 = 0; g4 < T / 4; g4++) {
        const float4 d4 = dtp[g4 * CH], u4 = dup[g4 * CH];
        const float dt[4] = {d4.x, d4.y, d4.z, d4.w}, du[4] = {u4.x, u4.y, u4.z, u4.w};
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int t = 4 * g4 + e;
          float bcv[2 * NS];
#pragma unroll
          for (int v = 0; v < NS / 2; v++) {
            const float4 x = bcp[t * 8 + v];
            bcv[4 * v] = x.x, bcv[4 * v + 1] = x.y, bcv[4 * v + 2] = x.z, bcv[4 * v + 3] = x.w;
          }
          float y = 0.0f;
#pragma unroll
          for (int r = 0; r < NS; r++) {
            const float x = dt[e] * A2[r];
            const float av = ((POLY >> (e * NS + r)) & 1) ? v4::poly_ex2(x) : sc_ex2(x);
            h[r] = fmaf(av, h[r], du[e] * bcv[2 * r]);
            y = fmaf(bcv[2 * r + 1], h[r], y);
          }
          ypp[t * CH * NQ] = y;
        }
      }
    }
    __syncthreads(); /* B2: partial y of tile k complete */
    /* ---- sum the partials, D u, the z gate, store */
    {
      const int st = k % 3;
      const int64_t t0 = (int64_t)k * T;
      const uint16_t *ur = reinterpret_cast<const uint16_t *>(&sm.raw[st][0][0][0]);
      const uint16_t *zr = reinterpret_cast<const uint16_t *>(&sm.raw[st][2][0][0]);
      const int rem = (int)(L - t0 < T ? L - t0 : T);
      T_ *o = op + (s0 + t0 + prow0) * a.ots + cb + pc;
      const int64_t ostep = (int64_t)PSTEP * a.ots;
#pragma unroll 4
      for (int t = prow0; t < T; t += PSTEP, o += ostep) {
        if (t >= rem) break;
        const float4 *yq = reinterpret_cast<const float4 *>(&sm.yp[t][pc][0]);
        float y = 0.0f;
#pragma unroll
        for (int v = 0; v < NQ / 4; v++) {
          const float4 x = yq[v];
          y += (x.x + x.y) + (x.z + x.w);
        }
        y = fmaf(Dc, v4::unpack2<T_>(ur[t * CH + pc]).x, y);
        if (zp) y *= sc_silu(v4::unpack2<T_>(zr[t * CH + pc]).x);
        *o = sf_from_f<T_>(y);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < NS; r++) gstate[(cb + cl) * 16 + q * NS + r] = h[r];
}

} // namespace v5

template <typename T, int NS, int POLY>
sf_status launch_v5(sf_op_ctx *ctx, const ScanArgs &a, int batch, bool *ran, sf_error *err) {
  *ran = false;
  const size_t smem = sizeof(v5::Smem<NS>);
  if (smem > sf_cuda_impl_of(ctx)->smem_optin) return SF_OK;
  SF_TRY(sf_cuda_smem_optin(ctx, (const void *)v5::scan_kernel<T, NS, POLY>, smem, "selective_scan", err));
  dim3 grid((unsigned)(a.dim / v5::CH), (unsigned)batch);
  v5::scan_kernel<T, NS, POLY><<<grid, 512 / NS, smem, sf_cuda_stream(ctx)>>>(a);
  SF_CUDA_LAUNCHED("selective_scan v5");
  *ran = true;
  return SF_OK;
}

template <typename T>
sf_status launch_chunked(sf_op_ctx *ctx, const sf_selective_scan_params *p, int kind, sf_error *err) {
  ScanArgs a;
  a.dim = p->dim;
  a.d_state = p->d_state;
  a.start = p->seqs.start;
  a.len = p->seqs.len;
  a.u = p->u;
  a.uts = p->u_token_stride;
  a.delta = p->delta;
  a.dts = p->delta_token_stride;
  a.delta_bias = p->delta_bias;
  a.softplus = p->delta_softplus;
  a.A = p->A;
  a.B = p->B;
  a.Bts = p->B_token_stride;
  a.C = p->C;
  a.Cts = p->C_token_stride;
  a.D = p->D;
  a.z = p->z;
  a.zts = p->z_token_stride;
  a.state = p->state;
  a.sbs = p->state_batch_stride;
  a.has_init = p->has_initial_state;
  a.out = p->out;
  a.ots = p->out_token_stride;
  a.vec_io = sc_al16(p->u) && sc_al16(p->delta) && sc_al16(p->out) && (!p->z || sc_al16(p->z)) &&
             p->u_token_stride % 8 == 0 && p->delta_token_stride % 8 == 0 && p->out_token_stride % 8 == 0 &&
             (!p->z || p->z_token_stride % 8 == 0);
  a.vec_bc = p->d_state == 16 && sc_al16(p->B) && sc_al16(p->C) && p->B_token_stride % 8 == 0 &&
             p->C_token_stride % 8 == 0;
  if ((kind == 0 || kind >= 6) && a.vec_io && a.vec_bc && p->dim % v4::CH == 0) {
    bool ran = false;
    const int b = (int)p->seqs.batch;
    if (kind == 7) SF_TRY((launch_v4<T, 0x8000>(ctx, a, b, &ran, err)));
    else if (kind == 8) SF_TRY((launch_v4<T, 0x8080>(ctx, a, b, &ran, err)));
    else if (kind == 9) SF_TRY((launch_v4<T, 0x8420>(ctx, a, b, &ran, err)));
    else if (kind == 10) SF_TRY((launch_v5<T, 4, 0>(ctx, a, b, &ran, err)));
    else if (kind == 11) SF_TRY((launch_v5<T, 4, 0x8000>(ctx, a, b, &ran, err)));
    else if (kind == 12) SF_TRY((launch_v5<T, 2, 0>(ctx, a, b, &ran, err)));
    else if (kind == 13) SF_TRY((launch_v5<T, 2, 0x80>(ctx, a, b, &ran, err)));
    else SF_TRY((launch_v4<T, 0>(ctx, a, b, &ran, err))); /* 0 (the op), 6 */
    if (ran) return SF_OK;
  }
  dim3 grid((unsigned)((p->dim + SC_CH - 1) / SC_CH), (unsigned)p->seqs.batch);
  if (kind == 3) selective_scan_chunked_kernel<T, 2, false><<<grid, SC_TH, 0, sf_cuda_stream(ctx)>>>(a);
  else if (kind == 5) selective_scan_chunked_kernel<T, 4, false><<<grid, SC_TH, 0, sf_cuda_stream(ctx)>>>(a);
  else selective_scan_chunked_kernel<T, 2, true><<<grid, SC_TH, 0, sf_cuda_stream(ctx)>>>(a);
  SF_CUDA_LAUNCHED("selective_scan_chunked_kernel");
  return SF_OK;
}

} // namespace

/* Tuning and reference entry (bench_mamba): variant 0 is what the op runs,
 * 1 the sequential kernel, 2 the chunked kernel v3 (2 states a step,
 * software-pipelined), 3 v3 with 2 states a step, 5 with 4 states a step;
 * 6-9 v4 with 0, 1, 2, 3 of every 16 tokens' exponentials on the FMA pipe;
 * 10, 11 v5 with 4 states a lane (no / 1 of 16 exponentials on the FMA
 * pipe), 12, 13 v5 with 2 states a lane (no / 1 of 8). v4 and v5 need
 * 16-byte aligned rows, d_state 16 and dim a multiple of 32 (else v3 runs);
 * bf16/f16; d_state > 16 runs the naive kernel in every variant. */
extern "C" sf_status sf_cuda_selective_scan_variant(sf_op_ctx *ctx, const sf_selective_scan_params *p, int variant,
                                                    sf_error *err) {
  SF_TRY(sf_cuda_selective_scan_check(p, "selective_scan", err));
  if (p->seqs.batch == 0) return SF_OK;
  if (p->d_state > SSCAN_DS) return sf_cuda_selective_scan_naive(ctx, p, err);
  if (variant != 1 && p->dtype == SF_BF16) return launch_chunked<__nv_bfloat16>(ctx, p, variant, err);
  if (variant != 1 && p->dtype == SF_F16) return launch_chunked<__half>(ctx, p, variant, err);
  if (variant >= 2)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "selective_scan: the chunked kernel takes bf16 and f16, got %s",
                   sf_dtype_name(p->dtype));
  SF_DISPATCH(p->dtype, "selective_scan", launch_seq<T>(ctx, p, err));
}

extern "C" SF_CUDA_OP(selective_scan, sf_selective_scan_params) {
  return sf_cuda_selective_scan_variant(ctx, p, 0, err);
}
