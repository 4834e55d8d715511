/* Attention prefill on Hopper (sm_90a): wgmma + TMA, FlashAttention-3's
 * structure. Built for sm_90a only (kernels/CMakeLists.txt compiles this
 * file in its own object library with -gencode arch=compute_90a,sm_90a and
 * defines SF_ATTN_WGMMA_SM90A=1; without a 90 in CMAKE_CUDA_ARCHITECTURES it
 * is compiled with the plain architectures, the kernel bodies are empty and
 * sf_attn_wgmma_usable() says no). attention.cu picks it on cc 9.0 devices
 * for bf16/f16, head_dim 64/128, when the tensor maps can describe the
 * cache, and falls back to mma.sync otherwise.
 *
 * One block per (query tile of BQ = 64 * NWG rows, head, sequence), blocks
 * ordered as in attention_mma.cuh (heads in L2-sized groups, longest causal
 * query tiles first). NWG + 1 warpgroups:
 *   - warpgroup 0, the producer: gives registers back (setmaxnreg.dec) and
 *     one thread streams K and V tiles of BK = 128 keys with TMA into a ring
 *     of STAGES shared-memory stages, K and V each with a "full" mbarrier
 *     (TMA transaction bytes) and an "empty" one (one arrival per consumer
 *     warp). The cache is a 4-D tensor map (channel, kv head, position,
 *     sequence) with the caller's strides, so any cache view with 16-byte
 *     aligned strides works; positions past max_len read as zeros.
 *   - warpgroups 1..NWG, the consumers (setmaxnreg.inc): each owns 64 query
 *     rows. Q is loaded once with 16-byte loads into the swizzled layout
 *     (rows past the sequence as zeros: the token count of the whole
 *     batch is not known on the host, so Q and out are not TMA tensors).
 *     S = Q K^T by wgmma m64n128k16 (Q and K from shared memory, K-major);
 *     mask only on tiles crossing the causal diagonal or the end of the
 *     keys; online softmax on the accumulators in registers (a row lives in
 *     a quad of lanes); P rounded to 16 bits in registers is the A operand
 *     of O += P V (wgmma with A from registers, V from shared memory through
 *     an MN-major descriptor: no transpose pass). With overlap (mode 1)
 *     the next tile's S = Q K^T is issued before this tile's P V, so the
 *     softmax of one tile runs while the tensor cores work on the other
 *     GEMMs; with ping-pong (mode 2, two consumer warpgroups) the
 *     warpgroups also take turns to issue their GEMMs.
 *   - V rows past the sequence's keys in the last tile are zeroed in shared
 *     memory before P V (P is 0 there, but 0 * NaN from an unwritten cache
 *     would be NaN).
 * GQA: query head h reads kv head h / group; varlen via seqs.start/len;
 * chunked prefill via past_len (query i at position past + i); lse =
 * m * scale + ln(l) per (token, head) when requested. A sequence with past +
 * len > max_len writes nothing and is reported by the next sync. */
#include <cuda.h>
#include <cudaTypedefs.h>
#include <math.h>

#include "attention_wgmma.cuh"
#include "cuda_common.cuh"

struct sf_wg_args {
  int n_heads, batch, group, heads_per_group, n_qblocks;
  float scale, scale_log2;
  int causal;
  const int64_t *start;
  const int32_t *len;
  const int32_t *past_len;
  const void *q;
  int64_t qts, qhs;
  int64_t max_len;
  void *out;
  int64_t ots, ohs;
  int out_pairs;
  float *lse;
  int64_t lts;
  sf_cuda_status *st;
};

template <int HD, int BK, int NWG, int STAGES>
struct sf_wg_cfg {
  static constexpr int BQ = 64 * NWG;
  static constexpr int THREADS = 128 * (NWG + 1);
  static constexpr int CH = HD / 64;            /* 64-channel chunks */
  static constexpr int Q_CHUNK = BQ * 128;      /* bytes of one chunk of Q */
  static constexpr int KV_CHUNK = BK * 128;     /* ... of K or V */
  static constexpr int Q_BYTES = BQ * HD * 2;
  static constexpr int TILE = BK * HD * 2;
  static constexpr int K_OFF = Q_BYTES;
  static constexpr int V_OFF = K_OFF + STAGES * TILE;
  static constexpr int BAR_OFF = V_OFF + STAGES * TILE;
  static constexpr int SMEM = BAR_OFF + 4 * STAGES * 8 + 1024; /* + slack to align the base to 1024 */
  /* registers per thread after setmaxnreg: the producer keeps 24, the
   * consumers share the rest of the 64K register file */
  static constexpr int CONSUMER_REGS = NWG == 2 ? 240 : 160;
  static_assert(HD == 64 || HD == 128, "head dim");
  static_assert(BK == 128, "S tiles are m64n128");
  static_assert(NWG == 2 || NWG == 3, "consumer warpgroups");
  static_assert(SMEM <= 227 * 1024, "shared memory");
};

