/* Mamba-2 SSD, chunked (state-space dual) form on tensor cores: the fast
 * path of sf_cuda_ssd (ssd.cu) for head_dim 64, d_state 64 or 128, chunk
 * 256, bf16/f16, 16-byte aligned x/B/C/z/out with token strides a multiple
 * of 8 elements (every other shape runs the sequential kernel of ssd.cu).
 *
 * Per chunk of Q = 256 tokens of one sequence, head h, group g, with
 * a_s = dt_s A_h and c_l = log2(e) (a_0 + ... + a_l) (the chunk's inclusive
 * cumulative sum in base 2):
 *   chunk state  S_end = 2^c_last S_in + sum_s 2^(c_last - c_s) dt_s x_s B_sᵀ
 *   output       y_l = 2^c_l C_l S_in + sum_{s<=l} (C_l·B_s) 2^(c_l - c_s) dt_s x_s
 *                      + D x_l, times silu(z_l)
 * Three kernels per window of chunks (no host synchronisation: graph
 * capturable once the workspace is large enough):
 *  1. ssd_prep (grid chunk x group x batch, 256 threads): dt (bias,
 *     softplus, clamp) and c for every head of the group -> workspace (lanes
 *     over heads: coalesced loads of dt rows); the causal 16x16 tiles of
 *     C·Bᵀ (mma.sync) -> workspace in bf16/f16, stored in A-fragment order
 *     (one 16-byte load per lane per tile later).
 *  2. ssd_state (grid n-block of 64 states x head x batch, 256 threads):
 *     walks the chunks in order (sequential over chunks, parallel over
 *     heads x states x channels). 8 warps = 2 token halves x 4 channel
 *     tiles, each with a 16 x 64 block of Sᵀ [p][n] in fp32 mma accumulators;
 *     the second token half hands its chunk sum to the first through shared
 *     memory once a chunk (split-K). Per chunk it stores S_in (16-bit, in
 *     B-fragment order for stage 3), scales by 2^c_last and accumulates
 *     Xᵀ (w ∘ B), w_s = 2^(c_last - c_s) dt_s: w multiplies the x fragments
 *     in registers in fp32 and the product is split in two 16-bit parts
 *     (hi + lo, two mma), so the state gets the fp32-scaled products. x and B
 *     come in by cp.async, 3 chunks deep, XOR-swizzled. The final state goes
 *     to state (fp32). (ssd_state16: the same with 16 warps, 4 token
 *     quarters; slower, kept for comparison.)
 *  3. ssd_out (persistent: one block of 8 warps an SM, each block a
 *     contiguous range of (chunk, head) items, chunk-major): C and the
 *     chunk's C·Bᵀ tiles stay in shared memory for all the heads of the range
 *     that share them (a group: every head when ngroups is 1); x / S_in / dt
 *     and c of the next head are prefetched (cp.async) while the current one
 *     runs. Per head: C S_in on tensor cores; the diagonal tiles (mask
 *     2^(c_l - c_s) dt_s) and D x from x; then x -> x̃ = 2^(c_r - c_s) dt_s x
 *     in place (c_r: the last token of s's 16-token tile), and each
 *     off-diagonal tile is (C·Bᵀ ∘ f) x̃ with the row factor f_l = 2^(c_l -
 *     c_r) (both factors <= 1) applied to the 16-bit C·Bᵀ words in pairs (2
 *     exponentials and 4 bf16x2 products a lane per tile). Warp w owns row
 *     groups w and 15 - w (17 tiles each; the x̃ fragments of a column tile
 *     serve both); the z gate, then 16-byte stores staged through shared
 *     memory. (PH = 2: 16 warps of half the channels each; slower, kept for
 *     comparison.)
 * Devices with less shared memory (sm_80: 163 KB) run the state kernel with
 * 2 stages and the v3 stage 3 (half a chunk of one head a block, the C·Bᵀ
 * tiles through a per-warp cp.async ring).
 * Precision: products are 16-bit x 16-bit -> fp32 (as mamba_ssm's Triton
 * kernels); the state passing is fp32 and the chunk state is accumulated from
 * fp32-scaled products (hi + lo split), so the final state is fp32-accurate
 * (~3e-6 relative in the tests); S_in, x̃, the masked C·Bᵀ and the outputs
 * are 16-bit (outputs ~2.5e-3 relative in bf16).
 *
 * Workspace (ctx->workspace, grown on demand; sf_cuda_workspace_reserve
 * beforehand keeps calls capturable), per (sequence, chunk) slot:
 *   n_groups * 136 * 512 B (C·Bᵀ tiles) + n_heads * 2 KiB (dt, c)
 *   + n_heads * head_dim * d_state * 2 B (S_in)
 * e.g. 1.25 MiB a chunk for 64 heads, d_state 128. Long inputs run in
 * windows of chunks so that the workspace stays <= 1 GiB (state carried
 * through the state buffer between windows); all offsets are 64-bit. */
#include <stdlib.h>
#include <string.h>

#include "ssd_mma.cuh"

