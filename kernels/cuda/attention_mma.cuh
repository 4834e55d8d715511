/* Attention prefill on tensor cores (FlashAttention-2's algorithm with
 * mma.sync, sm_80+), shared by attention_mma_d64.cu and attention_mma_d128.cu
 * (one file per head dim so that they compile in parallel). CUDA C++,
 * included by those .cu files only.
 *
 * A block (WARPS warps) owns BQ = WARPS * 16 * MT query rows of one (head,
 * sequence); warp w owns rows [w * 16 * MT, (w + 1) * 16 * MT), MT m16 tiles
 * of 16 rows. The cache is walked in tiles of BK keys:
 *   - K and V tiles go through shared memory with cp.async, double buffered
 *     (tile i + 1 in flight while tile i is computed), rows of HD 16-bit
 *     values with their 16-byte chunks XOR-swizzled by (row & 7), so that
 *     ldmatrix (8 rows x 16 bytes per matrix) and the cp.async writes are
 *     free of bank conflicts. Keys past the sequence are zero-filled.
 *   - S = Q K^T with mma.sync.m16n8k16 (16-bit inputs, fp32 accumulators);
 *     Q's A fragments stay in registers for the whole block (QREG) or are
 *     re-read from shared memory each tile; K's B fragments by ldmatrix.
 *   - online softmax in registers on the accumulators: a row lives in one
 *     quad of lanes (two rows per m16 tile per lane), so its max needs two
 *     shuffles; p = exp2(s * scale * log2(e) - m * scale * log2(e)) (one FFMA
 *     and one MUFU.EX2 per score); the running sum stays per lane until the
 *     end.
 *   - P is rounded to the input type in registers and used directly as the
 *     A operand of O += P V (the m16n8 accumulator layout of two adjacent
 *     key blocks is the m16k16 A layout); V's B fragments by ldmatrix.trans.
 *   - causal: tiles past the block's last query are never loaded; only
 *     tiles crossing the diagonal (or the end of the keys) are masked, and a
 *     warp whose rows all lie before a tile skips its arithmetic.
 * Blocks are numbered so that heads go in groups whose K/V fit in L2 and,
 * inside a group, query blocks run longest first (causal balance).
 * Output is divided by the row sum and written as pairs (or single values
 * for odd strides); lse = m * scale + log(l).
 *
 * Requirements (the launcher checks; attention.cu falls back otherwise):
 * head_dim == HD, 16-bit types, q/k/v 16-byte aligned with strides that are
 * multiples of 8 elements, scale > 0, cache.max_len < 2^31. */
#ifndef SCANFLASH_KERNELS_CUDA_ATTENTION_MMA_CUH
#define SCANFLASH_KERNELS_CUDA_ATTENTION_MMA_CUH

#include "cuda_common.cuh"
#include "ssd_mma.cuh"

/* ---- the variants ------------------------------------------------------ */

/* Each head dim has a table of variants (attention_mma_d64.cu / _d128.cu);
 * sf_attn_mma_default_*() names the one the op runs. Variants with f16 = 0
  * are compiled for bf16 only (kept for tuning with bench_attention). */
struct sf_attn_mma_info {
  int block_q, block_k, warps, flags, f16;
};

/* Runs variant `variant` of the head_dim 64 / 128 kernel. Returns
 * SF_ERR_UNSUPPORTED (and launches nothing) for a variant that does not
 * exist for this dtype. */
sf_status sf_attn_mma_d64(sf_op_ctx *ctx, const sf_attention_params *p, int variant, sf_error *err);
sf_status sf_attn_mma_d128(sf_op_ctx *ctx, const sf_attention_params *p, int variant, sf_error *err);
/* The tiles of a variant (block_q 0 when it does not exist). */
sf_attn_mma_info sf_attn_mma_info_d64(int variant);
sf_attn_mma_info sf_attn_mma_info_d128(int variant);
int sf_attn_mma_default_d64(void);
int sf_attn_mma_default_d128(void);

/* ---- device helpers ----------------------------------------------------- */

