/* A Mamba-1 decode step for one sequence (ops/mamba.h sf_mamba1_decode_params)
 * as one persistent kernel: every layer, every op of it, one launch.
 *
 * Why: at batch 1 a step is a weight stream (2.8 GB at mamba-1.4b) cut into
 * five dependent kernels a layer. Launched one by one, even with
 * programmatic dependent launch, each kernel's ramp, tail and the round
 * trips after its wait leave the memory idle: the step ran at ~55% of the
 * copy rate (bench/notes-decode.md). Here one block per SM stays resident
 * for the whole step and one warp of it, the producer, streams the block's
 * share of every weight matrix of every layer into a ring of shared-memory
 * slots with the bulk copy unit, never waiting for activations: the weights
 * are constants of the step. So while the other warps wait at a grid-wide
 * barrier for the previous stage's outputs, the block's next weights are
 * already arriving; the stream stops only when the ring is full.
 *
 * Measured on an H100 (bench/notes-decode.md, 2026-11-25): correct, and
 * slower than the op-by-op step (mamba-1.4b at 2k: 2.52 ms a token against
 * 1.67), so the engine runs it only on request (SCANFLASH_PERSISTENT=1).
 * A layer took ~49 us, of which the four grid barriers ~18 us, and with
 * every wait and every dot product taken out the ring alone still needed
 * ~27 us a layer (1.9 TB/s): the next steps are in the notes.
 *
 * Work split (G blocks, block b): each matrix's rows are cut into G
 * contiguous spans (rows [n b / G, n (b + 1) / G)), a span into chunks of
 * whole rows that fit a slot, so a chunk is one contiguous copy. The
 * consumer warps take a stage's chunks in turn, each row a warp-wide dot
 * product against the stage's input vector (staged in shared memory once
 * per block, then held by each lane in registers: the lane reads the same
 * words of every row). A layer is four stages separated by grid-wide
 * barriers (a counter per stage and layer in the workspace, zeroed before
 * the launch):
 *   0. RMSNorm of x (every block, from L2) -> in_proj rows; epilogue: the
 *      conv update of the block's x channels (conv1d_update.cuh, so it
 *      agrees with the op to the bit), z kept for stage 2;
 *   1. x_proj rows over xc;
 *   2. the selective state update of the block's channels, with dt_proj
 *      (a warp per channel, a lane per state; each warp's operands loaded
 *      before the barrier);
 *   3. out_proj rows over y, added into the residual x.
 * The numerics are the op-by-op path's: f32 sums, intermediates rounded to
 * the activation type where the ops write them, f32 residual and states.
 *
 * Visibility across blocks: a stage's outputs are written with plain
 * stores, then the consumers meet at a named barrier and one thread fences
 * and adds to the counter (the pattern of a cooperative grid sync); readers
 * spin on an acquire load, fence, meet, and read other blocks' outputs
 * through L2 only (__ldcg): the same buffers are rewritten every layer, so
 * L1 could hold the last layer's. Launched cooperatively (every block
 * resident, or the launch fails), without programmatic dependent launch.
 * sm_90 (bulk copies); the launcher refuses other devices. Workspace: the
 * counters and the step's intermediates (xc, z, x_proj's output, y). */
#include "conv1d_update.cuh"
#include "cuda_common.cuh"
#include "mbarrier.cuh"

using namespace sf_async;

enum {
  MD_WARPS = 8,                       /* consumer warps a block */
  MD_CONSUMERS = MD_WARPS * 32,
  MD_THREADS = MD_CONSUMERS + 32,     /* + the producer warp */
  MD_BAR = 1,                         /* named barrier of the consumers */
  MD_SLOT_MIN = 8192,                 /* bytes a ring slot at least (more where a row is longer) */
  MD_MAX_SLOTS = 32,
  MD_CHW = 4,                         /* state-update channels a warp: 32 a block */
  MD_RW = 8,                          /* dt_rank elements a lane: up to 256 */
  MD_STAGES = 4,
};

struct md_args {
  int n_layers, d, di, N, R, W, slots, slot_bytes;
  float eps;
  float *x;
  void *xc, *z, *xdbl, *y;            /* the step's intermediates, dtype */
  unsigned *ctr;                      /* [n_layers][MD_STAGES] arrivals */
  sf_mamba1_layer_ptrs layer[SF_MAMBA1_DECODE_MAX_LAYERS];
};