template <typename T, int HD, int BK, int NWG, int STAGES, int MODE>
__global__ void __launch_bounds__(128 * (NWG + 1), 1)
sf_attention_wgmma_kernel(const __grid_constant__ CUtensorMap tmk, const __grid_constant__ CUtensorMap tmv,
                          const sf_wg_args a) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using C = sf_wg_cfg<HD, BK, NWG, STAGES>;
  using M = sf_wg::wg_mma<T>;
  constexpr bool OVL = MODE >= 1, PP = MODE == 2 && NWG == 2;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t sbase = ((uint32_t)__cvta_generic_to_shared(smem_raw) + 1023u) & ~1023u;

  /* Block -> (query block, head, sequence), as attention_mma.cuh. */
  const int n_bh = a.n_heads * a.batch;
  const int64_t lin = blockIdx.x;
  const int64_t per_group = (int64_t)a.n_qblocks * a.heads_per_group;
  const int gi = (int)(lin / per_group);
  const int within = (int)(lin - (int64_t)gi * per_group);
  const int gsize = min(a.heads_per_group, n_bh - gi * a.heads_per_group);
  const int qb = a.n_qblocks - 1 - within / gsize;
  const int bh = gi * a.heads_per_group + within % gsize;
  const int b = bh / a.n_heads, h = bh - b * a.n_heads;

  const int L = a.len[b];
  const int q0 = qb * C::BQ;
  if (q0 >= L) return;
  const int64_t past64 = a.past_len ? a.past_len[b] : 0;
  const int64_t kv_len64 = past64 + L;
  if (past64 < 0 || kv_len64 > a.max_len) {
    if (qb == 0 && h == 0 && threadIdx.x == 0) sf_cuda_record(a.st, SF_CST_ATTN_CACHE, b, kv_len64, a.max_len);
    return;
  }
  const int past = (int)past64, kv_len = (int)kv_len64;
  const int kh = h / a.group;

  /* tiles [0, n_full) need no mask, [n_full, n_tiles) do */
  const int min_lim = a.causal ? past + q0 : kv_len - 1;
  const int kv_end = a.causal ? min(past + q0 + C::BQ, kv_len) : kv_len;
  const int n_tiles = (kv_end + BK - 1) / BK;
  const int n_full = min((min_lim + 1) / BK, n_tiles);

  const uint32_t bars = sbase + C::BAR_OFF;
  auto full_k = [&](int s) { return bars + 8u * s; };
  auto full_v = [&](int s) { return bars + 8u * (STAGES + s); };
  auto empty_k = [&](int s) { return bars + 8u * (2 * STAGES + s); };
  auto empty_v = [&](int s) { return bars + 8u * (3 * STAGES + s); };
  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; s++) {
      sf_async::mbar_init(full_k(s), 1);
      sf_async::mbar_init(full_v(s), 1);
      sf_async::mbar_init(empty_k(s), 4 * NWG);
      sf_async::mbar_init(empty_v(s), 4 * NWG);
    }
    sf_async::mbar_init_fence();
  }
  __syncthreads();

  const int wg = threadIdx.x >> 7;
  if (wg == 0) {
    /* ---- producer ---- */
    sf_wg::reg_dealloc<24>();
    if (threadIdx.x == 0) {
      sf_wg::tma_prefetch_map(&tmk);
      sf_wg::tma_prefetch_map(&tmv);
      for (int it = 0; it < n_tiles; it++) {
        const int s = it % STAGES;
        const uint32_t ph = (uint32_t)(it / STAGES) & 1u;
        const uint32_t sk = sbase + C::K_OFF + s * C::TILE, sv = sbase + C::V_OFF + s * C::TILE;
        sf_async::mbar_wait(empty_k(s), ph ^ 1u);
        sf_async::mbar_arrive_expect_tx(full_k(s), C::TILE);
#pragma unroll
        for (int c = 0; c < C::CH; c++)
          sf_wg::tma_load_4d(sk + c * C::KV_CHUNK, &tmk, full_k(s), c * 64, kh, it * BK, b);
        sf_async::mbar_wait(empty_v(s), ph ^ 1u);
        sf_async::mbar_arrive_expect_tx(full_v(s), C::TILE);
#pragma unroll
        for (int c = 0; c < C::CH; c++)
          sf_wg::tma_load_4d(sv + c * C::KV_CHUNK, &tmv, full_v(s), c * 64, kh, it * BK, b);
      }
    }
  } else {
    /* ---- consumers ---- */
    sf_wg::reg_alloc<C::CONSUMER_REGS>();
    const int cw = wg - 1;
    const int tid = threadIdx.x - 128 * wg, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t = lane & 3;
    const int64_t s0 = a.start[b];

    /* Q rows [64 cw, 64 cw + 64) of the tile, swizzled, zeros past L. */
    const uint32_t sq = sbase + (uint32_t)(64 * cw * 128);
    {
      constexpr int UPR = HD / 8; /* 16-byte units per row */
      const T *qg = (const T *)a.q + (s0 + q0 + 64 * cw) * a.qts + (int64_t)h * a.qhs;
      uint4 v[64 * UPR / 128];
#pragma unroll
      for (int k = 0; k < 64 * UPR / 128; k++) {
        const int u = tid + 128 * k, r = u / UPR, j = u % UPR;
        v[k] = make_uint4(0u, 0u, 0u, 0u);
        if (q0 + 64 * cw + r < L) v[k] = *reinterpret_cast<const uint4 *>(qg + (int64_t)r * a.qts + j * 8);
      }
#pragma unroll
      for (int k = 0; k < 64 * UPR / 128; k++) {
        const int u = tid + 128 * k, r = u / UPR, j = u % UPR;
        sf_wg::st_shared_v4(sq + (j >> 3) * C::Q_CHUNK + r * 128 + (((j & 7) ^ (r & 7)) << 4), v[k]);
      }
      sf_wg::fence_proxy_async();
      sf_async::named_bar_sync(1 + cw, 128);
    }

    /* key kpos is seen by row hr iff kpos <= lim[hr] */
    int lim[2];
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
      const int pos = past + q0 + 64 * cw + 16 * warp + g + 8 * hr;
      lim[hr] = a.causal ? min(pos, kv_len - 1) : kv_len - 1;
    }
    const float sl2 = a.scale_log2;

    float o[HD / 2];