namespace {

constexpr int Q = 256;         /* chunk */
constexpr int P = 64;          /* head_dim */
constexpr int NTILE = 136;     /* causal 16x16 tiles of a 256x256 chunk */
constexpr size_t WS_CAP = (size_t)1 << 30;

struct SsdArgs {
  int n_heads, hpg, n_groups, batch;
  const int64_t *start;
  const int32_t *len;
  const void *x;
  int64_t xts;
  const void *dt;
  int64_t dtts;
  const float *dt_bias;
  int softplus;
  float dt_min, dt_max;
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
  void *out;
  int64_t ots;
  uint4 *cb;   /* [slot][group][136][32] */
  float *vec;  /* [slot][head][2][256]: c (base 2), dt */
  uint4 *sin;  /* [slot][head][d_state/16][4][32] */
  int64_t tok_off;
  int cw;      /* chunk slots per sequence in this window */
  int cwn;     /* chunks of this window (<= cw) */
  int has_init, first;
};

__device__ __forceinline__ int64_t seq_rem(const SsdArgs &a, int b) { return (int64_t)a.len[b] - a.tok_off; }

/* Element offset of 16-byte chunk `chunk` of row `row` in a row-major tile of
 * W 16-bit elements a row (W a multiple of 64), the chunk index XOR-ed with
 * row % 8: ldmatrix's 8 rows of one logical chunk hit 8 different bank
 * groups, without padding. */
template <int W> __device__ __forceinline__ int swz(int row, int chunk) {
  return row * W + ((chunk ^ (row & 7)) << 3);
}
__device__ __forceinline__ int xsw(int row, int chunk) { return swz<64>(row, chunk); }

/* ---------------------------------------------------------------- stage 1 */

template <typename T, int NS>
__global__ void __launch_bounds__(256) ssd_prep_kernel(SsdArgs a) {
  constexpr int PITCH = NS + 8, SEG = NS / 8;
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ float tot[8][32];
  T *Cs = reinterpret_cast<T *>(smem);
  T *Bs = Cs + Q * PITCH;
  const int k = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
  const int64_t rem = seq_rem(a, b), c0 = (int64_t)k * Q;
  if (c0 >= rem) return;
  const int qc = (int)(rem - c0 < Q ? rem - c0 : Q);
  const int64_t tok0 = a.start[b] + a.tok_off + c0;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  {
    const T *Cg = static_cast<const T *>(a.C) + (int64_t)g * NS;
    const T *Bg = static_cast<const T *>(a.B) + (int64_t)g * NS;
    for (int i = tid; i < Q * SEG; i += 256) {
      const int r = i / SEG, sg = i % SEG;
      const bool ok = r < qc;
      const int64_t tok = tok0 + (ok ? r : 0);
      sfm_cp16(Cs + r * PITCH + sg * 8, Cg + tok * a.Cts + sg * 8, ok);
      sfm_cp16(Bs + r * PITCH + sg * 8, Bg + tok * a.Bts + sg * 8, ok);
    }
    sfm_cp_commit();
  }
  const int64_t slot = (int64_t)b * a.cw + k;
  /* dt and the base-2 cumulative sum: lanes over 32 heads (a warp's load is
   * one contiguous piece of a dt row), warp w over tokens 32w .. 32w + 31,
   * all 32 loads of a lane in flight; the warps' partial sums meet in smem. */
#pragma unroll 1
  for (int hb = 0; hb < a.hpg; hb += 32) {
    const int hh = hb + lane, h = g * a.hpg + hh;
    const bool hv = hh < a.hpg;
    const float A2 = hv ? a.A[h] * SFM_LOG2E : 0.0f, bias = hv && a.dt_bias ? a.dt_bias[h] : 0.0f;
    const T *dp = static_cast<const T *>(a.dt) + (tok0 + 32 * warp) * a.dtts + (hv ? h : 0);
    float dtv[32];
#pragma unroll
    for (int j = 0; j < 32; j++) dtv[j] = hv && 32 * warp + j < qc ? sf_ldg<T>(dp + j * a.dtts) : 0.0f;
    float cum[32], run = 0.0f;
#pragma unroll
    for (int j = 0; j < 32; j++) {
      float v = 0.0f;
      if (hv && 32 * warp + j < qc) {
        v = dtv[j] + bias;
        if (a.softplus) v = sf_softplus(v);
        v = fminf(fmaxf(v, a.dt_min), a.dt_max);
      }
      dtv[j] = v;
      run += v * A2;
      cum[j] = run;
    }
    tot[warp][lane] = run;
    __syncthreads();
    float off = 0.0f;
    for (int w = 0; w < warp; w++) off += tot[w][lane];
    __syncthreads(); /* tot is rewritten by the next batch of heads */
    if (hv) {
      float4 *c4 = reinterpret_cast<float4 *>(a.vec + (slot * a.n_heads + h) * 512 + 32 * warp);
      float4 *d4 = c4 + 64;
#pragma unroll
      for (int q = 0; q < 8; q++) {
        c4[q] = make_float4(cum[4 * q] + off, cum[4 * q + 1] + off, cum[4 * q + 2] + off, cum[4 * q + 3] + off);
        d4[q] = make_float4(dtv[4 * q], dtv[4 * q + 1], dtv[4 * q + 2], dtv[4 * q + 3]);
      }
    }
  }
  sfm_cp_wait<0>();
  __syncthreads();
  /* C·Bᵀ causal tiles: warp w takes row groups w and 15 - w (17 tiles). */
  uint4 *cbo = a.cb + (slot * a.n_groups + g) * (NTILE * 32) + lane;
#pragma unroll 1
  for (int gi = 0; gi < 2; gi++) {
    const int G = gi ? 15 - warp : warp;
    uint32_t af[NS / 16][4];
#pragma unroll
    for (int kt = 0; kt < NS / 16; kt++)
      sfm_ldsm4(af[kt], Cs + (16 * G + sfm_row_a(lane)) * PITCH + 16 * kt + sfm_col_a(lane));
#pragma unroll 1
    for (int j = 0; j <= G; j++) {
      float acc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
      for (int kt = 0; kt < NS / 16; kt++) {
        uint32_t bf[4];
        sfm_ldsm4(bf, Bs + (16 * j + sfm_row_x(lane)) * PITCH + 16 * kt + sfm_col_x(lane));
        sfm<T>::mma(acc[0], af[kt], bf[0], bf[1]);
        sfm<T>::mma(acc[1], af[kt], bf[2], bf[3]);
      }
      uint4 o;
      o.x = sfm<T>::pack(acc[0][0], acc[0][1]);
      o.y = sfm<T>::pack(acc[0][2], acc[0][3]);
      o.z = sfm<T>::pack(acc[1][0], acc[1][1]);
      o.w = sfm<T>::pack(acc[1][2], acc[1][3]);
      cbo[(G * (G + 1) / 2 + j) * 32] = o;
    }
  }
}

/* ---------------------------------------------------------------- stage 2 */

template <int STAGES> struct StateSmem {
  static constexpr size_t TILE = (size_t)Q * 64 * 2;      /* x or B: 256 rows x 64, swizzled */
  static constexpr size_t XCH = (size_t)4 * 32 * 32 * 4;  /* token half 1 -> half 0 (fp32) */
  static constexpr size_t BYTES = STAGES * 2 * TILE + XCH + Q * 4;
};

/* w-scaled x fragment register: (x_lo w0, x_hi w1) in fp32, then rounded to
 * 16 bits (hi) and, when PRECISE, the rounding residual also in 16 bits (lo):
 * hi + lo carries the fp32 product to ~2^-17 relative. */
template <typename T, bool PRECISE>
__device__ __forceinline__ void scale_frag(uint32_t u, float w0, float w1, uint32_t &hi, uint32_t &lo) {
  const float2 f = sfm<T>::unpack(u);
  const float v0 = f.x * w0, v1 = f.y * w1;
  hi = sfm<T>::pack(v0, v1);
  if (PRECISE) {
    const float2 r = sfm<T>::unpack(hi);
    lo = sfm<T>::pack(v0 - r.x, v1 - r.y);
  }
}

/* 64 states a block (grid n-block x head x batch: 128 blocks for 64 heads,
 * d_state 128), 8 warps: warp = 4 kh + mt takes tokens 128 kh .. 128 kh + 127
 * of each chunk and channels 16 mt .. 16 mt + 15, all 64 states of the block
 * (acc[nt]: channel 16 mt + gq (+8), state 64 nb + 8 nt + 2 tq (+1)), so
 * each x fragment is scaled (and split) once. The kh = 0 warps hold the
 * state; the kh = 1 warps hand their chunk sum over through smem at the start
 * of the next chunk (and at the end) and restart from 0 (split-K). */
template <typename T, int NS, int STAGES, bool PRECISE>
__global__ void __launch_bounds__(256, 1) ssd_state_kernel(SsdArgs a) {
  extern __shared__ __align__(16) unsigned char smem[];
  T *Xs = reinterpret_cast<T *>(smem);            /* [STAGES][Q * 64] swizzled */
  T *Bs = Xs + STAGES * Q * 64;                   /* [STAGES][Q * 64] swizzled */
  float *xch = reinterpret_cast<float *>(Bs + STAGES * Q * 64); /* [4][32][32 lanes] */
  float *ws = xch + 4 * 32 * 32;                  /* [Q] */
  const int nb = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int g = h / a.hpg;
  const int64_t rem = seq_rem(a, b);
  const int nck = rem <= 0 ? 0 : (int)((rem + Q - 1) / Q < a.cw ? (rem + Q - 1) / Q : a.cw);
  if (nck == 0 && !a.first) return;
  const bool load_init = !a.first || a.has_init;
  if (nck == 0 && load_init) return; /* empty sequence, state unchanged */
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gq = lane >> 2, tq = lane & 3;
  const int kh = warp >> 2, mt = warp & 3;
  const int p0 = 16 * mt + gq, nbase = 64 * nb + 2 * tq;
  float *st = a.state + (int64_t)b * a.sbs + (int64_t)h * P * NS;
  float acc[8][4];
#pragma unroll
  for (int nt = 0; nt < 8; nt++) {
    const int n = nbase + 8 * nt;
    const bool ld = kh == 0 && load_init;
    acc[nt][0] = ld ? st[p0 * NS + n] : 0.0f;
    acc[nt][1] = ld ? st[p0 * NS + n + 1] : 0.0f;
    acc[nt][2] = ld ? st[(p0 + 8) * NS + n] : 0.0f;
    acc[nt][3] = ld ? st[(p0 + 8) * NS + n + 1] : 0.0f;
  }
  const int64_t tokb = a.start[b] + a.tok_off;
  const T *xg = static_cast<const T *>(a.x) + (int64_t)h * P;
  const T *bg = static_cast<const T *>(a.B) + (int64_t)g * NS + 64 * nb;
  const int r0 = tid >> 3, ch = tid & 7; /* rows r0 + 32 i, 16-byte chunk ch */
  auto issue = [&](int kk) {
    if (kk < nck) {
      const int stg = kk % STAGES;
      const int64_t c0 = (int64_t)kk * Q;
      const int qc = (int)(rem - c0 < Q ? rem - c0 : Q);
      T *xs = Xs + stg * Q * 64, *bs = Bs + stg * Q * 64;
#pragma unroll
      for (int i = 0; i < 8; i++) {
        const int r = r0 + 32 * i;
        const bool ok = r < qc;
        const int64_t tok = tokb + c0 + (ok ? r : 0);
        sfm_cp16(xs + xsw(r, ch), xg + tok * a.xts + ch * 8, ok);
        sfm_cp16(bs + xsw(r, ch), bg + tok * a.Bts + ch * 8, ok);
      }
    }
    sfm_cp_commit();
  };
#pragma unroll
  for (int s = 0; s < STAGES; s++) issue(s);
  const float *vbase = a.vec + ((int64_t)b * a.cw * a.n_heads + h) * 512;
  const int64_t vstride = (int64_t)a.n_heads * 512; /* next chunk slot, same head */
  float nx_c = 0.f, nx_d = 0.f, nx_l = 0.f;
  if (nck > 0) {
    nx_c = vbase[tid];
    nx_d = vbase[256 + tid];
    nx_l = vbase[255];
  }
  float *xme = xch + mt * 32 * 32 + lane;
  /* kh = 1: hand the partial sum over and restart; kh = 0 (after the
   * barrier that follows): add it. */
  auto hand_over = [&]() {
    if (kh == 1) {
#pragma unroll
      for (int nt = 0; nt < 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          xme[(4 * nt + e) * 32] = acc[nt][e];
          acc[nt][e] = 0.0f;
        }
    }
  };
  auto take_over = [&]() {
    if (kh == 0) {
#pragma unroll
      for (int nt = 0; nt < 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[nt][e] += xme[(4 * nt + e) * 32];
    }
  };
  uint4 *sino = a.sin + ((int64_t)b * a.cw * a.n_heads + h) * (NS / 16 * 4 * 32) + lane;
  const int64_t sstride = (int64_t)a.n_heads * (NS / 16 * 4 * 32);
#pragma unroll 1
  for (int kk = 0; kk < nck; kk++) {
    const int stg = kk % STAGES;
    const float cc = nx_c, cd = nx_d, cl = nx_l;
    if (kk + 1 < nck) {
      const float *vp = vbase + (kk + 1) * vstride;
      nx_c = vp[tid];
      nx_d = vp[256 + tid];
      nx_l = vp[255];
    }
    sfm_cp_wait<STAGES - 1>();
    ws[tid] = sfm_ex2(cl - cc) * cd; /* w_s; 0 past the chunk's end (dt = 0) */
    hand_over();
    __syncthreads();
    if (kh == 0) {
      take_over();
      /* S_in of this chunk in stage 3's B-fragment order: k tile 4 nb + q,
       * channel tile mt. */
      uint4 *so = sino + kk * sstride;
#pragma unroll
      for (int q = 0; q < 4; q++) {
        uint4 v;
        v.x = sfm<T>::pack(acc[2 * q][0], acc[2 * q][1]);
        v.y = sfm<T>::pack(acc[2 * q + 1][0], acc[2 * q + 1][1]);
        v.z = sfm<T>::pack(acc[2 * q][2], acc[2 * q][3]);
        v.w = sfm<T>::pack(acc[2 * q + 1][2], acc[2 * q + 1][3]);
        so[((4 * nb + q) * 4 + mt) * 32] = v;
      }
      const float dec = sfm_ex2(cl);
#pragma unroll
      for (int nt = 0; nt < 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[nt][e] *= dec;
    }
    {
      const T *xs = Xs + stg * Q * 64, *bs = Bs + stg * Q * 64;
#pragma unroll 2
      for (int ks = 0; ks < 8; ks++) {
        const int s0 = 128 * kh + 16 * ks;
        const float2 w01 = *reinterpret_cast<const float2 *>(ws + s0 + 2 * tq);
        const float2 w89 = *reinterpret_cast<const float2 *>(ws + s0 + 2 * tq + 8);
        uint32_t af[4], ah[4], al[4];
        sfm_ldsm4_t(af, xs + xsw(s0 + sfm_row_x(lane), 2 * mt + (sfm_col_x(lane) >> 3)));
        scale_frag<T, PRECISE>(af[0], w01.x, w01.y, ah[0], al[0]);
        scale_frag<T, PRECISE>(af[1], w01.x, w01.y, ah[1], al[1]);
        scale_frag<T, PRECISE>(af[2], w89.x, w89.y, ah[2], al[2]);
        scale_frag<T, PRECISE>(af[3], w89.x, w89.y, ah[3], al[3]);
#pragma unroll
        for (int q = 0; q < 4; q++) {
          uint32_t bf[4];
          sfm_ldsm4_t(bf, bs + xsw(s0 + sfm_row_bt(lane), 2 * q + (sfm_col_bt(lane) >> 3)));
          sfm<T>::mma(acc[2 * q], ah, bf[0], bf[1]);
          sfm<T>::mma(acc[2 * q + 1], ah, bf[2], bf[3]);
          if (PRECISE) {
            sfm<T>::mma(acc[2 * q], al, bf[0], bf[1]);
            sfm<T>::mma(acc[2 * q + 1], al, bf[2], bf[3]);
          }
        }
      }
    }
    __syncthreads();
    issue(kk + STAGES);
  }
  hand_over();
  __syncthreads();
  if (kh == 0) {
    take_over();
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
      const int n = nbase + 8 * nt;
      st[p0 * NS + n] = acc[nt][0];
      st[p0 * NS + n + 1] = acc[nt][1];
      st[(p0 + 8) * NS + n] = acc[nt][2];
      st[(p0 + 8) * NS + n + 1] = acc[nt][3];
    }
  }
}

/* 16 warps (512 threads), 2 stages: warp = 4 kq + mt takes tokens 64 kq ..
 * 64 kq + 63 of each chunk and channels 16 mt .. + 15, all 64 states of the
 * block (acc[nt] as above). The state is the sum of the 4 token quarters'
 * accumulators: once a chunk every warp writes its accumulators to smem and
 * takes back the sum of the four for the n tiles it owns (2 kq, 2 kq + 1;
 * the rest restart from 0), stores that part of S_in and decays it. */
constexpr size_t STATE16_BYTES = (size_t)2 * 2 * Q * 64 * 2 + (size_t)16 * 32 * 32 * 4 + Q * 4;

template <typename T, int NS, bool PRECISE>
__global__ void __launch_bounds__(512, 1) ssd_state16_kernel(SsdArgs a) {
  constexpr int STAGES = 2;
  extern __shared__ __align__(16) unsigned char smem[];
  T *Xs = reinterpret_cast<T *>(smem);            /* [STAGES][Q * 64] swizzled */
  T *Bs = Xs + STAGES * Q * 64;                   /* [STAGES][Q * 64] swizzled */
  float *xch = reinterpret_cast<float *>(Bs + STAGES * Q * 64); /* [16 warps][32][32 lanes] */
  float *ws = xch + 16 * 32 * 32;                 /* [Q] */
  const int nb = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int g = h / a.hpg;
  const int64_t rem = seq_rem(a, b);
  const int nck = rem <= 0 ? 0 : (int)((rem + Q - 1) / Q < a.cw ? (rem + Q - 1) / Q : a.cw);
  if (nck == 0 && !a.first) return;
  const bool load_init = !a.first || a.has_init;
  if (nck == 0 && load_init) return; /* empty sequence, state unchanged */
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gq = lane >> 2, tq = lane & 3;
  const int kq = warp >> 2, mt = warp & 3;
  const int p0 = 16 * mt + gq, nbase = 64 * nb + 2 * tq;
  float *st = a.state + (int64_t)b * a.sbs + (int64_t)h * P * NS;
  float acc[8][4];
#pragma unroll
  for (int nt = 0; nt < 8; nt++) {
    const int n = nbase + 8 * nt;
    const bool ld = (nt >> 1) == kq && load_init;
    acc[nt][0] = ld ? st[p0 * NS + n] : 0.0f;
    acc[nt][1] = ld ? st[p0 * NS + n + 1] : 0.0f;
    acc[nt][2] = ld ? st[(p0 + 8) * NS + n] : 0.0f;
    acc[nt][3] = ld ? st[(p0 + 8) * NS + n + 1] : 0.0f;
  }
  const int64_t tokb = a.start[b] + a.tok_off;
  const T *xg = static_cast<const T *>(a.x) + (int64_t)h * P;
  const T *bg = static_cast<const T *>(a.B) + (int64_t)g * NS + 64 * nb;
  const int r0 = tid >> 3, ch = tid & 7; /* rows r0 + 64 i, 16-byte chunk ch */
  auto issue = [&](int kk) {
    if (kk < nck) {
      const int stg = kk & 1;
      const int64_t c0 = (int64_t)kk * Q;
      const int qc = (int)(rem - c0 < Q ? rem - c0 : Q);
      T *xs = Xs + stg * Q * 64, *bs = Bs + stg * Q * 64;
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const int r = r0 + 64 * i;
        const bool ok = r < qc;
        const int64_t tok = tokb + c0 + (ok ? r : 0);
        sfm_cp16(xs + xsw(r, ch), xg + tok * a.xts + ch * 8, ok);
        sfm_cp16(bs + xsw(r, ch), bg + tok * a.Bts + ch * 8, ok);
      }
    }
    sfm_cp_commit();
  };
  issue(0);
  issue(1);
  const float *vbase = a.vec + ((int64_t)b * a.cw * a.n_heads + h) * 512;
  const int64_t vstride = (int64_t)a.n_heads * 512; /* next chunk slot, same head */
  const int vt = tid & 255;
  float nx_c = 0.f, nx_d = 0.f, nx_l = 0.f;
  if (nck > 0) {
    nx_c = vbase[vt];
    nx_d = vbase[256 + vt];
    nx_l = vbase[255];
  }
  float *xme = xch + warp * 32 * 32 + lane;
  const float *xall = xch + mt * 32 * 32 + lane; /* warp 4 q + mt: xall + q * 4096 */
  /* every warp: accumulators -> smem (then the barrier) */
  auto put = [&]() {
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) xme[(4 * nt + e) * 32] = acc[nt][e];
  };
  /* after the barrier: the owned n tiles take the sum of the four, the rest 0 */
  auto gather = [&]() {
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
      if ((nt >> 1) == kq) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int o = (4 * nt + e) * 32;
          acc[nt][e] = (xall[o] + xall[4096 + o]) + (xall[8192 + o] + xall[12288 + o]);
        }
      } else {
#pragma unroll
        for (int e = 0; e < 4; e++) acc[nt][e] = 0.0f;
      }
    }
  };
  uint4 *sino = a.sin + ((int64_t)b * a.cw * a.n_heads + h) * (NS / 16 * 4 * 32) + lane;
  const int64_t sstride = (int64_t)a.n_heads * (NS / 16 * 4 * 32);