/* Block b's span of n rows. */
__device__ __forceinline__ void md_span(int64_t n, int64_t *lo, int64_t *hi) {
  *lo = n * blockIdx.x / gridDim.x;
  *hi = n * (blockIdx.x + 1) / gridDim.x;
}

/* Rows of k 16-bit elements a slot holds. */
__device__ __forceinline__ int md_rows_per_chunk(const md_args &g, int k) { return g.slot_bytes / (k * 2); }

/* The three streamed matrices of a layer, in the order the stages read them. */
enum { MD_IN_PROJ, MD_X_PROJ, MD_OUT_PROJ, MD_MATRICES };

/* Matrix m of layer l: its weights, and this block's rows [lo, hi) of k
 * elements. The one description the producer and the consumers share, so
 * both walk the same chunks. */
__device__ __forceinline__ const void *md_rows(const md_args &g, int l, int m, int64_t *lo, int64_t *hi, int *k) {
  const sf_mamba1_layer_ptrs &L = g.layer[l];
  if (m == MD_IN_PROJ) {
    md_span(2 * (int64_t)g.di, lo, hi), *k = g.d;
    return L.in_proj_w;
  }
  if (m == MD_X_PROJ) {
    md_span(g.R + 2 * g.N, lo, hi), *k = g.di;
    return L.x_proj_w;
  }
  md_span(g.d, lo, hi), *k = g.di;
  return L.out_proj_w;
}

struct md_smem {
  uint32_t ring, full, empty;         /* shared addresses: slots, their full and empty mbarriers */
  const uint4 *ring_p;
  uint4 *act;                         /* a stage's input vector, 16-bit, up to 8192 */
  float *vals;                        /* the block's rows of a product, before the epilogue */
  float *xd;                          /* x_proj's output: dt_low, B, C */
  float *red;                         /* reductions */
};

/* ---- the producer: the block's weight spans, layer by layer --------------- */

__device__ void md_produce(const md_args &g, const md_smem &s) {
  uint32_t q = 0;
  for (int l = 0; l < g.n_layers; l++)
    for (int m = 0; m < MD_MATRICES; m++) {
      int64_t lo, hi;
      int k;
      const void *w = md_rows(g, l, m, &lo, &hi, &k);
      const int64_t rpc = md_rows_per_chunk(g, k), row_bytes = (int64_t)k * 2;
      for (int64_t r = lo; r < hi; r += rpc, q++) {
        const uint32_t slot = q % g.slots, bytes = (uint32_t)(min(rpc, hi - r) * row_bytes);
        if (q >= (uint32_t)g.slots) mbar_wait(s.empty + 8 * slot, (q / g.slots - 1) & 1);
        mbar_arrive_expect_tx(s.full + 8 * slot, bytes);
        bulk_g2s(s.ring + slot * g.slot_bytes, (const char *)w + r * row_bytes, bytes, s.full + 8 * slot);
      }
    }
}

/* ---- the consumers -------------------------------------------------------- */

__device__ __forceinline__ void md_sync() { named_bar_sync(MD_BAR, MD_CONSUMERS); }

__device__ __forceinline__ float md_sum(float v, float *red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = sf_warp_sum(v);
  if (lane == 0) red[warp] = v;
  md_sync();
  float t = 0.0f;
#pragma unroll
  for (int i = 0; i < MD_WARPS; i++) t += red[i];
  md_sync();
  return t;
}

__device__ __forceinline__ unsigned md_ld_acquire(const unsigned *p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

/* This block's stage is done: every consumer has written its outputs. */
__device__ __forceinline__ void md_arrive(unsigned *ctr) {
  md_sync();
  if (threadIdx.x == 0) {
    __threadfence();
    atomicAdd(ctr, 1u);
  }
}

/* Every block has finished the stage counted by ctr. */
__device__ __forceinline__ void md_wait(const unsigned *ctr) {
  if (threadIdx.x == 0) {
    while (md_ld_acquire(ctr) < gridDim.x) {
    }
    __threadfence();
  }
  md_sync();
}

/* Asks L2 for [p, p + bytes) (fire and forget): operands of later stages. */
__device__ __forceinline__ void md_prefetch(const void *p, int64_t bytes) {
  if (!p) return;
  const char *c = (const char *)((uintptr_t)p & ~(uintptr_t)127);
  const char *end = (const char *)p + bytes;
  for (c += (int64_t)threadIdx.x * 128; c < end; c += (int64_t)MD_CONSUMERS * 128)
    asm volatile("prefetch.global.L2 [%0];" ::"l"(c));
}

/* n 16-bit elements of another block's output into the act buffer. */
template <typename T>
__device__ __forceinline__ void md_stage(uint4 *act, const T *src, int n) {
  const uint4 *s = reinterpret_cast<const uint4 *>(src);
  for (int i = threadIdx.x; i < n / 8; i += MD_CONSUMERS) act[i] = __ldcg(s + i);
}

template <int AW>
__device__ __forceinline__ void md_act_regs(uint4 (&a)[AW], const uint4 *act, int k8) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int u = 0; u < AW; u++) {
    const int i = lane + 32 * u;
    a[u] = i < k8 ? act[i] : make_uint4(0, 0, 0, 0);
  }
}