#pragma unroll
    for (int i = 0; i < HD / 2; i++) o[i] = 0.0f;
    float s[BK / 2];
#pragma unroll
    for (int i = 0; i < BK / 2; i++) s[i] = 0.0f;
    uint32_t p[BK / 16][4];
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f}, alpha[2] = {1.0f, 1.0f};

    auto qk = [&](int st) {
      const uint32_t sk = sbase + C::K_OFF + st * C::TILE;
#pragma unroll
      for (int ks = 0; ks < HD / 16; ks++)
        M::ss_n128(s, sf_wg::desc(sq + (ks >> 2) * C::Q_CHUNK + (ks & 3) * 32, 16, 1024),
                   sf_wg::desc(sk + (ks >> 2) * C::KV_CHUNK + (ks & 3) * 32, 16, 1024), ks > 0);
    };
    auto pv = [&](int st) {
      const uint32_t sv = sbase + C::V_OFF + st * C::TILE;
#pragma unroll
      for (int kk = 0; kk < BK / 16; kk++) {
        const uint64_t dv = sf_wg::desc(sv + kk * 16 * 128, C::KV_CHUNK, 1024);
        if constexpr (HD == 128) M::rs_n128(o, p[kk], dv);
        else M::rs_n64(o, p[kk], dv);
      }
    };
    /* mask (where needed) and online softmax of tile it in s; sets alpha */
    auto softmax = [&](int it) {
      if (it >= n_full) {
        const int k0 = it * BK;
#pragma unroll
        for (int j = 0; j < BK / 8; j++)
#pragma unroll
          for (int e = 0; e < 4; e++)
            if (k0 + 8 * j + 2 * t + (e & 1) > lim[e >> 1]) s[4 * j + e] = -INFINITY;
      }
#pragma unroll
      for (int hr = 0; hr < 2; hr++) {
        float mx = m[hr];
#pragma unroll
        for (int j = 0; j < BK / 8; j++) mx = fmaxf(mx, fmaxf(s[4 * j + 2 * hr], s[4 * j + 2 * hr + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float msc = mx == -INFINITY ? 0.0f : mx * sl2;
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < BK / 8; j++) {
          const float p0 = sf_wg::ex2(fmaf(s[4 * j + 2 * hr], sl2, -msc));
          const float p1 = sf_wg::ex2(fmaf(s[4 * j + 2 * hr + 1], sl2, -msc));
          s[4 * j + 2 * hr] = p0;
          s[4 * j + 2 * hr + 1] = p1;
          sum += p0 + p1;
        }
        alpha[hr] = sf_wg::ex2(m[hr] * sl2 - msc); /* 0 while m was -inf */
        l[hr] = l[hr] * alpha[hr] + sum;
        m[hr] = mx;
      }
    };
    auto rescale = [&]() {
#pragma unroll
      for (int j = 0; j < HD / 8; j++) {
        o[4 * j] *= alpha[0];
        o[4 * j + 1] *= alpha[0];
        o[4 * j + 2] *= alpha[1];
        o[4 * j + 3] *= alpha[1];
      }
    };
    auto to_p = [&]() {
      using T16 = T;
#pragma unroll
      for (int kk = 0; kk < BK / 16; kk++) {
        p[kk][0] = sf_wg::pack2((T16 *)nullptr, s[8 * kk], s[8 * kk + 1]);
        p[kk][1] = sf_wg::pack2((T16 *)nullptr, s[8 * kk + 2], s[8 * kk + 3]);
        p[kk][2] = sf_wg::pack2((T16 *)nullptr, s[8 * kk + 4], s[8 * kk + 5]);
        p[kk][3] = sf_wg::pack2((T16 *)nullptr, s[8 * kk + 6], s[8 * kk + 7]);
      }
    };
    auto pin_s = [&]() {
#pragma unroll
      for (int i = 0; i < BK / 2; i++) sf_wg::pin(s[i]);
    };
    auto pin_o = [&]() {
#pragma unroll
      for (int i = 0; i < HD / 2; i++) sf_wg::pin(o[i]);
    };
    auto pin_p = [&]() {
#pragma unroll
      for (int kk = 0; kk < BK / 16; kk++)
#pragma unroll
        for (int r = 0; r < 4; r++) sf_wg::pin(p[kk][r]);
    };
    /* one arrival per consumer warp once its wgmma reading the stage are done */
    auto release = [&](uint32_t bar) {
      if (lane == 0) sf_async::mbar_arrive(bar);
    };
    /* zero V rows [kv_len - k0, BK) of stage st (last tile only) */
    auto zero_v_tail = [&](int it, int st) {
      const int k0 = it * BK;
      if (k0 + BK <= kv_len) return;
      const uint32_t sv = sbase + C::V_OFF + st * C::TILE;
      const int r0 = kv_len - k0, units = (BK - r0) * C::CH * 8;
      for (int u = tid; u < units; u += 128) {
        const int r = r0 + u / (C::CH * 8), c = (u >> 3) % C::CH, j = u & 7;
        sf_wg::st_shared_v4(sv + c * C::KV_CHUNK + r * 128 + j * 16, make_uint4(0u, 0u, 0u, 0u));
      }
      sf_wg::fence_proxy_async();
      sf_async::named_bar_sync(1 + cw, 128);
    };

    /* Ping-pong (PP): the two consumer warpgroups take turns to issue their
     * GEMMs (named barriers 3 and 4, each completed by one warpgroup's
     * bar.sync and the other's bar.arrive), so that one's softmax runs
     * while the other's GEMMs hold the tensor cores. Warpgroup 1 lets
     * warpgroup 0 go first; both issue n_tiles + 1 batches, and warpgroup 0
     * takes the last pass at the end so that no arrival is left over. */
    auto turn_wait = [&]() {
      if constexpr (PP) sf_async::named_bar_sync(3 + cw, 256);
    };
    auto turn_pass = [&]() {
      if constexpr (PP) sf_async::named_bar_arrive(3 + (cw ^ 1), 256);
    };
    if constexpr (PP)
      if (cw == 1) sf_async::named_bar_arrive(3, 256);

    if constexpr (OVL) {
      /* tile 0: S, softmax, P */
      sf_async::mbar_wait(full_k(0), 0);
      turn_wait();
      sf_wg::wg_fence();
      qk(0);
      sf_wg::wg_commit();
      turn_pass();
      sf_wg::wg_wait<0>();
      pin_s();
      release(empty_k(0));
      softmax(0);
      to_p();
      for (int it = 1; it < n_tiles; it++) {
        const int st = it % STAGES, sp = (it - 1) % STAGES;
        sf_async::mbar_wait(full_k(st), (uint32_t)(it / STAGES) & 1u);
        sf_async::mbar_wait(full_v(sp), (uint32_t)((it - 1) / STAGES) & 1u);
        turn_wait();
        sf_wg::wg_fence();
        qk(st);
        sf_wg::wg_commit();
        pv(sp);
        sf_wg::wg_commit();
        turn_pass();
        sf_wg::wg_wait<1>(); /* S of tile it done; P V of it - 1 may run on */
        pin_s();
        release(empty_k(st));
        softmax(it);
        sf_wg::wg_wait<0>();
        pin_o();
        pin_p();
        release(empty_v(sp));
        rescale();
        to_p();
      }
      const int it = n_tiles - 1, st = it % STAGES;
      sf_async::mbar_wait(full_v(st), (uint32_t)(it / STAGES) & 1u);
      zero_v_tail(it, st);
      turn_wait();
      sf_wg::wg_fence();
      pv(st);
      sf_wg::wg_commit();
      turn_pass();
      sf_wg::wg_wait<0>();
      pin_o();
      pin_p();
      release(empty_v(st));
      if constexpr (PP)
        if (cw == 0) sf_async::named_bar_sync(3, 256);
    } else {
      for (int it = 0; it < n_tiles; it++) {
        const int st = it % STAGES;
        const uint32_t ph = (uint32_t)(it / STAGES) & 1u;
        sf_async::mbar_wait(full_k(st), ph);
        sf_wg::wg_fence();
        qk(st);
        sf_wg::wg_commit();
        sf_wg::wg_wait<0>();
        pin_s();
        release(empty_k(st));
        softmax(it);
        rescale();
        to_p();
        sf_async::mbar_wait(full_v(st), ph);
        zero_v_tail(it, st);
        sf_wg::wg_fence();
        pv(st);
        sf_wg::wg_commit();
        sf_wg::wg_wait<0>();
        pin_o();
        pin_p();
        release(empty_v(st));
      }
    }

    /* epilogue: O / l, lse */
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
      float sum = l[hr];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const int i = q0 + 64 * cw + 16 * warp + g + 8 * hr;
      if (i >= L) continue;
      const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
      const int64_t tok = s0 + i;
      T *orow = (T *)a.out + tok * a.ots + (int64_t)h * a.ohs;
      if (a.out_pairs) {
#pragma unroll
        for (int j = 0; j < HD / 8; j++)
          *reinterpret_cast<uint32_t *>(orow + 8 * j + 2 * t) =
              sf_wg::pack2((T *)nullptr, o[4 * j + 2 * hr] * inv, o[4 * j + 2 * hr + 1] * inv);
      } else {
#pragma unroll
        for (int j = 0; j < HD / 8; j++) {
          orow[8 * j + 2 * t] = sf_from_f<T>(o[4 * j + 2 * hr] * inv);
          orow[8 * j + 2 * t + 1] = sf_from_f<T>(o[4 * j + 2 * hr + 1] * inv);
        }
      }
      if (a.lse && t == 0) a.lse[tok * a.lts + h] = m[hr] * a.scale + logf(sum);
    }
  }