namespace sf_amma {

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
/* 16 bytes global -> shared; src_bytes 0 writes zeros (reads nothing). */
__device__ __forceinline__ void cp16(uint32_t saddr, const void *g, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(saddr), "l"(g), "r"(src_bytes));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

}  // namespace sf_amma

/* ---- the kernel ----------------------------------------------------------- */

template <int HD, int WARPS, int MT, int BK, bool QREG>
struct sf_amma_cfg {
  static constexpr int THREADS = WARPS * 32;
  static constexpr int BQ = WARPS * 16 * MT;
  static constexpr int ROWB = HD * 2;          /* bytes per smem row */
  static constexpr int CPR = HD / 8;           /* 16-byte chunks per row */
  static constexpr int KSTEPS = HD / 16;       /* k steps of S = Q K^T */
  static constexpr int NB = BK / 8;            /* n8 blocks of S */
  static constexpr int DB = HD / 8;            /* n8 blocks of O */
  static constexpr int TILE_BYTES = BK * ROWB; /* one K or V tile */
  static constexpr int Q_BYTES = BQ * ROWB;
  /* [K0][V0][K1][V1], Q after V0 (QREG: aliased with K1/V1, read into
   * registers before the first load of tile 1) or after V1. */
  static constexpr int Q_OFF = QREG ? 2 * TILE_BYTES : 4 * TILE_BYTES;
  static constexpr int SMEM = QREG ? 2 * TILE_BYTES + (Q_BYTES > 2 * TILE_BYTES ? Q_BYTES : 2 * TILE_BYTES)
                                   : 4 * TILE_BYTES + Q_BYTES;
  static constexpr int LD_ROWS = THREADS / CPR; /* rows one pass of cp.async covers */
  static_assert(THREADS % CPR == 0 && LD_ROWS % 8 == 0, "load pattern");
  static_assert(BK % LD_ROWS == 0 && BQ % LD_ROWS == 0, "tile vs load pattern");
  static_assert(BK % 16 == 0 && HD % 16 == 0, "mma shapes");
};

/* Loads `rows` rows (rows % LD_ROWS == 0) of HD values from g (row stride
 * rs elements) into the swizzled tile at s; rows at or past `valid` are
 * zero-filled. */
template <int HD, int THREADS, int ROWS>
__device__ __forceinline__ void sf_amma_load_tile(uint32_t s, const void *g0, int64_t rs, int valid, int tid) {
  constexpr int CPR = HD / 8, LD_ROWS = THREADS / CPR, ROWB = HD * 2;
  const int c = tid % CPR, r0 = tid / CPR;
  const uint32_t soff = (uint32_t)(r0 * ROWB + ((c ^ (r0 & 7)) << 4));
  const char *g = (const char *)g0 + (int64_t)c * 16;
#pragma unroll
  for (int j = 0; j < ROWS / LD_ROWS; j++) {
    const int r = r0 + j * LD_ROWS;
    const bool ok = r < valid;
    const char *src = ok ? g + (int64_t)r * rs * 2 : (const char *)g0;
    sf_amma::cp16(s + soff + (uint32_t)(j * LD_ROWS * ROWB), src, ok ? 16 : 0);
  }
}

/* FLAGS: SF_AMMA_SYNC1 loads K and V of tile i + 1 together at the top of
 * tile i (one barrier per tile instead of two); SF_AMMA_SKIP skips the
 * rescale of O and l when no row maximum of the warp moved (alpha == 1
 * exactly then). */
enum { SF_AMMA_SYNC1 = 1, SF_AMMA_SKIP = 2 };