template <typename T>
__device__ __forceinline__ float md_dot8(const uint4 &w, const uint4 &a) {
  const T *x = reinterpret_cast<const T *>(&w), *y = reinterpret_cast<const T *>(&a);
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 8; i++) s = fmaf(sf_to_f<T>(x[i]), sf_to_f<T>(y[i]), s);
  return s;
}

/* The block's rows [lo, hi) of a product with k-wide rows, from the ring
 * (chunks q, q + 1, ... in the producer's order) into vals[row - lo].
 * Chunk qq is warp qq % MD_WARPS's and the slots are a multiple of the
 * warps, so each slot has one consumer warp, which waits for its next fill
 * only after it has consumed the last: a full barrier is never two phases
 * behind its waiter (the parity wait could not tell those apart). */
template <typename T, int AW>
__device__ void md_gemv(const md_args &g, const md_smem &s, uint32_t &q, int64_t lo, int64_t hi, int k,
                        const uint4 (&a)[AW]) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, k8 = k / 8;
  const int rpc = md_rows_per_chunk(g, k);
  const int rows = (int)(hi - lo), chunks = (rows + rpc - 1) / rpc;
  const uint32_t first = q + (uint32_t)(warp - (int)(q % MD_WARPS) + MD_WARPS) % MD_WARPS;
  for (uint32_t qq = first; qq < q + chunks; qq += MD_WARPS) {
    const int c = (int)(qq - q);
    const uint32_t slot = qq % g.slots;
    mbar_wait(s.full + 8 * slot, (qq / g.slots) & 1);
    const uint4 *chunk = s.ring_p + slot * (g.slot_bytes / 16);
    const int nr = min(rpc, rows - c * rpc);
    for (int j = 0; j < nr; j++) {
      const uint4 *wr = chunk + j * k8;
      float acc = 0.0f;
#pragma unroll
      for (int u = 0; u < AW; u++) {
        const int i = lane + 32 * u;
        if (i < k8) acc += md_dot8<T>(wr[i], a[u]);
      }
      acc = sf_warp_sum(acc);
      if (lane == 0) s.vals[c * rpc + j] = acc;
    }
    mbar_arrive(s.empty + 8 * slot); /* every lane: each has read the slot */
  }
  q += chunks;
  md_sync();
}

/* Stage 0: x normalised into act (as the norm op writes it), in_proj, and
 * its epilogue: the conv update of x channels, z stored. */
template <typename T, int AW>
__device__ void md_in_proj(const md_args &g, const md_smem &s, uint32_t &q, int l) {
  const sf_mamba1_layer_ptrs &L = g.layer[l];
  const int d = g.d, di = g.di, W = g.W;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < d; i += MD_CONSUMERS) {
    const float v = __ldcg(g.x + i);
    ss += v * v;
  }
  const float inv = 1.0f / sqrtf(md_sum(ss, s.red) / (float)d + g.eps);
  T *act = reinterpret_cast<T *>(s.act);
  const T *nw = (const T *)L.norm_w;
  for (int i = threadIdx.x; i < d; i += MD_CONSUMERS)
    act[i] = sf_from_f<T>(__ldcg(g.x + i) * inv * sf_ldg<T>(nw + i));
  md_sync();
  int64_t lo, hi;
  int k;
  md_rows(g, l, MD_IN_PROJ, &lo, &hi, &k);
  uint4 a[AW];
  md_act_regs<AW>(a, s.act, k / 8);
  md_gemv<T, AW>(g, s, q, lo, hi, k, a);
  const T *cw = (const T *)L.conv_w, *cb = (const T *)L.conv_b;
  for (int64_t r = lo + threadIdx.x; r < hi; r += MD_CONSUMERS) {
    const T xt = sf_from_f<T>(s.vals[r - lo]);
    if (r < di) {
      T *st = W > 1 ? (T *)L.conv_state + r * (W - 1) : nullptr;
      ((T *)g.xc)[r] = sf_conv1d_update_channel<T>(xt, cw + r * W, cb ? sf_ldg<T>(cb + r) : 0.0f, st, W, 1);
    } else {
      ((T *)g.z)[r - di] = xt;
    }
  }
}