#endif
}

/* ---- host side -------------------------------------------------------------- */

/* variant: head dim, consumer warpgroups, stages, mode (0: one tile at a
 * time; 1: overlap; 2: overlap + ping-pong). Measured on an H100 in
 * bench/notes-attention.md. */
#define SF_AWG_D128_VARIANTS(X) \
  X(0, 128, 2, 2, 1)            \
  X(1, 128, 2, 2, 0)            \
  X(2, 128, 2, 3, 1)            \
  X(3, 128, 2, 2, 2)
#define SF_AWG_D64_VARIANTS(X) \
  X(0, 64, 2, 3, 1)            \
  X(1, 64, 3, 2, 1)            \
  X(2, 64, 2, 2, 0)            \
  X(3, 64, 3, 3, 1)            \
  X(4, 64, 2, 3, 2)

/* hd128 v0: 607-669 TFLOP/s causal at 8k-16k; hd64 v3 (192-row tiles,
 * 3 stages): 458-482, 3-7% over v0 */
enum { SF_AWG_D128_DEFAULT = 0, SF_AWG_D64_DEFAULT = 3 };

int sf_attn_wgmma_default(int head_dim) { return head_dim == 64 ? SF_AWG_D64_DEFAULT : SF_AWG_D128_DEFAULT; }