template <typename T, int HD, int WARPS, int MT, int BK, bool QREG, int MINB, int FLAGS>
__global__ void __launch_bounds__(WARPS * 32, MINB)
sf_attention_mma_kernel(int n_heads, int batch, int group, int heads_per_group, int n_qblocks, float scale,
                        float scale_log2, int causal, const int64_t *__restrict__ start,
                        const int32_t *__restrict__ len, const int32_t *__restrict__ past_len,
                        const T *__restrict__ q, int64_t qts, int64_t qhs, const T *__restrict__ ck,
                        const T *__restrict__ cv, int64_t cbs, int64_t cps, int64_t chs, int64_t max_len,
                        T *__restrict__ out, int64_t ots, int64_t ohs, int out_pairs, float *__restrict__ lse,
                        int64_t lts, sf_cuda_status *st) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using C = sf_amma_cfg<HD, WARPS, MT, BK, QREG>;
  using M = sfm<T>; /* mma.sync m16n8k16 and 16-bit packing (ssd_mma.cuh) */
  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t sbase = (uint32_t)__cvta_generic_to_shared(smem);

  /* Block -> (query block, head, sequence): groups of heads_per_group
   * (head, sequence) pairs; inside a group, query blocks longest first. */
  const int n_bh = n_heads * batch;
  const int64_t lin = blockIdx.x;
  const int64_t per_group = (int64_t)n_qblocks * heads_per_group;
  const int gi = (int)(lin / per_group);
  const int within = (int)(lin - (int64_t)gi * per_group);
  const int gsize = min(heads_per_group, n_bh - gi * heads_per_group);
  const int qb = n_qblocks - 1 - within / gsize;
  const int bh = gi * heads_per_group + within % gsize;
  const int b = bh / n_heads, h = bh - b * n_heads;

  const int L = len[b];
  const int q0 = qb * C::BQ;
  if (q0 >= L) return;
  const int64_t past64 = past_len ? past_len[b] : 0;
  const int64_t kv_len64 = past64 + L;
  if (past64 < 0 || kv_len64 > max_len) {
    if (qb == 0 && h == 0 && threadIdx.x == 0) sf_cuda_record(st, SF_CST_ATTN_CACHE, b, kv_len64, max_len);
    return;
  }
  const int past = (int)past64, kv_len = (int)kv_len64;
  const int64_t s0 = start[b];
  const int kh = h / group;
  const T *kb = ck + (int64_t)b * cbs + (int64_t)kh * chs;
  const T *vb = cv + (int64_t)b * cbs + (int64_t)kh * chs;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3, x7 = lane & 7;

  /* tiles: [0, n_full) need no mask, [n_full, n_tiles) do */
  const int min_lim = causal ? past + q0 : kv_len - 1;
  const int kv_end = causal ? min(past + q0 + C::BQ, kv_len) : kv_len;
  const int n_tiles = (kv_end + BK - 1) / BK;
  const int n_full = min((min_lim + 1) / BK, n_tiles);
  const int warp_last = causal ? past + q0 + (warp + 1) * 16 * MT - 1 : 0x7fffffff;

  /* stage j: K at sbase + j * 2 * TILE_BYTES, V right after it */
  const uint32_t sQ = sbase + C::Q_OFF;

  constexpr bool SYNC1 = (FLAGS & SF_AMMA_SYNC1) != 0, SKIP = (FLAGS & SF_AMMA_SKIP) != 0;
  /* prologue: Q, K0 | V0 (SYNC1: one group) */
  sf_amma_load_tile<HD, C::THREADS, C::BQ>(sQ, q + (s0 + q0) * qts + (int64_t)h * qhs, qts, L - q0, tid);
  sf_amma_load_tile<HD, C::THREADS, BK>(sbase, kb, cps, kv_len, tid);
  if constexpr (!SYNC1) sf_amma::cp_commit();
  sf_amma_load_tile<HD, C::THREADS, BK>(sbase + C::TILE_BYTES, vb, cps, kv_len, tid);
  sf_amma::cp_commit();

  /* per-lane ldmatrix offsets (bytes, before the chunk term) */
  const int row_w = warp * 16 * MT;
  const uint32_t q_lane = (uint32_t)((row_w + ((lane >> 3) & 1) * 8 + x7) * C::ROWB);
  const int q_c = lane >> 4;
  const uint32_t k_lane = (uint32_t)((((lane >> 4) & 1) * 8 + x7) * C::ROWB);
  const int k_c = (lane >> 3) & 1;
  const uint32_t v_lane = (uint32_t)((((lane >> 3) & 1) * 8 + x7) * C::ROWB);
  const int v_c = lane >> 4;

  uint32_t qf[QREG ? MT : 1][QREG ? C::KSTEPS : 1][4];
  if constexpr (QREG) {
    sf_amma::cp_wait<0>();
    __syncthreads();
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
      for (int ks = 0; ks < C::KSTEPS; ks++)
        sf_amma::ldsm_x4(qf[mt][ks], sQ + q_lane + mt * 16 * C::ROWB + (((2 * ks + q_c) ^ x7) << 4));
    __syncthreads(); /* Q's smem is K1/V1's */
  }

  /* row limits: key kpos is seen by row r iff kpos <= lim[r] */
  int lim[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; mt++)
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
      const int pos = past + q0 + row_w + mt * 16 + g + 8 * hr;
      lim[mt][hr] = causal ? min(pos, kv_len - 1) : kv_len - 1;
    }

  float o[MT][C::DB][4];
  float m[MT][2], l[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; mt++) {
#pragma unroll
    for (int d = 0; d < C::DB; d++) o[mt][d][0] = o[mt][d][1] = o[mt][d][2] = o[mt][d][3] = 0.0f;
    m[mt][0] = m[mt][1] = -INFINITY;
    l[mt][0] = l[mt][1] = 0.0f;
  }

  for (int it = 0; it < n_tiles; it++) {
    const int k0 = it * BK;
    const uint32_t sK = sbase + (uint32_t)((it & 1) * 2 * C::TILE_BYTES), sV = sK + C::TILE_BYTES;
    const uint32_t sKn = sbase + (uint32_t)((~it & 1) * 2 * C::TILE_BYTES), sVn = sKn + C::TILE_BYTES;
    if constexpr (SYNC1) sf_amma::cp_wait<0>();
    else sf_amma::cp_wait<1>();
    __syncthreads(); /* K[it] (SYNC1: and V[it]) visible; everyone is done with tile it-1 */
    if (it + 1 < n_tiles) {
      sf_amma_load_tile<HD, C::THREADS, BK>(sKn, kb + (int64_t)(k0 + BK) * cps, cps, kv_len - k0 - BK,
                                            tid);
      if constexpr (SYNC1)
        sf_amma_load_tile<HD, C::THREADS, BK>(sVn, vb + (int64_t)(k0 + BK) * cps, cps, kv_len - k0 - BK,
                                              tid);
    }
    sf_amma::cp_commit();

    const bool active = k0 <= warp_last;
    float s[MT][C::NB][4];
    if (active) {
#pragma unroll
      for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int nb = 0; nb < C::NB; nb++) s[mt][nb][0] = s[mt][nb][1] = s[mt][nb][2] = s[mt][nb][3] = 0.0f;
#pragma unroll
      for (int ks = 0; ks < C::KSTEPS; ks++) {
        uint32_t qa[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
          if constexpr (QREG) {
#pragma unroll
            for (int r = 0; r < 4; r++) qa[mt][r] = qf[mt][ks][r];
          } else {
            sf_amma::ldsm_x4(qa[mt], sQ + q_lane + mt * 16 * C::ROWB + (((2 * ks + q_c) ^ x7) << 4));
          }
        }
#pragma unroll
        for (int np = 0; np < C::NB / 2; np++) {
          uint32_t kf[4];
          sf_amma::ldsm_x4(kf, sK + k_lane + np * 16 * C::ROWB + (((2 * ks + k_c) ^ x7) << 4));
#pragma unroll
          for (int mt = 0; mt < MT; mt++) {
            M::mma(s[mt][2 * np], qa[mt], kf[0], kf[1]);
            M::mma(s[mt][2 * np + 1], qa[mt], kf[2], kf[3]);
          }
        }
      }
      if (it >= n_full) {
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
          for (int nb = 0; nb < C::NB; nb++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
              const int kpos = k0 + nb * 8 + 2 * t + (e & 1);
              if (kpos > lim[mt][e >> 1]) s[mt][nb][e] = -INFINITY;
            }
      }
      /* online softmax: row maxima (one quad per row), then p and l */
      float mx[MT][2];
      bool moved = false;
#pragma unroll
      for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
          float v = m[mt][hr];
#pragma unroll
          for (int nb = 0; nb < C::NB; nb++) v = fmaxf(v, fmaxf(s[mt][nb][2 * hr], s[mt][nb][2 * hr + 1]));
          v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
          v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
          moved |= v > m[mt][hr];
          mx[mt][hr] = v;
        }
      if constexpr (SKIP) moved = __any_sync(0xffffffffu, moved);