/* The block's rows [lo, hi) of matrix m of layer l over src (other blocks'
 * output): staged once, held in registers, the rows from the ring. */
template <typename T, int AW>
__device__ void md_product(const md_args &g, const md_smem &s, uint32_t &q, int l, int m, const void *src,
                           int64_t *lo, int64_t *hi) {
  int k;
  md_rows(g, l, m, lo, hi, &k);
  md_stage<T>(s.act, (const T *)src, k);
  md_sync();
  uint4 a[AW];
  md_act_regs<AW>(a, s.act, k / 8);
  md_gemv<T, AW>(g, s, q, *lo, *hi, k, a);
}

/* Stage 1: x_proj over xc. */
template <typename T, int AW>
__device__ void md_x_proj(const md_args &g, const md_smem &s, uint32_t &q, int l) {
  int64_t lo, hi;
  md_product<T, AW>(g, s, q, l, MD_X_PROJ, g.xc, &lo, &hi);
  for (int64_t r = lo + threadIdx.x; r < hi; r += MD_CONSUMERS) ((T *)g.xdbl)[r] = sf_from_f<T>(s.vals[r - lo]);
}

/* A warp's channels of the state update, loaded before the barrier: all
 * are constants of the step, the previous step's state, or outputs of
 * stage 0 (xc, z), which every block has passed by then. */
struct md_chan {
  float st[MD_CHW], A[MD_CHW], dtw[MD_CHW][MD_RW], x[MD_CHW], z[MD_CHW], D[MD_CHW], bias[MD_CHW];
};

template <typename T>
__device__ __forceinline__ void md_chan_load(const md_args &g, int l, int64_t c0, int64_t c1, md_chan &h) {
  const sf_mamba1_layer_ptrs &L = g.layer[l];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, N = g.N, R = g.R;
  const T *dtw = (const T *)L.dt_proj_w;
#pragma unroll
  for (int j = 0; j < MD_CHW; j++) {
    const int64_t c = c0 + warp + (int64_t)MD_WARPS * j;
    const bool in = c < c1;
    h.st[j] = in && lane < N ? L.ssm_state[c * N + lane] : 0.0f;
    h.A[j] = in && lane < N ? __ldg(L.A + c * N + lane) : 0.0f;
#pragma unroll
    for (int u = 0; u < MD_RW; u++) {
      const int k = lane + 32 * u;
      h.dtw[j][u] = in && k < R ? sf_ldg<T>(dtw + c * R + k) : 0.0f;
    }
    h.x[j] = in ? sf_to_f<T>(__ldcg((const T *)g.xc + c)) : 0.0f;
    h.z[j] = in ? sf_to_f<T>(__ldcg((const T *)g.z + c)) : 0.0f;
    h.D[j] = in && L.D ? __ldg(L.D + c) : 0.0f;
    h.bias[j] = in && L.dt_bias ? __ldg(L.dt_bias + c) : 0.0f;
  }
}

/* Stage 2: dt = softplus(round(dt_proj . dt_low) + bias); the state
 * s = exp(dt A) s + dt x B; y = (C . s + D x) silu(z). As the op's vector
 * kernel (selective_state_update.cu), a lane per state. */
template <typename T>
__device__ void md_state_update(const md_args &g, const md_smem &s, int l, int64_t c0, int64_t c1,
                                const md_chan &h) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, N = g.N, R = g.R, nx = R + 2 * N;
  for (int i = threadIdx.x; i < nx; i += MD_CONSUMERS) s.xd[i] = sf_to_f<T>(__ldcg((const T *)g.xdbl + i));
  md_sync();
  const float *dtl = s.xd, *B = s.xd + R, *C = s.xd + R + N;
  float *state = g.layer[l].ssm_state;
