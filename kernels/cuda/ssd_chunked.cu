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
 *     softplus, clamp) and c for every head of the group -> workspace; the
 *     causal 16x16 tiles of C·Bᵀ (mma.sync) -> workspace in bf16/f16, stored
 *     in A-fragment order (one 16-byte load per lane per tile later).
 *  2. ssd_state (grid n-block of 64 states x head x batch, 256 threads):
 *     walks the chunks in order (sequential over chunks, parallel over
 *     heads x states x channels); Sᵀ [p][n] lives in fp32 mma accumulators;
 *     per chunk it stores S_in (16-bit, in B-fragment order for stage 3),
 *     scales by 2^c_last and accumulates Xᵀ (w ∘ B) with w_s = 2^(c_last -
 *     c_s) dt_s (mma.sync), B and x double-buffered with cp.async. The
 *     final state goes to state (fp32).
 *  3. ssd_out (grid 2 x head x chunk x batch, 128 threads): half of a
 *     chunk's 256 rows (16-row groups paired g / 15-g so every warp has the
 *     same causal work): C S_in on tensor cores, then the masked (C Bᵀ ∘ L)
 *     from the stage-1 tiles times x, then D x, the z gate and the store.
 * Precision: products are 16-bit x 16-bit -> fp32 (as mamba_ssm's Triton
 * kernels); the state passing is fp32, but each chunk's contribution comes
 * from (w ∘ B) rounded to 16 bits, so the final state is accurate to ~1e-3
 * relative in bf16 (the sequential kernel: fp32 throughout).
 *
 * Workspace (ctx->workspace, grown on demand; sf_cuda_workspace_reserve
 * beforehand keeps calls capturable), per (sequence, chunk) slot:
 *   n_groups * 136 * 512 B (C·Bᵀ tiles) + n_heads * 2 KiB (dt, c)
 *   + n_heads * head_dim * d_state * 2 B (S_in)
 * e.g. 1.25 MiB a chunk for 64 heads, d_state 128. Long inputs run in
 * windows of chunks so that the workspace stays <= 1 GiB (state carried
 * through the state buffer between windows); all offsets are 64-bit. */
#include "ssd_mma.cuh"