#pragma unroll 1
  for (int kk = 0; kk < nck; kk++) {
    const int stg = kk & 1;
    const float cc = nx_c, cd = nx_d, cl = nx_l;
    if (kk + 1 < nck) {
      const float *vp = vbase + (kk + 1) * vstride;
      nx_c = vp[vt];
      nx_d = vp[256 + vt];
      nx_l = vp[255];
    }
    sfm_cp_wait<1>();
    if (tid < Q) ws[tid] = sfm_ex2(cl - cc) * cd; /* w_s; 0 past the chunk's end (dt = 0) */
    put();
    __syncthreads();
    gather();
    {
      /* S_in of this chunk, this warp's k tile 4 nb + kq, channel tile mt
       * (stage 3's B-fragment order) */
      uint4 *so = sino + kk * sstride;
#pragma unroll
      for (int q = 0; q < 4; q++) {
        if (q == kq) {
          uint4 v;
          v.x = sfm<T>::pack(acc[2 * q][0], acc[2 * q][1]);
          v.y = sfm<T>::pack(acc[2 * q + 1][0], acc[2 * q + 1][1]);
          v.z = sfm<T>::pack(acc[2 * q][2], acc[2 * q][3]);
          v.w = sfm<T>::pack(acc[2 * q + 1][2], acc[2 * q + 1][3]);
          so[((4 * nb + q) * 4 + mt) * 32] = v;
        }
      }
      const float dec = sfm_ex2(cl);
#pragma unroll
      for (int nt = 0; nt < 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[nt][e] *= dec;
    }
    {
      const T *xs = Xs + stg * Q * 64, *bs = Bs + stg * Q * 64;
#pragma unroll 2
      for (int ks = 0; ks < 4; ks++) {
        const int s0 = 64 * kq + 16 * ks;
        const float2 w01 = *reinterpret_cast<const float2 *>(ws + s0 + 2 * tq);
        const float2 w89 = *reinterpret_cast<const float2 *>(ws + s0 + 2 * tq + 8);
        uint32_t af[4], ah[4], al[4];
        sfm_ldsm4_t(af, xs + xsw(s0 + sfm_row_x(lane), 2 * mt + (sfm_col_x(lane) >> 3)));
        scale_frag<T, PRECISE>(af[0], w01.x, w01.y, ah[0], al[0]);
        scale_frag<T, PRECISE>(af[1], w01.x, w01.y, ah[1], al[1]);
        scale_frag<T, PRECISE>(af[2], w89.x, w89.y, ah[2], al[2]);
        scale_frag<T, PRECISE>(af[3], w89.x, w89.y, ah[3], al[3]);
#pragma unroll
        for (int q = 0; q < 4; q++) {
          uint32_t bf[4];
          sfm_ldsm4_t(bf, bs + xsw(s0 + sfm_row_bt(lane), 2 * q + (sfm_col_bt(lane) >> 3)));
          sfm<T>::mma(acc[2 * q], ah, bf[0], bf[1]);
          sfm<T>::mma(acc[2 * q + 1], ah, bf[2], bf[3]);
          if (PRECISE) {
            sfm<T>::mma(acc[2 * q], al, bf[0], bf[1]);
            sfm<T>::mma(acc[2 * q + 1], al, bf[2], bf[3]);
          }
        }
      }
    }
    __syncthreads();
    issue(kk + 2);
  }
  put();
  __syncthreads();
  gather();
#pragma unroll
  for (int nt = 0; nt < 8; nt++) {
    if ((nt >> 1) == kq) {
      const int n = nbase + 8 * nt;
      st[p0 * NS + n] = acc[nt][0];
      st[p0 * NS + n + 1] = acc[nt][1];
      st[(p0 + 8) * NS + n] = acc[nt][2];
      st[(p0 + 8) * NS + n + 1] = acc[nt][3];
    }
  }
}

template <int NB> constexpr size_t state_v3_smem() {
  return (size_t)2 * Q * 64 * 2 + (size_t)2 * Q * (NB + 8) * 2 + Q * 4;
}

/* v3 (the fallback for timing comparisons): NB states a block, 8 warps = 4
 * (16 channels p) x 2 (NB/2 states); w ∘ B rounded to 16 bits in shared
 * memory, so the final state has 16-bit error (~1.6e-3 relative). */