#pragma unroll
      for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
          const float msc = mx[mt][hr] == -INFINITY ? 0.0f : mx[mt][hr] * scale_log2;
          float sum = 0.0f;
#pragma unroll
          for (int nb = 0; nb < C::NB; nb++) {
            const float p0 = sf_amma::ex2(fmaf(s[mt][nb][2 * hr], scale_log2, -msc));
            const float p1 = sf_amma::ex2(fmaf(s[mt][nb][2 * hr + 1], scale_log2, -msc));
            s[mt][nb][2 * hr] = p0;
            s[mt][nb][2 * hr + 1] = p1;
            sum += p0 + p1;
          }
          if (!SKIP || moved) {
            /* alpha = 1 exactly where the maximum did not move */
            const float alpha = sf_amma::ex2(m[mt][hr] * scale_log2 - msc);
            l[mt][hr] *= alpha;
#pragma unroll
            for (int d = 0; d < C::DB; d++) {
              o[mt][d][2 * hr] *= alpha;
              o[mt][d][2 * hr + 1] *= alpha;
            }
          }
          l[mt][hr] += sum;
          m[mt][hr] = mx[mt][hr];
        }
    }

    if constexpr (!SYNC1) {
      sf_amma::cp_wait<1>();
      __syncthreads(); /* V[it] visible */
      if (it + 1 < n_tiles)
        sf_amma_load_tile<HD, C::THREADS, BK>(sVn, vb + (int64_t)(k0 + BK) * cps, cps, kv_len - k0 - BK,
                                              tid);
      sf_amma::cp_commit();
    }

    if (active) {
#pragma unroll
      for (int kk = 0; kk < BK / 16; kk++) {
        uint32_t pa[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
          pa[mt][0] = M::pack(s[mt][2 * kk][0], s[mt][2 * kk][1]);
          pa[mt][1] = M::pack(s[mt][2 * kk][2], s[mt][2 * kk][3]);
          pa[mt][2] = M::pack(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
          pa[mt][3] = M::pack(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
        }
#pragma unroll
        for (int dp = 0; dp < HD / 16; dp++) {
          uint32_t vf[4];
          sf_amma::ldsm_x4_t(vf, sV + v_lane + kk * 16 * C::ROWB + (((2 * dp + v_c) ^ x7) << 4));
#pragma unroll
          for (int mt = 0; mt < MT; mt++) {
            M::mma(o[mt][2 * dp], pa[mt], vf[0], vf[1]);
            M::mma(o[mt][2 * dp + 1], pa[mt], vf[2], vf[3]);
          }
        }
      }
    }
  }
  sf_amma::cp_wait<0>();

  /* epilogue */
#pragma unroll
  for (int mt = 0; mt < MT; mt++)
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
      float sum = l[mt][hr];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const int i = q0 + row_w + mt * 16 + g + 8 * hr;
      if (i >= L) continue;
      const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
      const int64_t tok = s0 + i;
      T *orow = out + tok * ots + (int64_t)h * ohs;
      if (out_pairs) {
#pragma unroll
        for (int d = 0; d < C::DB; d++)
          *reinterpret_cast<uint32_t *>(orow + d * 8 + 2 * t) =
              M::pack(o[mt][d][2 * hr] * inv, o[mt][d][2 * hr + 1] * inv);
      } else {
#pragma unroll
        for (int d = 0; d < C::DB; d++) {
          orow[d * 8 + 2 * t] = sf_from_f<T>(o[mt][d][2 * hr] * inv);
          orow[d * 8 + 2 * t + 1] = sf_from_f<T>(o[mt][d][2 * hr + 1] * inv);
        }
      }
      if (lse && t == 0) lse[tok * lts + h] = m[mt][hr] * scale + logf(sum);
    }