#pragma unroll
  for (int j = 0; j < MD_CHW; j++) {
    const int64_t c = c0 + warp + (int64_t)MD_WARPS * j;
    if (c >= c1) break; /* the same for the whole warp */
    float p = 0.0f;
#pragma unroll
    for (int u = 0; u < MD_RW; u++) {
      const int k = lane + 32 * u;
      if (k < R) p += h.dtw[j][u] * dtl[k];
    }
    float dt = sf_to_f<T>(sf_from_f<T>(sf_warp_sum(p))) + h.bias[j];
    dt = sf_softplus(dt);
    float yv = 0.0f;
    if (lane < N) {
      const float nn = expf(dt * h.A[j]) * h.st[j] + dt * h.x[j] * B[lane];
      state[c * N + lane] = nn;
      yv = C[lane] * nn;
    }
    yv = sf_warp_sum(yv);
    if (lane == 0) ((T *)g.y)[c] = sf_from_f<T>((yv + h.D[j] * h.x[j]) * sf_silu(h.z[j]));
  }
}

/* Stage 3: out_proj over y, added into the residual. */
template <typename T, int AW>
__device__ void md_out_proj(const md_args &g, const md_smem &s, uint32_t &q, int l) {
  int64_t lo, hi;
  md_product<T, AW>(g, s, q, l, MD_OUT_PROJ, g.y, &lo, &hi);
  for (int64_t r = lo + threadIdx.x; r < hi; r += MD_CONSUMERS) g.x[r] = __ldcg(g.x + r) + s.vals[r - lo];
}

/* The operands of layer l a block reads from memory outside the ring, asked
 * of L2 at the start of the layer. */
template <typename T>
__device__ void md_prefetch_layer(const md_args &g, int l) {
  const sf_mamba1_layer_ptrs &L = g.layer[l];
  const int64_t di = g.di, W = g.W, N = g.N, R = g.R, e = sizeof(T);
  int64_t lo, hi, c0, c1;
  int k;
  md_rows(g, l, MD_IN_PROJ, &lo, &hi, &k);
  hi = min(hi, di); /* the rows that are x channels */
  md_span(di, &c0, &c1);
  md_prefetch(L.norm_w, g.d * e);
  if (lo < hi) {
    md_prefetch((const T *)L.conv_w + lo * W, (hi - lo) * W * e);
    if (L.conv_b) md_prefetch((const T *)L.conv_b + lo, (hi - lo) * e);
    if (W > 1) md_prefetch((const T *)L.conv_state + lo * (W - 1), (hi - lo) * (W - 1) * e);
  }
  md_prefetch(L.ssm_state + c0 * N, (c1 - c0) * N * 4);
  md_prefetch(L.A + c0 * N, (c1 - c0) * N * 4);
  md_prefetch((const T *)L.dt_proj_w + c0 * R, (c1 - c0) * R * e);
  if (L.D) md_prefetch(L.D + c0, (c1 - c0) * 4);
  if (L.dt_bias) md_prefetch(L.dt_bias + c0, (c1 - c0) * 4);
}

template <typename T, int AW>
__global__ void __launch_bounds__(MD_THREADS, 1) mamba1_decode_kernel(const __grid_constant__ md_args g) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(128) unsigned char smem[];
  md_smem s;
  const size_t ring_bytes = (size_t)g.slots * g.slot_bytes;
  s.ring = (uint32_t)__cvta_generic_to_shared(smem);
  s.ring_p = reinterpret_cast<const uint4 *>(smem);
  s.full = s.ring + (uint32_t)ring_bytes;
  s.empty = s.full + 8 * g.slots;
  unsigned char *p = smem + ring_bytes + 16 * g.slots;
  s.act = reinterpret_cast<uint4 *>(p);
  p += ((size_t)max(g.d, g.di) * sizeof(T) + 15) / 16 * 16; /* as md_extra_smem */
  s.red = reinterpret_cast<float *>(p);
  s.xd = s.red + 32;
  s.vals = s.xd + g.R + 2 * g.N;
  if (threadIdx.x == 0) {
    for (int i = 0; i < g.slots; i++) mbar_init(s.full + 8 * i, 1), mbar_init(s.empty + 8 * i, 32);
    mbar_init_fence();
  }
  __syncthreads();
  if (threadIdx.x >= MD_CONSUMERS) { /* the producer warp */
    if (threadIdx.x == MD_CONSUMERS) md_produce(g, s);
    return;
  }
  uint32_t q = 0;
  int64_t c0, c1;
  md_span(g.di, &c0, &c1);
  for (int l = 0; l < g.n_layers; l++) {
    unsigned *ctr = g.ctr + l * MD_STAGES;
    md_prefetch_layer<T>(g, l);
    if (l > 0) md_wait(ctr - 1);
    md_in_proj<T, AW>(g, s, q, l);
    md_arrive(ctr + 0);
    md_wait(ctr + 0);
    md_x_proj<T, AW>(g, s, q, l);
    md_arrive(ctr + 1);
    md_chan h;
    md_chan_load<T>(g, l, c0, c1, h);
    md_wait(ctr + 1);
    md_state_update<T>(g, s, l, c0, c1, h);
    md_arrive(ctr + 2);
    md_wait(ctr + 2);
    md_out_proj<T, AW>(g, s, q, l);
    md_arrive(ctr + 3);
  }