template <typename T, int NS, int NB>
__global__ void __launch_bounds__(256, NB == 32 ? 2 : 1) ssd_state_v3_kernel(SsdArgs a) {
  constexpr int BP = NB + 8, NT = NB / 16, SEGB = NB / 8, RPB = 256 / SEGB;
  extern __shared__ __align__(16) unsigned char smem[];
  T *Xs = reinterpret_cast<T *>(smem);   /* [2][Q][64] swizzled */
  T *Bs = Xs + 2 * Q * 64;               /* [2][Q][BP] */
  float *ws = reinterpret_cast<float *>(Bs + 2 * Q * BP); /* [Q] */
  const int nb = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int g = h / a.hpg;
  const int64_t rem = seq_rem(a, b);
  const int nck = rem <= 0 ? 0 : (int)((rem + Q - 1) / Q < a.cw ? (rem + Q - 1) / Q : a.cw);
  if (nck == 0 && !a.first) return;
  const bool load_init = !a.first || a.has_init;
  if (nck == 0 && load_init) return; /* empty sequence, state unchanged */
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int mt = warp & 3, nh = warp >> 2, gq = lane >> 2, tq = lane & 3;
  const int nbase = NB * nb + (NB / 2) * nh; /* this warp's first state */
  float *st = a.state + (int64_t)b * a.sbs + (int64_t)h * P * NS;
  float acc[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; nt++) {
    const int n = nbase + 8 * nt + 2 * tq, p0 = 16 * mt + gq;
    acc[nt][0] = load_init ? st[p0 * NS + n] : 0.0f;
    acc[nt][1] = load_init ? st[p0 * NS + n + 1] : 0.0f;
    acc[nt][2] = load_init ? st[(p0 + 8) * NS + n] : 0.0f;
    acc[nt][3] = load_init ? st[(p0 + 8) * NS + n + 1] : 0.0f;
  }
  const int64_t tokb = a.start[b] + a.tok_off;
  const T *xg = static_cast<const T *>(a.x) + (int64_t)h * P;
  const T *bg = static_cast<const T *>(a.B) + (int64_t)g * NS + NB * nb;
  const int xr0 = tid >> 3, xsg = tid & 7;         /* x rows xr0 + 32 i, chunk xsg */
  const int br0 = tid / SEGB, bsg = tid % SEGB;    /* B rows br0 + RPB i, chunk bsg */
  auto issue = [&](int kk, int stg) {
    if (kk < nck) {
      const int64_t c0 = (int64_t)kk * Q;
      const int qc = (int)(rem - c0 < Q ? rem - c0 : Q);
#pragma unroll
      for (int i = 0; i < 8; i++) {
        const int r = xr0 + 32 * i;
        const bool ok = r < qc;
        sfm_cp16(Xs + stg * Q * 64 + xsw(r, xsg), xg + (tokb + c0 + (ok ? r : 0)) * a.xts + xsg * 8, ok);
      }
#pragma unroll
      for (int i = 0; i < SEGB; i++) {
        const int r = br0 + RPB * i;
        const bool ok = r < qc;
        sfm_cp16(Bs + (stg * Q + r) * BP + bsg * 8, bg + (tokb + c0 + (ok ? r : 0)) * a.Bts + bsg * 8, ok);
      }
    }
    sfm_cp_commit();
  };
  issue(0, 0);
  issue(1, 1);
  const float *vbase = a.vec + ((int64_t)b * a.cw * a.n_heads + h) * 512;
  const int64_t vstride = (int64_t)a.n_heads * 512; /* next chunk slot, same head */
  float nx_c = 0.f, nx_d = 0.f, nx_l = 0.f;
  if (nck > 0) {
    nx_c = vbase[tid];
    nx_d = vbase[256 + tid];
    nx_l = vbase[255];
  }
  uint4 *sino = a.sin + ((int64_t)b * a.cw * a.n_heads + h) * (NS / 16 * 4 * 32) + lane;
  const int64_t sstride = (int64_t)a.n_heads * (NS / 16 * 4 * 32);
#pragma unroll 1
  for (int kk = 0; kk < nck; kk++) {
    const int stg = kk & 1;
    const float cc = nx_c, cd = nx_d, cl = nx_l;
    if (kk + 1 < nck) {
      const float *vp = vbase + (kk + 1) * vstride;
      nx_c = vp[tid];
      nx_d = vp[256 + tid];
      nx_l = vp[255];
    }
    /* S_in of this chunk in stage 3's B-fragment order. */
    {
      uint4 *so = sino + kk * sstride;
#pragma unroll
      for (int q = 0; q < NT / 2; q++) {
        const int kt = nbase / 16 + q;
        uint4 v;
        v.x = sfm<T>::pack(acc[2 * q][0], acc[2 * q][1]);
        v.y = sfm<T>::pack(acc[2 * q + 1][0], acc[2 * q + 1][1]);
        v.z = sfm<T>::pack(acc[2 * q][2], acc[2 * q][3]);
        v.w = sfm<T>::pack(acc[2 * q + 1][2], acc[2 * q + 1][3]);
        so[(kt * 4 + mt) * 32] = v;
      }
    }
    sfm_cp_wait<1>();
    ws[tid] = sfm_ex2(cl - cc) * cd; /* w_s; 0 past the chunk's end (dt = 0) */
    __syncthreads();
    {
      T *bs = Bs + stg * Q * BP;
#pragma unroll
      for (int i = 0; i < SEGB; i++) {
        const int r = br0 + RPB * i;
        const float w = ws[r];
        uint4 *pv = reinterpret_cast<uint4 *>(bs + r * BP + bsg * 8);
        uint4 v = *pv;
        float2 f;
        f = sfm<T>::unpack(v.x); v.x = sfm<T>::pack(f.x * w, f.y * w);
        f = sfm<T>::unpack(v.y); v.y = sfm<T>::pack(f.x * w, f.y * w);
        f = sfm<T>::unpack(v.z); v.z = sfm<T>::pack(f.x * w, f.y * w);
        f = sfm<T>::unpack(v.w); v.w = sfm<T>::pack(f.x * w, f.y * w);
        *pv = v;
      }
    }
    __syncthreads();
    const float dec = sfm_ex2(cl);
#pragma unroll
    for (int nt = 0; nt < NT; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[nt][e] *= dec;
    {
      const T *xs = Xs + stg * Q * 64, *bs = Bs + stg * Q * BP;
#pragma unroll 4
      for (int ks = 0; ks < Q / 16; ks++) {
        uint32_t af[4];
        const int xrow = 16 * ks + sfm_row_x(lane);
        sfm_ldsm4_t(af, xs + xsw(xrow, 2 * mt + (sfm_col_x(lane) >> 3)));
#pragma unroll
        for (int q = 0; q < NT / 2; q++) {
          uint32_t bf[4];
          sfm_ldsm4_t(bf, bs + (16 * ks + sfm_row_bt(lane)) * BP + (NB / 2) * nh + 16 * q + sfm_col_bt(lane));
          sfm<T>::mma(acc[2 * q], af, bf[0], bf[1]);
          sfm<T>::mma(acc[2 * q + 1], af, bf[2], bf[3]);
        }
      }
    }
    __syncthreads();
    issue(kk + 2, stg);
  }
#pragma unroll
  for (int nt = 0; nt < NT; nt++) {
    const int n = nbase + 8 * nt + 2 * tq, p0 = 16 * mt + gq;
    st[p0 * NS + n] = acc[nt][0];
    st[p0 * NS + n + 1] = acc[nt][1];
    st[(p0 + 8) * NS + n] = acc[nt][2];
    st[(p0 + 8) * NS + n + 1] = acc[nt][3];
  }
}

/* ---------------------------------------------------------------- stage 3 */

template <int NS> struct OutSmem {
  static constexpr size_t CB_OFF = 0;                                   /* [136][32] uint4 */
  static constexpr size_t C_OFF = CB_OFF + (size_t)NTILE * 512;         /* [Q][NS] swizzled */
  static constexpr size_t X_OFF = C_OFF + (size_t)Q * NS * 2;           /* [2][Q][64] swizzled */
  static constexpr size_t S_OFF = X_OFF + (size_t)2 * Q * 64 * 2;       /* [NS/16][4][32] uint4 */
  static constexpr size_t V_OFF = S_OFF + (size_t)NS / 16 * 4 * 512;    /* [2][c 256, dt 256] */
  static constexpr size_t E_OFF = V_OFF + (size_t)2 * 2 * Q * 4;        /* [Q] column factors */
  static constexpr size_t BYTES = E_OFF + (size_t)Q * 4;
};

/* Stage 3 warps: warp w owns row groups G0 = w % 8 and G1 = 15 - G0 and the
 * channels of its part ph = w / 8 of PH: QW = 4 / PH tiles of 16 channels
 * (16 qt .. 16 qt + 15, qt = QW ph + ql), i.e. 2 QW tiles of 8 (the mma n
 * tiles, y[.][2 ql], y[.][2 ql + 1]). */

/* Diagonal tile (row group G = column group): mask 2^(c_l - c_s) dt_s for s <= l,
 * from unscaled x. */
template <typename T, int QW>
__device__ __forceinline__ void out_diag(float (&yy)[2 * QW][4], const uint4 *cbs, const float *cum,
                                         const float *dts, int G, float cl0, float cl1, const T *xc, int qt0,
                                         int lane) {
  const int gq = lane >> 2, tq = lane & 3;
  uint32_t xb[QW][4];
#pragma unroll
  for (int ql = 0; ql < QW; ql++)
    sfm_ldsm4_t(xb[ql], xc + xsw(16 * G + sfm_row_bt(lane), 2 * (qt0 + ql) + (sfm_col_bt(lane) >> 3)));
  const uint4 cbv = cbs[(G * (G + 1) / 2 + G) * 32 + lane];
  const float2 v0 = sfm<T>::unpack(cbv.x), v1 = sfm<T>::unpack(cbv.y), v3 = sfm<T>::unpack(cbv.w);
  const int s0 = 16 * G + 2 * tq;
  const float2 cs0 = *reinterpret_cast<const float2 *>(cum + s0);
  const float2 cs1 = *reinterpret_cast<const float2 *>(cum + s0 + 8);
  const float2 ds0 = *reinterpret_cast<const float2 *>(dts + s0);
  const float2 ds1 = *reinterpret_cast<const float2 *>(dts + s0 + 8);
  const int ca = 2 * tq;
  float m[8];
  m[0] = ca > gq ? 0.0f : v0.x * sfm_ex2(cl0 - cs0.x) * ds0.x;         /* (l0,   s0)   */
  m[1] = ca + 1 > gq ? 0.0f : v0.y * sfm_ex2(cl0 - cs0.y) * ds0.y;     /* (l0,   s0+1) */
  m[2] = v1.x * sfm_ex2(cl1 - cs0.x) * ds0.x;                          /* (l0+8, s0)   */
  m[3] = v1.y * sfm_ex2(cl1 - cs0.y) * ds0.y;                          /* (l0+8, s0+1) */
  m[4] = 0.0f;                                                         /* (l0, s0+8): s > l */
  m[5] = 0.0f;
  m[6] = ca > gq ? 0.0f : v3.x * sfm_ex2(cl1 - cs1.x) * ds1.x;         /* (l0+8, s0+8) */
  m[7] = ca + 1 > gq ? 0.0f : v3.y * sfm_ex2(cl1 - cs1.y) * ds1.y;     /* (l0+8, s0+9) */
  uint32_t af[4];
  af[0] = sfm<T>::pack(m[0], m[1]);
  af[1] = sfm<T>::pack(m[2], m[3]);
  af[2] = sfm<T>::pack(m[4], m[5]);
  af[3] = sfm<T>::pack(m[6], m[7]);
#pragma unroll
  for (int ql = 0; ql < QW; ql++) {
    sfm<T>::mma(yy[2 * ql], af, xb[ql][0], xb[ql][1]);
    sfm<T>::mma(yy[2 * ql + 1], af, xb[ql][2], xb[ql][3]);
  }
}

/* Off-diagonal tile (G, j < G): (C·Bᵀ ∘ f) x̃, f_l = 2^(c_l - c_r) (c_r = c[16 j + 15])
 * applied to the 16-bit C·Bᵀ words in pairs; x̃ = 2^(c_r - c_s) dt_s x_s is in smem. */
template <typename T, int QW>
__device__ __forceinline__ void out_off(float (&yy)[2 * QW][4], const uint4 *cbs, const float *cum, int G, int j,
                                        float cl0, float cl1, const uint32_t (&xb)[QW][4], int lane) {
  const uint4 cbv = cbs[(G * (G + 1) / 2 + j) * 32 + lane];
  const float cr = cum[16 * j + 15];
  const float f0 = sfm_ex2(cl0 - cr), f1 = sfm_ex2(cl1 - cr);
  const uint32_t F0 = sfm<T>::pack(f0, f0), F1 = sfm<T>::pack(f1, f1);
  uint32_t af[4];
  af[0] = sfm<T>::mul2(cbv.x, F0); /* row l0   */
  af[1] = sfm<T>::mul2(cbv.y, F1); /* row l0+8 */
  af[2] = sfm<T>::mul2(cbv.z, F0);
  af[3] = sfm<T>::mul2(cbv.w, F1);
#pragma unroll
  for (int ql = 0; ql < QW; ql++) {
    sfm<T>::mma(yy[2 * ql], af, xb[ql][0], xb[ql][1]);
    sfm<T>::mma(yy[2 * ql + 1], af, xb[ql][2], xb[ql][3]);
  }
}

/* Persistent: gridDim.x blocks (one an SM, 256 PH threads) split the
 * window's items (b, chunk, head), head fastest, into contiguous ranges.
 * Per item (4 barriers):
 *   B1: x, S_in, dt/c of this item (and C, C·Bᵀ of its chunk) have landed;
 *       x, dt/c of the next item go in flight; column factors -> eb.
 *   y = 2^c_l C S_in; the two diagonal tiles and D x from unscaled x.
 *   B3: S_in, C and unscaled x are free -> S_in (and C) of the next item in
 *       flight; x -> x̃ = 2^(c_r - c_s) dt_s x_s in place (rows 0..239).
 *   B5: the off-diagonal tiles (x̃ fragments of a column tile serve G0 and G1).
 *   B4: x̃ and the C·Bᵀ tiles free -> the next chunk's tiles in flight (on a
 *       chunk change); y (z gate) staged in this item's x buffer (own rows and
 *       channels), stored 16 bytes a lane.
 * PH = 1: 8 warps (195 registers, the default); PH = 2: 16 warps of half the channels
 * (<= 128 registers; the masked C·Bᵀ fragments are built by both halves;
 * measured slower, see bench/notes-mamba.md). */
template <typename T, int NS, int PH>
__global__ void __launch_bounds__(256 * PH, 1) ssd_out_kernel(SsdArgs a) {
  using S = OutSmem<NS>;
  constexpr int NTH = 256 * PH, QW = 4 / PH, PTW = 2 * QW;
  extern __shared__ __align__(16) unsigned char smem[];
  uint4 *CBs = reinterpret_cast<uint4 *>(smem + S::CB_OFF);
  T *Cs = reinterpret_cast<T *>(smem + S::C_OFF);
  T *Xs = reinterpret_cast<T *>(smem + S::X_OFF);
  uint4 *Sf = reinterpret_cast<uint4 *>(smem + S::S_OFF);
  float *Vs = reinterpret_cast<float *>(smem + S::V_OFF);
  float *eb = reinterpret_cast<float *>(smem + S::E_OFF);
  const int H = a.n_heads;
  const int batch_items = a.cwn * H;
  const int64_t n_items = (int64_t)a.batch * batch_items;
  const int64_t i_beg = (int64_t)blockIdx.x * n_items / gridDim.x;
  const int64_t i_end = ((int64_t)blockIdx.x + 1) * n_items / gridDim.x;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gq = lane >> 2, tq = lane & 3;
  const int G0 = warp & 7, G1 = 15 - G0, ph = warp >> 3;
  const int qt0 = QW * ph, pt0 = PTW * ph; /* first 16-channel / 8-channel tile of this warp */

  /* the first valid item at or after i (n_items when none) */
  auto valid_from = [&](int64_t i) -> int64_t {
    while (i < i_end) {
      const int b = (int)(i / batch_items), k = (int)((i / H) % a.cwn);
      if ((int64_t)k * Q < seq_rem(a, b)) return i;
      i = ((i / H) + 1) * H; /* the next chunk */
    }
    return n_items;
  };
  struct Item {
    int b, k, h, g, qc;
    int64_t slot, tok0;
  };
  auto item_of = [&](int64_t i) -> Item {
    Item it;
    it.b = (int)(i / batch_items);
    it.k = (int)((i / H) % a.cwn);
    it.h = (int)(i % H);
    it.g = it.h / a.hpg;
    const int64_t rem = seq_rem(a, it.b), c0 = (int64_t)it.k * Q;
    it.qc = (int)(rem - c0 < Q ? rem - c0 : Q);
    it.slot = (int64_t)it.b * a.cw + it.k;
    it.tok0 = a.start[it.b] + a.tok_off + c0;
    return it;
  };
  auto load_cb = [&](const Item &it) {
    const uint4 *src = a.cb + (it.slot * a.n_groups + it.g) * (NTILE * 32);
    for (int i = tid; i < NTILE * 32; i += NTH) sfm_cp16(CBs + i, src + i, true);
  };
  auto load_c = [&](const Item &it) {
    constexpr int SEG = NS / 8;
    const T *Cg = static_cast<const T *>(a.C) + (int64_t)it.g * NS;
#pragma unroll 4
    for (int i = tid; i < Q * SEG; i += NTH) {
      const int r = i / SEG, sg = i % SEG;
      const bool ok = r < it.qc;
      sfm_cp16(Cs + swz<NS>(r, sg), Cg + (it.tok0 + (ok ? r : 0)) * a.Cts + sg * 8, ok);
    }
  };
  auto load_x = [&](const Item &it, int buf) {
    const T *xg = static_cast<const T *>(a.x) + (int64_t)it.h * P;
    T *xs = Xs + buf * Q * 64;
#pragma unroll
    for (int i = 0; i < 8 / PH; i++) {
      const int r = (tid >> 3) + (NTH / 8) * i, sg = tid & 7;
      const bool ok = r < it.qc;
      sfm_cp16(xs + xsw(r, sg), xg + (it.tok0 + (ok ? r : 0)) * a.xts + sg * 8, ok);
    }
    if (tid < 128) sfm_cp16(Vs + buf * 512 + 4 * tid, a.vec + (it.slot * H + it.h) * 512 + 4 * tid, true);
  };
  auto load_s = [&](const Item &it) {
    const uint4 *src = a.sin + (it.slot * H + it.h) * (NS / 16 * 4 * 32);
#pragma unroll
    for (int i = tid; i < NS / 16 * 4 * 32; i += NTH) sfm_cp16(Sf + i, src + i, true);
  };

  int64_t i = valid_from(i_beg);
  if (i >= i_end) return;
  Item cur = item_of(i);
  load_cb(cur);
  load_c(cur);
  load_x(cur, 0);
  load_s(cur);
  sfm_cp_commit();
  int buf = 0;
  const T *zg = static_cast<const T *>(a.z);
  T *og = static_cast<T *>(a.out);
#pragma unroll 1
  while (true) {
    sfm_cp_wait<0>();
    __syncthreads(); /* B1 */
    const int64_t inx = valid_from(i + 1);
    const bool has_next = inx < i_end;
    Item nxt = cur;
    bool new_chunk = false;
    if (has_next) {
      nxt = item_of(inx);
      new_chunk = nxt.slot != cur.slot || nxt.g != cur.g;
      load_x(nxt, buf ^ 1);
    }
    sfm_cp_commit();
    const float *cum = Vs + buf * 512, *dts = cum + 256;
    const T *xc = Xs + buf * Q * 64;
    if (tid < Q) { /* column factor 2^(c_r - c_s) dt_s, c_r = c[last token of s's tile] */
      const int s = tid;
      eb[s] = sfm_ex2(cum[s | 15] - cum[s]) * dts[s];
    }
    float y[2][PTW][4];
#pragma unroll
    for (int gi = 0; gi < 2; gi++)
#pragma unroll
      for (int pt = 0; pt < PTW; pt++)
#pragma unroll
        for (int e = 0; e < 4; e++) y[gi][pt][e] = 0.0f;
    /* inter-chunk: y = 2^c_l C S_in */
#pragma unroll 2
    for (int kt = 0; kt < NS / 16; kt++) {
      uint4 bc[QW];
#pragma unroll
      for (int ql = 0; ql < QW; ql++) bc[ql] = Sf[(kt * 4 + qt0 + ql) * 32 + lane];
#pragma unroll
      for (int gi = 0; gi < 2; gi++) {
        const int G = gi ? G1 : G0;
        uint32_t af[4];
        sfm_ldsm4(af, Cs + swz<NS>(16 * G + sfm_row_a(lane), 2 * kt + (lane >> 4)));
#pragma unroll
        for (int ql = 0; ql < QW; ql++) {
          sfm<T>::mma(y[gi][2 * ql], af, bc[ql].x, bc[ql].y);
          sfm<T>::mma(y[gi][2 * ql + 1], af, bc[ql].z, bc[ql].w);
        }
      }
    }
    float cl[2][2];
#pragma unroll
    for (int gi = 0; gi < 2; gi++) {
      const int G = gi ? G1 : G0;
      cl[gi][0] = cum[16 * G + gq];
      cl[gi][1] = cum[16 * G + gq + 8];
      const float e0 = sfm_ex2(cl[gi][0]), e1 = sfm_ex2(cl[gi][1]);
#pragma unroll
      for (int pt = 0; pt < PTW; pt++) {
        y[gi][pt][0] *= e0;
        y[gi][pt][1] *= e0;
        y[gi][pt][2] *= e1;
        y[gi][pt][3] *= e1;
      }
    }
    /* the diagonal tiles and D x (unscaled x) */
    out_diag<T, QW>(y[0], CBs, cum, dts, G0, cl[0][0], cl[0][1], xc, qt0, lane);
    out_diag<T, QW>(y[1], CBs, cum, dts, G1, cl[1][0], cl[1][1], xc, qt0, lane);
    {
      const float Dh = a.D ? a.D[cur.h] : 0.0f;
#pragma unroll
      for (int gi = 0; gi < 2; gi++) {
        const int l0 = 16 * (gi ? G1 : G0) + gq;
#pragma unroll
        for (int hf = 0; hf < 2; hf++)
#pragma unroll
          for (int pl = 0; pl < PTW; pl++) {
            const float2 xv =
                sfm<T>::unpack(*reinterpret_cast<const uint32_t *>(xc + xsw(l0 + 8 * hf, pt0 + pl) + 2 * tq));
            y[gi][pl][2 * hf] += Dh * xv.x;
            y[gi][pl][2 * hf + 1] += Dh * xv.y;
          }
      }
    }
    __syncthreads(); /* B3: S_in, C and unscaled x read by every warp; eb written */
    if (has_next) {
      load_s(nxt);
      if (new_chunk) load_c(nxt);
    }
    sfm_cp_commit();
    { /* x -> x̃ in place, rows 0 .. 239 (the last column tile is only diagonal) */
      T *xm = Xs + buf * Q * 64;
#pragma unroll
      for (int u = 0; u < 8 / PH; u++) {
        const int r = (tid >> 3) + (NTH / 8) * u, sg = tid & 7;
        if (r < 240) {
          uint4 *pv = reinterpret_cast<uint4 *>(xm + xsw(r, sg));
          uint4 v = *pv;
          const float e = eb[r];
          float2 f;
          f = sfm<T>::unpack(v.x); v.x = sfm<T>::pack(f.x * e, f.y * e);
          f = sfm<T>::unpack(v.y); v.y = sfm<T>::pack(f.x * e, f.y * e);
          f = sfm<T>::unpack(v.z); v.z = sfm<T>::pack(f.x * e, f.y * e);
          f = sfm<T>::unpack(v.w); v.w = sfm<T>::pack(f.x * e, f.y * e);
          *pv = v;
        }
      }
    }
    __syncthreads(); /* B5: x̃ complete */
    /* off-diagonal tiles: column tiles j < G0 feed both row groups */
#pragma unroll 2
    for (int j = 0; j < G0; j++) {
      uint32_t xb[QW][4];
#pragma unroll
      for (int ql = 0; ql < QW; ql++)
        sfm_ldsm4_t(xb[ql], xc + xsw(16 * j + sfm_row_bt(lane), 2 * (qt0 + ql) + (sfm_col_bt(lane) >> 3)));
      out_off<T, QW>(y[0], CBs, cum, G0, j, cl[0][0], cl[0][1], xb, lane);
      out_off<T, QW>(y[1], CBs, cum, G1, j, cl[1][0], cl[1][1], xb, lane);
    }
#pragma unroll 2
    for (int j = G0; j < G1; j++) {
      uint32_t xb[QW][4];
#pragma unroll
      for (int ql = 0; ql < QW; ql++)
        sfm_ldsm4_t(xb[ql], xc + xsw(16 * j + sfm_row_bt(lane), 2 * (qt0 + ql) + (sfm_col_bt(lane) >> 3)));
      out_off<T, QW>(y[1], CBs, cum, G1, j, cl[1][0], cl[1][1], xb, lane);
    }
    /* the z gate and 16-bit packing (fragment layout: rows 16 G + gq (+8),
     * channels 8 (pt0 + pl) + 2 tq (+1)) */
    uint32_t o[2][PTW][2];
#pragma unroll
    for (int gi = 0; gi < 2; gi++) {
      const int l0 = 16 * (gi ? G1 : G0) + gq;
#pragma unroll
      for (int hf = 0; hf < 2; hf++) {
        const int l = l0 + 8 * hf;
        uint32_t zw[PTW];
        if (zg) {
          const bool ok = l < cur.qc;
          const uint32_t *zr = reinterpret_cast<const uint32_t *>(
              zg + (cur.tok0 + (ok ? l : 0)) * a.zts + (int64_t)cur.h * P + 8 * pt0 + 2 * tq);
#pragma unroll
          for (int pl = 0; pl < PTW; pl++) zw[pl] = ok ? __ldg(zr + 4 * pl) : 0u;
        }
#pragma unroll
        for (int pl = 0; pl < PTW; pl++) {
          float v0 = y[gi][pl][2 * hf], v1 = y[gi][pl][2 * hf + 1];
          if (zg) {
            const float2 zf = sfm<T>::unpack(zw[pl]);
            v0 *= zf.x / (1.0f + __expf(-zf.x));
            v1 *= zf.y / (1.0f + __expf(-zf.y));
          }
          o[gi][pl][hf] = sfm<T>::pack(v0, v1);
        }
      }
    }
    __syncthreads(); /* B4: every warp is done with x̃ and the C·Bᵀ tiles */
    if (has_next && new_chunk) load_cb(nxt);
    sfm_cp_commit();
    T *xw = Xs + buf * Q * 64; /* this item's x buffer: the staging of its own rows and channels */
#pragma unroll
    for (int gi = 0; gi < 2; gi++) {
      const int l0 = 16 * (gi ? G1 : G0) + gq;
#pragma unroll
      for (int hf = 0; hf < 2; hf++)
#pragma unroll
        for (int pl = 0; pl < PTW; pl++)
          *reinterpret_cast<uint32_t *>(xw + xsw(l0 + 8 * hf, pt0 + pl) + 2 * tq) = o[gi][pl][hf];
    }
    __syncwarp();
    {
      T *orow = og + (int64_t)cur.h * P;
#pragma unroll
      for (int u = 0; u < PTW; u++) {
        const int idx = lane + 32 * u, rl = idx / PTW, sg = pt0 + idx % PTW;
        const int l = rl < 16 ? 16 * G0 + rl : 16 * G1 + rl - 16;
        if (l < cur.qc)
          sfm_st16(orow + (cur.tok0 + l) * a.ots + sg * 8, *reinterpret_cast<const uint4 *>(xw + xsw(l, sg)));
      }
    }
    if (!has_next) break;
    i = inx;
    cur = nxt;
    buf ^= 1;
  }
}

/* ------------------------------------------------------- stage 3, v3 */

constexpr int XP = 72; /* smem pitch (elements) of 64-wide 16-bit tiles (v3 stage 3) */
constexpr int RING = 12; /* C·Bᵀ tiles in flight per warp (2 blocks an SM still fit) */

template <int NS> struct OutV3Smem {
  static constexpr int CP = NS + 8, YP = 72;
  static constexpr size_t C_BYTES = (size_t)128 * CP * 2;      /* C rows of the block */
  static constexpr size_t S_BYTES = (size_t)NS / 16 * 4 * 512; /* S_in fragments */
  static constexpr size_t Y_BYTES = (size_t)128 * YP * 4;      /* y staging, over C and S_in */
  static constexpr size_t R0 = C_BYTES + S_BYTES > Y_BYTES ? C_BYTES + S_BYTES : Y_BYTES;
  static constexpr size_t CUM = R0, RING_OFF = CUM + 2 * Q * 4, X_OFF = RING_OFF + (size_t)4 * RING * 512;
  static constexpr size_t BYTES = X_OFF + (size_t)Q * XP * 2;
};

__device__ __forceinline__ int out_group(int hf, int lg) { return hf ? lg + 4 : (lg < 4 ? lg : lg + 8); }

template <typename T, int NS>
__global__ void __launch_bounds__(128, 2) ssd_out_v3_kernel(SsdArgs a) {
  using S = OutV3Smem<NS>;
  constexpr int CP = S::CP, YP = S::YP;
  extern __shared__ __align__(16) unsigned char smem[];
  T *Cs = reinterpret_cast<T *>(smem);                             /* [128][CP] */
  uint4 *Sf = reinterpret_cast<uint4 *>(smem + S::C_BYTES);         /* [NS/16][4][32] */
  float *Ys = reinterpret_cast<float *>(smem);                      /* [128][YP], after the products */
  float *cum = reinterpret_cast<float *>(smem + S::CUM);            /* [Q] */
  float *dts = cum + Q;                                             /* [Q] */
  uint4 *ring = reinterpret_cast<uint4 *>(smem + S::RING_OFF);      /* [4 warps][RING][32] */
  T *Xs = reinterpret_cast<T *>(smem + S::X_OFF);                   /* [Q][XP] */
  const int h = blockIdx.x >> 1, hf = blockIdx.x & 1, k = blockIdx.y, b = blockIdx.z;
  const int64_t rem = seq_rem(a, b), c0 = (int64_t)k * Q;
  if (c0 >= rem) return;
  const int qc = (int)(rem - c0 < Q ? rem - c0 : Q);
  const int g = h / a.hpg;
  const int64_t slot = (int64_t)b * a.cw + k;
  const int64_t tok0 = a.start[b] + a.tok_off + c0;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gq = lane >> 2, tq = lane & 3;
  const int G0 = out_group(hf, warp), G1 = out_group(hf, 7 - warp); /* G0 + G1 + 2 = 17 tiles */
  {
    constexpr int SEG = NS / 8;
    const T *Cg = static_cast<const T *>(a.C) + (int64_t)g * NS;
    for (int i = tid; i < 128 * SEG; i += 128) {
      const int r = i / SEG, sg = i % SEG;
      const int l = 16 * out_group(hf, r >> 4) + (r & 15);
      const bool ok = l < qc;
      sfm_cp16(Cs + r * CP + sg * 8, Cg + (tok0 + (ok ? l : 0)) * a.Cts + sg * 8, ok);
    }
    const uint4 *sg_in = a.sin + (slot * a.n_heads + h) * (NS / 16 * 4 * 32);
    for (int i = tid; i < NS / 16 * 4 * 32; i += 128) sfm_cp16(Sf + i, sg_in + i, true);
    const float *vp = a.vec + (slot * a.n_heads + h) * 512;
    sfm_cp16(cum + 4 * tid, vp + 4 * tid, true); /* cum and dts are contiguous, as in vec */
    sfm_cp_commit();
    const int s_lim = hf ? 192 : 256;
    const T *xg = static_cast<const T *>(a.x) + (int64_t)h * P;
    for (int i = tid; i < s_lim * 8; i += 128) {
      const int r = i >> 3, sg = i & 7;
      const bool ok = r < qc;
      sfm_cp16(Xs + r * XP + sg * 8, xg + (tok0 + (ok ? r : 0)) * a.xts + sg * 8, ok);
    }
    sfm_cp_commit();
  }
  /* this lane's 16 bytes of the warp's 17 C·Bᵀ tiles, RING ahead (own data: no barrier) */
  const uint4 *cbp = a.cb + (slot * a.n_groups + g) * (NTILE * 32) + lane;
  uint4 *myring = ring + warp * RING * 32 + lane;
  auto cb_issue = [&](int t) {
    if (t < 17) {
      const int G = t <= G0 ? G0 : G1, j = t <= G0 ? t : t - G0 - 1;
      sfm_cp16(myring + (t % RING) * 32, cbp + (G * (G + 1) / 2 + j) * 32, true);
    }
    sfm_cp_commit();
  };
#pragma unroll
  for (int t = 0; t < RING; t++) cb_issue(t);

  float y[2][8][4];
#pragma unroll
  for (int gi = 0; gi < 2; gi++)
#pragma unroll
    for (int pt = 0; pt < 8; pt++)
#pragma unroll
      for (int e = 0; e < 4; e++) y[gi][pt][e] = 0.0f;

  sfm_cp_wait<RING + 1>();
  __syncthreads();
  /* inter-chunk: y = C S_in */
  {
#pragma unroll 2
    for (int kt = 0; kt < NS / 16; kt++) {
      uint4 bc[4];
#pragma unroll
      for (int qq = 0; qq < 4; qq++) bc[qq] = Sf[(kt * 4 + qq) * 32 + lane];
#pragma unroll
      for (int gi = 0; gi < 2; gi++) {
        const int lg = gi ? 7 - warp : warp;
        uint32_t af[4];
        sfm_ldsm4(af, Cs + (16 * lg + sfm_row_a(lane)) * CP + 16 * kt + sfm_col_a(lane));
#pragma unroll
        for (int qq = 0; qq < 4; qq++) {
          sfm<T>::mma(y[gi][2 * qq], af, bc[qq].x, bc[qq].y);
          sfm<T>::mma(y[gi][2 * qq + 1], af, bc[qq].z, bc[qq].w);
        }
      }
    }
#pragma unroll
    for (int gi = 0; gi < 2; gi++) {
      const int G = gi ? G1 : G0;
      const float e0 = sfm_ex2(cum[16 * G + gq]), e1 = sfm_ex2(cum[16 * G + gq + 8]);
#pragma unroll
      for (int pt = 0; pt < 8; pt++) {
        y[gi][pt][0] *= e0;
        y[gi][pt][1] *= e0;
        y[gi][pt][2] *= e1;
        y[gi][pt][3] *= e1;
      }
    }
  }
  sfm_cp_wait<RING - 1>(); /* x, and this lane's first tile */
  __syncthreads();
  /* intra-chunk: y += (C Bᵀ ∘ L) x, L[l][s] = 2^(c_l - c_s) dt_s for s <= l */
  {
    int t = 0;
#pragma unroll
    for (int gi = 0; gi < 2; gi++) {
      const int G = gi ? G1 : G0;
      const int l0 = 16 * G + gq;
      const float cl0 = cum[l0], cl1 = cum[l0 + 8];
#pragma unroll 1
      for (int j = 0; j <= G; j++, t++) {
        sfm_cp_wait<RING - 1>();
        const uint4 cbv = myring[(t % RING) * 32];
        const int s0 = 16 * j + 2 * tq;
        const float2 cs0 = *reinterpret_cast<const float2 *>(cum + s0);
        const float2 cs1 = *reinterpret_cast<const float2 *>(cum + s0 + 8);
        const float2 ds0 = *reinterpret_cast<const float2 *>(dts + s0);
        const float2 ds1 = *reinterpret_cast<const float2 *>(dts + s0 + 8);
        const float2 v0 = sfm<T>::unpack(cbv.x), v1 = sfm<T>::unpack(cbv.y);
        const float2 v2 = sfm<T>::unpack(cbv.z), v3 = sfm<T>::unpack(cbv.w);
        float m[8];
        m[0] = v0.x * sfm_ex2(cl0 - cs0.x) * ds0.x; /* (l0,   s0)     */
        m[1] = v0.y * sfm_ex2(cl0 - cs0.y) * ds0.y; /* (l0,   s0+1)   */
        m[2] = v1.x * sfm_ex2(cl1 - cs0.x) * ds0.x; /* (l0+8, s0)     */
        m[3] = v1.y * sfm_ex2(cl1 - cs0.y) * ds0.y; /* (l0+8, s0+1)   */
        m[4] = v2.x * sfm_ex2(cl0 - cs1.x) * ds1.x; /* (l0,   s0+8)   */
        m[5] = v2.y * sfm_ex2(cl0 - cs1.y) * ds1.y; /* (l0,   s0+9)   */
        m[6] = v3.x * sfm_ex2(cl1 - cs1.x) * ds1.x; /* (l0+8, s0+8)   */
        m[7] = v3.y * sfm_ex2(cl1 - cs1.y) * ds1.y; /* (l0+8, s0+9)   */
        cb_issue(t + RING); /* refills the slot read above: cbv has been consumed */
        if (j == G) { /* diagonal tile: keep s <= l (row gq / gq+8, column 2tq.. / 2tq+8..) */
          const int ca = 2 * tq;
          if (ca > gq) m[0] = 0.0f;
          if (ca + 1 > gq) m[1] = 0.0f;
          if (ca > gq + 8) m[2] = 0.0f;
          if (ca + 1 > gq + 8) m[3] = 0.0f;
          if (ca + 8 > gq) m[4] = 0.0f;
          if (ca + 9 > gq) m[5] = 0.0f;
          if (ca + 8 > gq + 8) m[6] = 0.0f;
          if (ca + 9 > gq + 8) m[7] = 0.0f;
        }
        uint32_t af[4];
        af[0] = sfm<T>::pack(m[0], m[1]);
        af[1] = sfm<T>::pack(m[2], m[3]);
        af[2] = sfm<T>::pack(m[4], m[5]);
        af[3] = sfm<T>::pack(m[6], m[7]);
#pragma unroll
        for (int qq = 0; qq < 4; qq++) {
          uint32_t bf[4];
          sfm_ldsm4_t(bf, Xs + (16 * j + sfm_row_bt(lane)) * XP + 16 * qq + sfm_col_bt(lane));
          sfm<T>::mma(y[gi][2 * qq], af, bf[0], bf[1]);
          sfm<T>::mma(y[gi][2 * qq + 1], af, bf[2], bf[3]);
        }
      }
    }
  }
  __syncthreads(); /* every warp is done with Cs and Sf: Ys reuses them */
#pragma unroll
  for (int gi = 0; gi < 2; gi++) {
    const int r = 16 * (gi ? 7 - warp : warp) + gq;
#pragma unroll
    for (int pt = 0; pt < 8; pt++) {
      const int p = 8 * pt + 2 * tq;
      *reinterpret_cast<float2 *>(Ys + r * YP + p) = make_float2(y[gi][pt][0], y[gi][pt][1]);
      *reinterpret_cast<float2 *>(Ys + (r + 8) * YP + p) = make_float2(y[gi][pt][2], y[gi][pt][3]);
    }
  }
  __syncthreads();
  const float Dh = a.D ? a.D[h] : 0.0f;
  const T *zg = static_cast<const T *>(a.z);
  T *og = static_cast<T *>(a.out);
  uint4 zv[8];
  if (zg) { /* every z load in flight at once */
#pragma unroll
    for (int u = 0; u < 8; u++) {
      const int i = tid + 128 * u, r = i >> 3, p8 = (i & 7) * 8;
      const int l = 16 * out_group(hf, r >> 4) + (r & 15);
      zv[u] = l < qc ? __ldg(reinterpret_cast<const uint4 *>(zg + (tok0 + l) * a.zts + (int64_t)h * P + p8))
                     : make_uint4(0, 0, 0, 0);
    }
  }
#pragma unroll
  for (int u = 0; u < 8; u++) {
    const int i = tid + 128 * u, r = i >> 3, p8 = (i & 7) * 8;
    const int l = 16 * out_group(hf, r >> 4) + (r & 15);
    if (l >= qc) continue;
    const float4 ya = *reinterpret_cast<const float4 *>(Ys + r * YP + p8);
    const float4 yb = *reinterpret_cast<const float4 *>(Ys + r * YP + p8 + 4);
    float v[8] = {ya.x, ya.y, ya.z, ya.w, yb.x, yb.y, yb.z, yb.w};
    const uint4 xv = *reinterpret_cast<const uint4 *>(Xs + l * XP + p8);
    const uint32_t xw[4] = {xv.x, xv.y, xv.z, xv.w};
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const float2 f = sfm<T>::unpack(xw[e]);
      v[2 * e] += Dh * f.x;
      v[2 * e + 1] += Dh * f.y;
    }
    if (zg) {
      const uint32_t zw[4] = {zv[u].x, zv[u].y, zv[u].z, zv[u].w};
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const float2 f = sfm<T>::unpack(zw[e]);
        v[2 * e] *= f.x / (1.0f + __expf(-f.x));
        v[2 * e + 1] *= f.y / (1.0f + __expf(-f.y));
      }
    }
    uint4 o;
    o.x = sfm<T>::pack(v[0], v[1]);
    o.y = sfm<T>::pack(v[2], v[3]);
    o.z = sfm<T>::pack(v[4], v[5]);
    o.w = sfm<T>::pack(v[6], v[7]);
    sfm_st16(og + (tok0 + l) * a.ots + (int64_t)h * P + p8, o);
  }
}