#endif
}

/* ---- the launcher ------------------------------------------------------- */

/* L2 budget for the K/V of one group of (head, sequence) blocks. */
enum { SF_AMMA_L2_GROUP_BYTES = 16 << 20 };

/* The grid of the tiled attention kernels (mma.sync and wgmma): one block
 * per (query tile of bq rows, head, sequence), ordered in groups of hpg
 * (head, sequence) pairs whose K/V (4 * max_len * hd bytes per kv head,
 * shared by `group` query heads) fit the L2 budget. */
struct sf_attn_grid {
  int64_t nqb, blocks, hpg;
  int n_bh, group;
};

static inline sf_status sf_attn_grid_of(const sf_attention_params *p, int bq, int hd, sf_attn_grid *g,
                                        sf_error *err) {
  g->nqb = (p->seqs.max_len + bq - 1) / bq;
  g->n_bh = p->n_heads * p->seqs.batch;
  g->group = p->n_heads / p->n_kv_heads;
  int64_t per_head = 4 * p->seqs.max_len * hd / g->group;
  if (per_head < 1) per_head = 1;
  g->hpg = SF_AMMA_L2_GROUP_BYTES / per_head;
  if (g->hpg < 1) g->hpg = 1;
  if (g->hpg > g->n_bh) g->hpg = g->n_bh;
  g->blocks = g->nqb * g->n_bh;
  if (g->nqb > 0x7fffffffLL || g->blocks > 0x7fffffffLL)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "attention: %lld blocks", (long long)g->blocks);
  return SF_OK;
}