sf_attn_mma_info sf_attn_wgmma_info(int head_dim, int variant) {
#define X(v, HD, NWG, ST, MO)                                                                     \
  case v:                                                                                          \
    return sf_attn_mma_info{64 * NWG, 128, 4 * (NWG + 1),                                          \
                            SF_AWG_FLAG | (MO >= 1 ? SF_AWG_OVERLAP : 0) | (MO == 2 ? SF_AWG_PINGPONG : 0), 1};
  if (head_dim == 128) {
    switch (variant) { SF_AWG_D128_VARIANTS(X) }
  } else if (head_dim == 64) {
    switch (variant) { SF_AWG_D64_VARIANTS(X) }
  }
#undef X
  return sf_attn_mma_info{0, 0, 0, 0, 0};
}

/* cuTensorMapEncodeTiled through the runtime's driver entry point (no
 * -lcuda); NULL when the driver has none. */
static PFN_cuTensorMapEncodeTiled_v12000 sf_wg_encoder(void) {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = []() -> PFN_cuTensorMapEncodeTiled_v12000 {
    void *f = nullptr;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) !=
            cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      (void)cudaGetLastError();
      return nullptr;
    }
    return (PFN_cuTensorMapEncodeTiled_v12000)f;
  }();
  return fn;
}

bool sf_attn_wgmma_usable(sf_op_ctx *ctx) {
#if defined(SF_ATTN_WGMMA_SM90A) && SF_ATTN_WGMMA_SM90A
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, ctx->device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, ctx->device) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  if (major != 9 || minor != 0) return false; /* sm_90a code runs on cc 9.0 only */
  /* the image of this file is sm_90a only (CMake): present iff it loads */
  cudaFuncAttributes fa;
  if (cudaFuncGetAttributes(&fa, (const void *)sf_attention_wgmma_kernel<__nv_bfloat16, 128, 128, 2, 2, 1>) !=
      cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return fa.binaryVersion == 90 && sf_wg_encoder() != nullptr;
#else
  (void)ctx;
  return false;
#endif
}