namespace {

constexpr int Q = 256;         /* chunk */
constexpr int P = 64;          /* head_dim */
constexpr int NTILE = 136;     /* causal 16x16 tiles of a 256x256 chunk */
constexpr size_t WS_CAP = (size_t)1 << 30;

struct SsdArgs {
  int n_heads, hpg, n_groups;
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
  int has_init, first;
};

__device__ __forceinline__ int64_t seq_rem(const SsdArgs &a, int b) { return (int64_t)a.len[b] - a.tok_off; }

/* ---------------------------------------------------------------- stage 1 */

template <typename T, int NS>
__global__ void __launch_bounds__(256) ssd_prep_kernel(SsdArgs a) {
  constexpr int PITCH = NS + 8, SEG = NS / 8;
  extern __shared__ __align__(16) unsigned char smem[];
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
  /* dt and the base-2 cumulative sum: warp per head, 8 tokens a lane. */
  for (int hh = warp; hh < a.hpg; hh += 8) {
    const int h = g * a.hpg + hh;
    const float A2 = a.A[h] * SFM_LOG2E, bias = a.dt_bias ? a.dt_bias[h] : 0.0f;
    float dtv[8], cum[8], run = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; j++) {
      const int s = lane * 8 + j;
      float v = 0.0f;
      if (s < qc) {
        v = sf_ld<T>(static_cast<const T *>(a.dt) + (tok0 + s) * a.dtts + h) + bias;
        if (a.softplus) v = sf_softplus(v);
        v = fminf(fmaxf(v, a.dt_min), a.dt_max);
      }
      dtv[j] = v;
      run += v * A2;
      cum[j] = run;
    }
    float incl = run;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const float t = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += t;
    }
    float excl = __shfl_up_sync(0xffffffffu, incl, 1);
    if (lane == 0) excl = 0.0f;
    float *vp = a.vec + (slot * a.n_heads + h) * 512 + lane * 8;
    float4 *c4 = reinterpret_cast<float4 *>(vp), *d4 = reinterpret_cast<float4 *>(vp + 256);
    c4[0] = make_float4(cum[0] + excl, cum[1] + excl, cum[2] + excl, cum[3] + excl);
    c4[1] = make_float4(cum[4] + excl, cum[5] + excl, cum[6] + excl, cum[7] + excl);
    d4[0] = make_float4(dtv[0], dtv[1], dtv[2], dtv[3]);
    d4[1] = make_float4(dtv[4], dtv[5], dtv[6], dtv[7]);
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

constexpr int XP = 72; /* smem pitch (elements) of 64-wide 16-bit tiles (stage 3) */

/* Stage 2 keeps x unpadded (64 elements = 8 16-byte chunks a row) with the
 * chunk index XOR-ed by row % 8: ldmatrix reads 8 rows of one logical
 * chunk from 8 different bank groups. */
__device__ __forceinline__ int xsw(int row, int chunk) { return row * 64 + ((chunk ^ (row & 7)) << 3); }

template <int NB> constexpr size_t state_smem() {
  return (size_t)2 * Q * 64 * 2 + (size_t)2 * Q * (NB + 8) * 2 + Q * 4;
}

/* NB states a block (64: 128 blocks of 64 x 64 for d_state 128, one an SM;
 * 32: 256 blocks, two an SM); 8 warps = 4 (16 channels p) x 2 (NB/2 states). */
template <typename T, int NS, int NB>
__global__ void __launch_bounds__(256, NB == 32 ? 2 : 1) ssd_state_kernel(SsdArgs a) {
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

constexpr int RING = 12; /* C·Bᵀ tiles in flight per warp (2 blocks an SM still fit) */

template <int NS> struct OutSmem {
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
__global__ void __launch_bounds__(128, 2) ssd_out_kernel(SsdArgs a) {
  using S = OutSmem<NS>;
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

template <typename T, int NS>
sf_status launch(sf_op_ctx *ctx, const sf_ssd_params *p, int stages, int nb64, sf_error *err) {
  const int H = p->n_heads, G = p->n_groups, batch = p->seqs.batch;
  const int64_t nchunks = (p->seqs.max_len + Q - 1) / Q;
  if (nchunks == 0) {
    /* no tokens anywhere: only the final state (zero unless initial) */
  }
  const size_t cb_b = (size_t)G * NTILE * 512, vec_b = (size_t)H * 2048, sin_b = (size_t)H * P * NS * 2;
  const size_t slot_b = cb_b + vec_b + sin_b;
  int64_t cw = (int64_t)(WS_CAP / ((size_t)batch * slot_b));
  if (cw < 1) cw = 1;
  if (cw > 65535) cw = 65535;
  if (nchunks > 0 && cw > nchunks) cw = nchunks;
  if (nchunks == 0) cw = 1;
  const size_t nslots = (size_t)batch * (size_t)cw;
  void *ws = NULL;
  SF_TRY(sf_cuda_workspace(ctx, nslots * slot_b, &ws, err));
  SsdArgs a;
  a.n_heads = H;
  a.hpg = H / G;
  a.n_groups = G;
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
  SF_TRY(sf_cuda_smem_optin(ctx, (const void *)ssd_prep_kernel<T, NS>, prep_smem<NS>(), "ssd", err));
  SF_TRY(sf_cuda_smem_optin(ctx, (const void *)ssd_state_kernel<T, NS, 64>, state_smem<64>(), "ssd", err));
  SF_TRY(sf_cuda_smem_optin(ctx, (const void *)ssd_state_kernel<T, NS, 32>, state_smem<32>(), "ssd", err));
  SF_TRY(sf_cuda_smem_optin(ctx, (const void *)ssd_out_kernel<T, NS>, OutSmem<NS>::BYTES, "ssd", err));
  const int64_t nwin = nchunks == 0 ? 1 : (nchunks + cw - 1) / cw;
  for (int64_t w = 0; w < nwin; w++) {
    a.tok_off = w * cw * Q;
    a.first = w == 0;
    const int64_t cwn = nchunks - w * cw < cw ? nchunks - w * cw : cw; /* chunks of this window */
    if (cwn > 0 && (stages & 1)) {
      ssd_prep_kernel<T, NS><<<dim3((unsigned)cwn, (unsigned)G, (unsigned)batch), 256, prep_smem<NS>(), s>>>(a);
      SF_CUDA_LAUNCHED("ssd_prep_kernel");
    }
    if (stages & 2) {
      if (nb64)
        ssd_state_kernel<T, NS, 64><<<dim3(NS / 64, (unsigned)H, (unsigned)batch), 256, state_smem<64>(), s>>>(a);
      else
        ssd_state_kernel<T, NS, 32><<<dim3(NS / 32, (unsigned)H, (unsigned)batch), 256, state_smem<32>(), s>>>(a);
      SF_CUDA_LAUNCHED("ssd_state_kernel");
    }
    if (cwn > 0 && (stages & 4)) {
      ssd_out_kernel<T, NS><<<dim3(2 * (unsigned)H, (unsigned)cwn, (unsigned)batch), 128, OutSmem<NS>::BYTES, s>>>(a);
      SF_CUDA_LAUNCHED("ssd_out_kernel");
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
 * the previous call's other stages left in the workspace); +8: stage 2 with
 * 32-state blocks instead of 64. */
sf_status sf_cuda_ssd_chunked(sf_op_ctx *ctx, const sf_ssd_params *p, int stages, sf_error *err) {
  const int nb64 = (stages & 8) == 0;
  stages &= 7;
  if (p->d_state == 128) {
    if (p->dtype == SF_BF16) return launch<__nv_bfloat16, 128>(ctx, p, stages, nb64, err);
    return launch<__half, 128>(ctx, p, stages, nb64, err);
  }
  if (p->dtype == SF_BF16) return launch<__nv_bfloat16, 64>(ctx, p, stages, nb64, err);
  return launch<__half, 64>(ctx, p, stages, nb64, err);
}