template <typename T, int HD, int WARPS, int MT, int BK, bool QREG, int MINB, int FLAGS>
static sf_status sf_attn_mma_run(sf_op_ctx *ctx, const sf_attention_params *p, sf_error *err) {
  using C = sf_amma_cfg<HD, WARPS, MT, BK, QREG>;
  auto kern = sf_attention_mma_kernel<T, HD, WARPS, MT, BK, QREG, MINB, FLAGS>;
  SF_TRY(sf_cuda_smem_optin(ctx, (const void *)kern, (size_t)C::SMEM, "attention", err));
  sf_attn_grid gr;
  SF_TRY(sf_attn_grid_of(p, C::BQ, HD, &gr, err));
  const int64_t nqb = gr.nqb, hpg = gr.hpg, blocks = gr.blocks;
  const int group = gr.group;
  const int out_pairs = ((uintptr_t)p->out % 4 == 0) && p->out_token_stride % 2 == 0 && p->out_head_stride % 2 == 0;
  const float scale_log2 = p->scale * 1.4426950408889634f;
  kern<<<(unsigned)blocks, C::THREADS, C::SMEM, sf_cuda_stream(ctx)>>>(
      p->n_heads, p->seqs.batch, group, (int)hpg, (int)nqb, p->scale, scale_log2, p->causal, p->seqs.start,
      p->seqs.len, p->past_len, (const T *)p->q, p->q_token_stride, p->q_head_stride, (const T *)p->cache.k,
      (const T *)p->cache.v, p->cache.batch_stride, p->cache.pos_stride, p->cache.head_stride, p->cache.max_len,
      (T *)p->out, p->out_token_stride, p->out_head_stride, out_pairs, p->lse, p->lse_token_stride,
      sf_cuda_impl_of(ctx)->d_status);
  SF_CUDA_LAUNCHED("sf_attention_mma_kernel");
  return SF_OK;
}

#endif