static constexpr bool sf_wg_is_half(__half *) { return true; }
static constexpr bool sf_wg_is_half(__nv_bfloat16 *) { return false; }

/* The K or V tensor map: (channel, kv head, position, sequence), boxes of
 * 64 channels x 1 head x BK positions x 1 sequence, 128-byte swizzle. A
 * dimension of extent 1 gets a harmless stride (the caller's may be 0). */
template <typename T>
static bool sf_wg_encode(CUtensorMap *map, const void *base, const sf_attention_params *p, int hd, int bk) {
  const PFN_cuTensorMapEncodeTiled_v12000 enc = sf_wg_encoder();
  if (!enc) return false;
  const sf_kv_cache_view *c = &p->cache;
  if (c->head_stride < 0 || c->pos_stride <= 0 || c->batch_stride < 0) return false;
  cuuint64_t dims[4] = {(cuuint64_t)hd, (cuuint64_t)p->n_kv_heads, (cuuint64_t)c->max_len,
                        (cuuint64_t)p->seqs.batch};
  cuuint64_t strides[3] = {(cuuint64_t)(p->n_kv_heads > 1 ? c->head_stride : hd) * 2,
                           (cuuint64_t)c->pos_stride * 2,
                           (cuuint64_t)(p->seqs.batch > 1 ? c->batch_stride : c->pos_stride) * 2};
  cuuint32_t box[4] = {64, 1, (cuuint32_t)bk, 1};
  cuuint32_t es[4] = {1, 1, 1, 1};
  const CUtensorMapDataType dt = sf_wg_is_half((T *)nullptr) ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  const CUresult r = enc(map, dt, 4, const_cast<void *>(base), dims, strides, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE,
                         CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                         CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS;
}

template <typename T, int HD, int NWG, int STAGES, int MODE>
static sf_status sf_wg_run(sf_op_ctx *ctx, const sf_attention_params *p, sf_error *err) {
  constexpr int BK = 128;
  using C = sf_wg_cfg<HD, BK, NWG, STAGES>;
  auto kern = sf_attention_wgmma_kernel<T, HD, BK, NWG, STAGES, MODE>;
  if (!sf_attn_wgmma_usable(ctx))
    return sf_fail(err, SF_ERR_UNSUPPORTED, "attention: the wgmma kernels need an sm_90a build on a cc 9.0 device");
  alignas(64) CUtensorMap tmk, tmv;
  if (!sf_wg_encode<T>(&tmk, p->cache.k, p, HD, BK) || !sf_wg_encode<T>(&tmv, p->cache.v, p, HD, BK))
    return sf_fail(err, SF_ERR_UNSUPPORTED, "attention: the cache view does not fit a TMA tensor map");
  SF_TRY(sf_cuda_smem_optin(ctx, (const void *)kern, (size_t)C::SMEM, "attention", err));
  sf_attn_grid gr; /* as the mma.sync kernels: heads grouped to share L2 */
  SF_TRY(sf_attn_grid_of(p, C::BQ, HD, &gr, err));
  const int64_t nqb = gr.nqb, hpg = gr.hpg, blocks = gr.blocks;
  const int group = gr.group;
  sf_wg_args a;
  a.n_heads = p->n_heads, a.batch = p->seqs.batch, a.group = group, a.heads_per_group = (int)hpg;
  a.n_qblocks = (int)nqb;
  a.scale = p->scale, a.scale_log2 = p->scale * 1.4426950408889634f, a.causal = p->causal;
  a.start = p->seqs.start, a.len = p->seqs.len, a.past_len = p->past_len;
  a.q = p->q, a.qts = p->q_token_stride, a.qhs = p->q_head_stride;
  a.max_len = p->cache.max_len;
  a.out = p->out, a.ots = p->out_token_stride, a.ohs = p->out_head_stride;
  a.out_pairs = ((uintptr_t)p->out % 4 == 0) && p->out_token_stride % 2 == 0 && p->out_head_stride % 2 == 0;
  a.lse = p->lse, a.lts = p->lse_token_stride;
  a.st = sf_cuda_impl_of(ctx)->d_status;
  kern<<<(unsigned)blocks, C::THREADS, C::SMEM, sf_cuda_stream(ctx)>>>(tmk, tmv, a);
  SF_CUDA_LAUNCHED("sf_attention_wgmma_kernel");
  return SF_OK;
}

sf_status sf_attn_wgmma(sf_op_ctx *ctx, const sf_attention_params *p, int variant, sf_error *err) {
#define X(v, HD, NWG, ST, MO) \
  case v: return sf_wg_run<T, HD, NWG, ST, MO>(ctx, p, err);
  if (p->dtype == SF_BF16 || p->dtype == SF_F16) {
    const bool f16 = p->dtype == SF_F16;
    if (p->head_dim == 128) {
      if (f16) {
        typedef __half T;
        switch (variant) { SF_AWG_D128_VARIANTS(X) }
      } else {
        typedef __nv_bfloat16 T;
        switch (variant) { SF_AWG_D128_VARIANTS(X) }
      }
    } else if (p->head_dim == 64) {
      if (f16) {
        typedef __half T;
        switch (variant) { SF_AWG_D64_VARIANTS(X) }
      } else {
        typedef __nv_bfloat16 T;
        switch (variant) { SF_AWG_D64_VARIANTS(X) }
      }
    }
  }
#undef X
  return sf_fail(err, SF_ERR_UNSUPPORTED, "attention: no wgmma variant %d for head_dim %d %s", variant,
                 (int)p->head_dim, sf_dtype_name(p->dtype));
}