#endif
}

/* ---- the launcher ---------------------------------------------------------- */

static sf_status unsupported(sf_error *err, const char *why) {
  return sf_fail(err, SF_ERR_UNSUPPORTED, "mamba1_decode: %s", why);
}

/* The longer of d_model and d_inner: the widest row and input vector. */
static int64_t md_widest(const sf_mamba1_decode_params *p) { return p->d_model > p->d_inner ? p->d_model : p->d_inner; }

/* Shared memory besides the ring: mbarriers, act, reductions, x_proj's
 * output, the largest span of rows. */
static size_t md_extra_smem(const sf_mamba1_decode_params *p, int slots, int grid) {
  const int64_t span = (2 * p->d_inner + grid - 1) / grid + 1;
  const int64_t spans[] = {span, (p->d_model + grid - 1) / grid + 1,
                           (p->dt_rank + 2 * p->d_state + grid - 1) / grid + 1};
  int64_t rows = 0;
  for (int i = 0; i < 3; i++) rows = spans[i] > rows ? spans[i] : rows;
  return (size_t)16 * slots + sf_align_up((size_t)md_widest(p) * 2, 16) +
         sizeof(float) * (size_t)(32 + p->dt_rank + 2 * p->d_state + rows);
}

static sf_status md_check(sf_op_ctx *ctx, const sf_mamba1_decode_params *p, sf_error *err) {
  if (p->n_layers < 0 || p->d_model <= 0 || p->d_inner <= 0 || p->d_state <= 0 || p->dt_rank <= 0 ||
      p->d_conv < 1)
    return sf_fail(err, SF_ERR_ARG, "mamba1_decode: bad sizes (layers %d, d_model %lld, d_inner %lld, d_state %d, "
                   "dt_rank %d, d_conv %d)", (int)p->n_layers, (long long)p->d_model, (long long)p->d_inner,
                   (int)p->d_state, (int)p->dt_rank, (int)p->d_conv);
  if (p->n_layers > 0 && (!p->x || !p->layers)) return sf_fail(err, SF_ERR_ARG, "mamba1_decode: x and layers are required");
  for (int l = 0; l < p->n_layers; l++) {
    const sf_mamba1_layer_ptrs *L = &p->layers[l];
    if (!L->norm_w || !L->in_proj_w || !L->conv_w || !L->x_proj_w || !L->dt_proj_w || !L->out_proj_w || !L->A ||
        !L->ssm_state || (p->d_conv > 1 && !L->conv_state))
      return sf_fail(err, SF_ERR_ARG, "mamba1_decode: layer %d lacks a weight or a state", l);
    const void *streamed[] = {L->in_proj_w, L->x_proj_w, L->out_proj_w};
    for (int i = 0; i < 3; i++)
      if ((uintptr_t)streamed[i] & 15) return unsupported(err, "a streamed weight is not 16-byte aligned");
  }
  if (p->dtype != SF_BF16 && p->dtype != SF_F16) return unsupported(err, "only 16-bit activations");
  if (p->n_layers > SF_MAMBA1_DECODE_MAX_LAYERS) return unsupported(err, "more than 64 layers");
  if (p->d_model % 8 || p->d_inner % 8 || p->d_model > 8192 || p->d_inner > 8192)
    return unsupported(err, "d_model and d_inner must be multiples of 8 up to 8192");
  if (p->d_state > 32 || p->dt_rank > 32 * MD_RW) return unsupported(err, "d_state > 32 or dt_rank > 256");
  const int grid = sf_cuda_impl_of(ctx)->num_sms;
  if ((p->d_inner + grid - 1) / grid > MD_WARPS * MD_CHW) return unsupported(err, "d_inner too wide for the grid");
  if (sf_cuda_impl_of(ctx)->cc_major < 9) return unsupported(err, "needs compute capability 9.0 (bulk copies)");
  return SF_OK;
}