/* ---------------------------------------------------------------- launch */

template <int NS> constexpr size_t prep_smem() { return (size_t)2 * Q * (NS + 8) * 2; }

/* Tuning switches for timing comparisons (SF_SSD_TUNE, read once per
 * process; the defaults are the measured best, see bench/notes-mamba.md):
 * "fast" the state without the hi/lo split (16-bit w x, ~1e-3 state error),
 * "s2" the state with 2 stages, "st16" the 16-warp state kernel, "o16" the
 * 16-warp stage 3, "o3" the v3 stage 3. */
struct Tune {
  int stages3, precise, out_v3, out_ph2, st16;
};
static Tune tune_from_env() {
  Tune t = {1, 1, 0, 0, 0};
  const char *e = getenv("SF_SSD_TUNE");
  if (e) {
    if (strstr(e, "s2")) t.stages3 = 0;
    if (strstr(e, "fast")) t.precise = 0;
    if (strstr(e, "o3")) t.out_v3 = 1;
    if (strstr(e, "o16")) t.out_ph2 = 1;
    if (strstr(e, "st16")) t.st16 = 1;
  }
  return t;
}

template <typename T, int NS, bool PRECISE>
sf_status launch_state16(sf_op_ctx *ctx, const SsdArgs &a, int H, int batch, cudaStream_t s, sf_error *err) {
  SF_TRY(sf_cuda_smem_optin(ctx, (const void *)ssd_state16_kernel<T, NS, PRECISE>, STATE16_BYTES, "ssd", err));
  ssd_state16_kernel<T, NS, PRECISE><<<dim3(NS / 64, (unsigned)H, (unsigned)batch), 512, STATE16_BYTES, s>>>(a);
  SF_CUDA_LAUNCHED("ssd_state16_kernel");
  return SF_OK;
}

