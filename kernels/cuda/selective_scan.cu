/* Mamba-1 selective scan. Two kernels:
 *
 * 1. The chunked parallel scan (bf16/f16, d_state <= 16), the op's path. A
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
  dim3 grid((unsigned)((p->dim + SC_CH - 1) / SC_CH), (unsigned)p->seqs.batch);
  if (kind == 3) selective_scan_chunked_kernel<T, 2, false><<<grid, SC_TH, 0, sf_cuda_stream(ctx)>>>(a);
  else if (kind == 5) selective_scan_chunked_kernel<T, 4, false><<<grid, SC_TH, 0, sf_cuda_stream(ctx)>>>(a);
  else selective_scan_chunked_kernel<T, 2, true><<<grid, SC_TH, 0, sf_cuda_stream(ctx)>>>(a);
  SF_CUDA_LAUNCHED("selective_scan_chunked_kernel");
  return SF_OK;
}

} // namespace

/* Tuning and reference entry (bench_mamba): variant 0 is what the op runs,
 * 1 the sequential kernel, 2 the chunked kernel (2 states a step,
 * software-pipelined), 3 the chunked kernel with 2 states a step, 5 with 4
 * states a step (bf16/f16; d_state > 16 runs the naive kernel in every
 * variant). */
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