template <typename T, int AW>
static sf_status md_launch(sf_op_ctx *ctx, const sf_mamba1_decode_params *p, sf_error *err) {
  sf_cuda_impl *impl = sf_cuda_impl_of(ctx);
  const int grid = impl->num_sms;
  /* A slot holds at least the longest row; the slots are a multiple of the
   * consumer warps (md_gemv). */
  const size_t row_max = sf_align_up((size_t)md_widest(p) * sizeof(T), 16);
  const size_t slot_bytes = row_max > (size_t)MD_SLOT_MIN ? row_max : (size_t)MD_SLOT_MIN;
  int slots = MD_MAX_SLOTS;
  while (slots >= MD_WARPS && (size_t)slots * slot_bytes + md_extra_smem(p, slots, grid) > impl->smem_optin)
    slots -= MD_WARPS;
  if (slots < MD_WARPS) return unsupported(err, "not enough shared memory for the weight ring");
  const size_t smem = (size_t)slots * slot_bytes + md_extra_smem(p, slots, grid);
  auto kernel = mamba1_decode_kernel<T, AW>;
  SF_TRY(sf_cuda_smem_optin(ctx, (const void *)kernel, smem, "mamba1_decode", err));

  const size_t e = sizeof(T), ctr_bytes = sf_align_up((size_t)p->n_layers * MD_STAGES * sizeof(unsigned), 256);
  const size_t vec = sf_align_up((size_t)p->d_inner * e, 256), xd = sf_align_up((size_t)(p->dt_rank + 2 * p->d_state) * e, 256);
  void *ws;
  SF_TRY(sf_cuda_workspace(ctx, ctr_bytes + 3 * vec + xd, &ws, err));
  md_args *g = (md_args *)calloc(1, sizeof(md_args));
  if (!g) return sf_fail(err, SF_ERR_NOMEM, "mamba1_decode: host memory for the arguments");
  g->n_layers = p->n_layers, g->d = (int)p->d_model, g->di = (int)p->d_inner, g->N = p->d_state;
  g->R = p->dt_rank, g->W = p->d_conv, g->slots = slots, g->slot_bytes = (int)slot_bytes, g->eps = p->eps, g->x = p->x;
  char *w = (char *)ws;
  g->ctr = (unsigned *)w;
  g->xc = w + ctr_bytes, g->z = w + ctr_bytes + vec, g->y = w + ctr_bytes + 2 * vec, g->xdbl = w + ctr_bytes + 3 * vec;
  for (int l = 0; l < p->n_layers; l++) g->layer[l] = p->layers[l];

  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3((unsigned)grid);
  cfg.blockDim = dim3(MD_THREADS);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = impl->stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeCooperative;
  attr[0].val.cooperative = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  cudaError_t ce = cudaMemsetAsync(g->ctr, 0, ctr_bytes, impl->stream);
  if (ce == cudaSuccess) ce = cudaLaunchKernelEx(&cfg, kernel, *g);
  free(g);
  if (ce != cudaSuccess) return sf_cuda_fail(err, ce, __FILE__, __LINE__, "launch mamba1_decode_kernel");
  return SF_OK;
}

template <typename T>
static sf_status md_launch_t(sf_op_ctx *ctx, const sf_mamba1_decode_params *p, sf_error *err) {
  /* words of the widest input vector a lane holds */
  const int64_t aw = (md_widest(p) / 8 + 31) / 32;
  if (aw <= 4) return md_launch<T, 4>(ctx, p, err);
  if (aw <= 16) return md_launch<T, 16>(ctx, p, err);
  return md_launch<T, 32>(ctx, p, err);
}

extern "C" SF_CUDA_OP(mamba1_decode, sf_mamba1_decode_params) {
  SF_TRY(md_check(ctx, p, err));
  if (p->n_layers == 0) return SF_OK;
  if (p->dtype == SF_BF16) return md_launch_t<__nv_bfloat16>(ctx, p, err);
  return md_launch_t<__half>(ctx, p, err);
}