template <typename T, int NS, int STAGES, bool PRECISE>
sf_status launch_state(sf_op_ctx *ctx, const SsdArgs &a, int H, int batch, cudaStream_t s, sf_error *err) {
  const size_t sm = StateSmem<STAGES>::BYTES;
  SF_TRY(sf_cuda_smem_optin(ctx, (const void *)ssd_state_kernel<T, NS, STAGES, PRECISE>, sm, "ssd", err));
  ssd_state_kernel<T, NS, STAGES, PRECISE><<<dim3(NS / 64, (unsigned)H, (unsigned)batch), 256, sm, s>>>(a);
  SF_CUDA_LAUNCHED("ssd_state_kernel");
  return SF_OK;
}

template <typename T, int NS>
sf_status launch(sf_op_ctx *ctx, const sf_ssd_params *p, int stages, int v3, sf_error *err) {
  const int H = p->n_heads, G = p->n_groups, batch = p->seqs.batch;
  const int64_t nchunks = (p->seqs.max_len + Q - 1) / Q;
  const size_t cb_b = (size_t)G * NTILE * 512, vec_b = (size_t)H * 2048, sin_b = (size_t)H * P * NS * 2;
  const size_t slot_b = cb_b + vec_b + sin_b;
  int64_t cw = (int64_t)(WS_CAP / ((size_t)batch * slot_b));
  if (cw < 1) cw = 1;
  if (cw > 65535) cw = 65535;
  if (nchunks > 0 && cw > nchunks) cw = nchunks;
  if (nchunks == 0) cw = 1; /* no tokens anywhere: only the final state (zero unless initial) */
  const size_t nslots = (size_t)batch * (size_t)cw;
  void *ws = NULL;
  SF_TRY(sf_cuda_workspace(ctx, nslots * slot_b, &ws, err));
  SsdArgs a;
  a.n_heads = H;
  a.hpg = H / G;
  a.n_groups = G;
  a.batch = batch;
  a.start = p->seqs.start;
  a.len = p->seqs.len;
  a.x = p->x;
  a.xts = p->x_token_stride;
  a.dt = p->dt;
  a.dtts = p->dt_token_stride;
  a.dt_bias = p->dt_bias;
  a.softplus = p->dt_softplus;
  a.dt_min = p->dt_min;
  a.dt_max = p->dt_max;
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
  a.out = p->out;
  a.ots = p->out_token_stride;
  a.cb = reinterpret_cast<uint4 *>(ws);
  a.vec = reinterpret_cast<float *>(static_cast<char *>(ws) + nslots * cb_b);
  a.sin = reinterpret_cast<uint4 *>(static_cast<char *>(ws) + nslots * (cb_b + vec_b));
  a.cw = (int)cw;
  a.has_init = p->has_initial_state;
  cudaStream_t s = sf_cuda_stream(ctx);
  sf_cuda_impl *impl = sf_cuda_impl_of(ctx);
  static const Tune tn = tune_from_env();
  /* the v3 stage 3 where the new one does not fit (sm_80: 163 KB) */
  const bool out_v3 = v3 || tn.out_v3 || impl->smem_optin < OutSmem<NS>::BYTES;
  const bool st3 = tn.stages3 && impl->smem_optin >= StateSmem<3>::BYTES;
  SF_TRY(sf_cuda_smem_optin(ctx, (const void *)ssd_prep_kernel<T, NS>, prep_smem<NS>(), "ssd", err));
  if (v3) SF_TRY(sf_cuda_smem_optin(ctx, (const void *)ssd_state_v3_kernel<T, NS, 64>, state_v3_smem<64>(), "ssd", err));
  if (out_v3)
    SF_TRY(sf_cuda_smem_optin(ctx, (const void *)ssd_out_v3_kernel<T, NS>, OutV3Smem<NS>::BYTES, "ssd", err));
  else if (tn.out_ph2)
    SF_TRY(sf_cuda_smem_optin(ctx, (const void *)ssd_out_kernel<T, NS, 2>, OutSmem<NS>::BYTES, "ssd", err));
  else
    SF_TRY(sf_cuda_smem_optin(ctx, (const void *)ssd_out_kernel<T, NS, 1>, OutSmem<NS>::BYTES, "ssd", err));
  const int64_t nwin = nchunks == 0 ? 1 : (nchunks + cw - 1) / cw;
  for (int64_t w = 0; w < nwin; w++) {
    a.tok_off = w * cw * Q;
    a.first = w == 0;
    const int64_t cwn = nchunks - w * cw < cw ? nchunks - w * cw : cw; /* chunks of this window */
    a.cwn = (int)(cwn > 0 ? cwn : 0);
    if (cwn > 0 && (stages & 1)) {
      ssd_prep_kernel<T, NS><<<dim3((unsigned)cwn, (unsigned)G, (unsigned)batch), 256, prep_smem<NS>(), s>>>(a);
      SF_CUDA_LAUNCHED("ssd_prep_kernel");
    }
    if (stages & 2) {
      if (v3) {
        ssd_state_v3_kernel<T, NS, 64><<<dim3(NS / 64, (unsigned)H, (unsigned)batch), 256, state_v3_smem<64>(), s>>>(a);
        SF_CUDA_LAUNCHED("ssd_state_v3_kernel");
      } else if (tn.st16 && impl->smem_optin >= STATE16_BYTES) {
        SF_TRY((tn.precise ? launch_state16<T, NS, true>(ctx, a, H, batch, s, err)
                           : launch_state16<T, NS, false>(ctx, a, H, batch, s, err)));
      } else if (st3) {
        SF_TRY((tn.precise ? launch_state<T, NS, 3, true>(ctx, a, H, batch, s, err)
                           : launch_state<T, NS, 3, false>(ctx, a, H, batch, s, err)));
      } else {
        SF_TRY((tn.precise ? launch_state<T, NS, 2, true>(ctx, a, H, batch, s, err)
                           : launch_state<T, NS, 2, false>(ctx, a, H, batch, s, err)));
      }
    }
    if (cwn > 0 && (stages & 4)) {
      if (out_v3) {
        ssd_out_v3_kernel<T, NS><<<dim3(2 * (unsigned)H, (unsigned)cwn, (unsigned)batch), 128, OutV3Smem<NS>::BYTES, s>>>(a);
        SF_CUDA_LAUNCHED("ssd_out_v3_kernel");
      } else {
        const int64_t items = (int64_t)batch * cwn * H;
        const int64_t nblk = items < impl->num_sms ? items : impl->num_sms;
        if (tn.out_ph2)
          ssd_out_kernel<T, NS, 2><<<dim3((unsigned)nblk), 512, OutSmem<NS>::BYTES, s>>>(a);
        else
          ssd_out_kernel<T, NS, 1><<<dim3((unsigned)nblk), 256, OutSmem<NS>::BYTES, s>>>(a);
        SF_CUDA_LAUNCHED("ssd_out_kernel");
      }
    }
  }
  return SF_OK;
}

bool aligned16(const void *ptr) { return ((uintptr_t)ptr & 15) == 0; }

} // namespace

/* Whether the tensor-core path takes these params (see the file comment). */
int sf_cuda_ssd_chunked_ok(const sf_ssd_params *p) {
  if (p->dtype != SF_BF16 && p->dtype != SF_F16) return 0;
  if (p->head_dim != P || (p->d_state != 64 && p->d_state != 128)) return 0;
  if (p->chunk_size != 0 && p->chunk_size != Q) return 0;
  if (2 * (int64_t)p->n_heads > 0x7fffffffLL) return 0;
  if (!aligned16(p->x) || !aligned16(p->B) || !aligned16(p->C) || !aligned16(p->out) || (p->z && !aligned16(p->z)))
    return 0;
  if (p->x_token_stride % 8 || p->B_token_stride % 8 || p->C_token_stride % 8 || p->out_token_stride % 8 ||
      (p->z && p->z_token_stride % 8))
    return 0;
  return 1;
}

/* stages: 7 = all; 1, 2, 4 = only stage 1, 2 or 3 (timing: each reads what
 * the previous call's other stages left in the workspace); +8: the v3
 * kernels of stages 2 and 3 (16-bit w ∘ B in the state; one head a block in
 * stage 3), for comparison. */
sf_status sf_cuda_ssd_chunked(sf_op_ctx *ctx, const sf_ssd_params *p, int stages, sf_error *err) {
  const int v3 = (stages & 8) != 0;
  stages &= 7;
  if (p->d_state == 128) {
    if (p->dtype == SF_BF16) return launch<__nv_bfloat16, 128>(ctx, p, stages, v3, err);
    return launch<__half, 128>(ctx, p, stages, v3, err);
  }
  if (p->dtype == SF_BF16) return launch<__nv_bfloat16, 64>(ctx, p, stages, v3, err);
  return launch<__half, 64>(ctx, p, stages, v3, err);
}
