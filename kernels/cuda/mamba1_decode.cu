/* A Mamba-1 decode step for one sequence (ops/mamba.h sf_mamba1_decode_params)
 * as one persistent kernel: every layer, every op of it, one launch.
 *
 * Why: at batch 1 a step is a weight stream (2.8 GB at mamba-1.4b) cut into
 * five dependent kernels a layer. Launched one by one, even with
 * programmatic dependent launch, each kernel's ramp, tail and the round
 * trips after its wait leave the memory idle: the step ran at ~55% of the
 * copy rate (bench/notes-decode.md). Here one block per SM stays resident
 * for the whole step, and a producer warp streams the block's share of every
 * weight matrix of every layer into a ring of shared-memory slots with the
 * bulk copy unit, never waiting for activations (the weights are constants
 * of the step). While the consumer warps wait at a grid-wide barrier for
 * the previous stage's outputs, the block's next weights keep arriving; the
 * stream stops only when the ring is full.
 *
 * The consumers never read DRAM themselves. With the ring's copies in
 * flight (the ring's bytes on every SM: several microseconds of the stream),
 * a demand load that misses L2 queues behind them: the first version of
 * this kernel loaded its state-update operands that way and lost ~7 us a
 * layer to it (bench/notes-decode.md, session 7). So every operand a block
 * needs from DRAM comes by bulk copy as well, by a second producer warp into
 * two operand buffers (stage 0's: the norm weight and the block's conv
 * weights and states; stage 2's: its dt_proj rows, A, D, dt bias and SSM
 * states), each refilled for the next layer as soon as its stage has used
 * it. What the consumers read from global memory is only the small vectors
 * other blocks wrote this step (L2 hits).
 *
 * Measured on an H100 (bench/notes-decode.md, tests/gpu/bench_mamba1_step):
 * 1.28 ms a step at mamba-1.4b alone (67% of the copy rate), in the engine
 * (its default at batch 1) 1.40-1.42 ms against 1.67 op by op. The short
 * stages between the products (barriers, the conv, x_proj, the state
 * update: ~14 us a layer) free no slot, so the stream stops for part of
 * every layer; the traced stage times say where. The stream alone
 * (stream_only: the same kernel computing nothing) takes 1.21 ms with 8 KiB
 * copies and 0.85 ms (the copy rate) with 16 KiB ones; with the
 * arithmetic, 16 KiB copies help only when few are in flight
 * (MD_INFLIGHT_DEFAULT: with one, the stream alone takes 1.04 ms), because
 * more bytes in flight slow the grid barriers.
 *
 * Work split (G blocks, block b): the d_inner channels go to blocks in
 * groups of 8 (every slice 16-byte aligned); block b owns channels
 * [c0, c1): their rows of in_proj (x and z), their conv and their state
 * update, so x, z and xc of its channels never leave the block (xc is also
 * written out: x_proj needs every channel). x_proj's and out_proj's rows are
 * cut into G contiguous spans. A span is streamed in chunks of whole rows
 * that fit a slot; the consumer warps take a product's chunks in turn, each
 * row a warp-wide dot product against the stage's input vector (staged in
 * shared memory once per block and read from there word by word: held in
 * registers, 64 a lane at mamba-1.4b, it left room for only six consumer
 * warps). A layer is four stages between grid-wide barriers (a counter per
 * stage and layer in the workspace, zeroed before the launch):
 *   0. RMSNorm of x (every block, from L2) -> in_proj rows of the block's
 *      channels; epilogue: the conv update (conv1d_update.cuh, so it agrees
 *      with the op to the bit), xc written out, xc and z kept;
 *   1. x_proj rows over xc;
 *   2. the selective state update of the block's channels with dt_proj
 *      (selective_state_update.cuh: the op's arithmetic and layout);
 *   3. out_proj rows over y, added into the residual x (the block's rows
 *      of x are the same every layer: kept in shared memory too).
 * The numerics are the op-by-op path's: f32 sums, intermediates rounded to
 * the activation type where the ops write them, f32 residual and states.
 *
 * Visibility across blocks: a stage's outputs are written with plain
 * stores, then the consumers meet at a named barrier and one thread adds to
 * the counter with release semantics; readers spin on an acquire load,
 * meet, and read other blocks' outputs
 * through L2 only (__ldcg): the same buffers are rewritten every layer, so
 * L1 could hold the last layer's. Launched cooperatively (every block
 * resident, or the launch fails), without programmatic dependent launch.
 * sm_90 (bulk copies); the launcher refuses other devices. Workspace: the
 * counters and the step's intermediates (xc, x_proj's output, y). */
#include "conv1d_update.cuh"
#include "cuda_common.cuh"
#include "mbarrier.cuh"
#include "selective_state_update.cuh"

using namespace sf_async;

enum {
  MD_WARPS = 12,                      /* consumer warps a block: with the two producers, 14 warps,
                                         so up to 128 registers a thread (four warps on a scheduler) */
  MD_CONSUMERS = MD_WARPS * 32,
  MD_THREADS = MD_CONSUMERS + 64,     /* + the weight producer warp and the operand producer warp */
  MD_BAR = 1,                         /* named barrier of the consumers */
  MD_SLOT_DEFAULT = 16384,            /* bytes a ring slot (more where a row is longer): one bulk copy */
  MD_INFLIGHT_DEFAULT = 1,            /* slots whose copies may be in flight at once. The stream alone
                                         moves 16 KiB copies at the copy rate, 8 KiB ones at 71% of it;
                                         with the arithmetic, the more 16 KiB copies in flight, the
                                         slower the grid barriers and the step: 1.28 / 1.32 / 1.42 /
                                         1.48 ms with 1 / 2 / 3 / all 12, against 1.38 for 8 KiB slots
                                         all in flight (bench/notes-decode.md, session 10) */
  MD_WARP_SHARE = 8192,               /* a slot's bytes a consumer warp: a chunk goes to a group of
                                         slot_bytes / 8 KiB warps */
  MD_MAX_SLOTS = 32,
  MD_GROUP = 8,                       /* channels go to blocks in groups of 8 */
  MD_WMAX = 8,                        /* d_conv at most */
  MD_NPT = 16,                        /* elements of x a consumer thread normalises: d_model up to 6144 */
  MD_STAGES = 4,
};

/* What a trace holds for each block and layer (sf_mamba1_decode_params
 * trace, for benchmarks): the time in ns (%globaltimer) at which consumer
 * thread 0 passed each point, and two sums. */
enum {
  MD_T_START,      /* the layer begins */
  MD_T_OPA,        /* operand buffer A is there */
  MD_T_X,          /* the previous layer's out_proj is done everywhere */
  MD_T_NORM,       /* x normalised */
  MD_T_IN_PROJ,    /* the in_proj rows done */
  MD_T_CONV,       /* the block's conv channels done */
  MD_T_S0,         /* stage 0 arrived */
  MD_T_XC,         /* every block's stage 0 done */
  MD_T_S1,         /* the x_proj rows done */
  MD_T_OPB,        /* operand buffer B is there */
  MD_T_XD,         /* every block's x_proj done */
  MD_T_S2,         /* the state update done */
  MD_T_Y,          /* every block's state update done */
  MD_T_S3,         /* the out_proj rows done */
  MD_T_FULL_WAIT,  /* ns thread 0 waited for ring slots to fill in the layer */
  MD_T_PRODUCER,   /* when the weight producer issued the layer's first copy */
  MD_T_EMPTY_WAIT, /* ns the weight producer waited for free slots in the layer */
  MD_T_FLIGHT_WAIT, /* ns it waited for copies in flight to land (sf_mamba1_decode_params.inflight) */
  MD_T_POINTS
};
static_assert((int)MD_T_POINTS == (int)SF_MAMBA1_DECODE_TRACE, "the trace's points are the header's");

/* ---- shared memory: one description for the launcher and the kernel ------ */

/* Byte offsets in the dynamic shared memory, after the ring. */
struct md_layout {
  uint32_t bars;                                   /* full[slots], empty[slots], then the operand buffers' four */
  uint32_t norm_w, conv_w, conv_b, conv_st;        /* operand buffer A (stage 0) */
  uint32_t dtw, A, D, bias, st;                    /* operand buffer B (stage 2) */
  uint32_t act;                                    /* a stage's input vector, 16-bit, up to max(d, d_inner) */
  uint32_t xd;                                     /* x_proj's output, 16-bit */
  uint32_t red, vals, xcs, zs, xo;                 /* f32: reductions, a product's rows, xc, z, the block's x rows */
  uint32_t fwait;                                  /* u64: thread 0's wait for full slots (traces) */
  uint32_t total;
};

struct md_shape {
  int64_t d, di;
  int N, R, W, slots, slot_bytes, e; /* e: bytes of an activation */
  int ncmax, rows_max;               /* channels of a block at most; rows of a product a block at most */
};

__host__ __device__ inline uint32_t md_take(uint32_t *off, int64_t bytes) {
  const uint32_t at = (*off + 15u) & ~15u;
  *off = at + (uint32_t)bytes;
  return at;
}

__host__ __device__ inline md_layout md_layout_of(const md_shape &sh) {
  md_layout L;
  const int64_t n = sh.ncmax, e = sh.e, nx = sh.R + 2 * sh.N, widest = sh.d > sh.di ? sh.d : sh.di;
  uint32_t off = (uint32_t)sh.slots * (uint32_t)sh.slot_bytes;
  L.bars = md_take(&off, 8 * (2 * sh.slots + 4));
  L.norm_w = md_take(&off, sh.d * e);
  L.conv_w = md_take(&off, n * sh.W * e);
  L.conv_b = md_take(&off, n * e);
  L.conv_st = md_take(&off, n * (sh.W - 1) * e);
  L.dtw = md_take(&off, n * sh.R * e);
  L.A = md_take(&off, n * sh.N * 4);
  L.D = md_take(&off, n * 4);
  L.bias = md_take(&off, n * 4);
  L.st = md_take(&off, n * sh.N * 4);
  L.act = md_take(&off, widest * e);
  L.xd = md_take(&off, nx * e);
  L.red = md_take(&off, 32 * 4);
  L.vals = md_take(&off, (int64_t)sh.rows_max * 4);
  L.xcs = md_take(&off, n * 4);
  L.zs = md_take(&off, n * 4);
  L.xo = md_take(&off, (int64_t)sh.rows_max * 4);
  L.fwait = md_take(&off, 8);
  L.total = (off + 15u) & ~15u;
  return L;
}

struct md_args {
  int n_layers, d, di, N, R, W, slots, slot_bytes;
  int wpc, groups;                    /* warps a chunk (a group), groups (MD_WARPS / wpc) */
  int inflight, l2_ahead;             /* sf_mamba1_decode_params's; inflight in 1..slots */
  float eps;
  md_layout lay;
  float *x;
  void *xc, *xdbl, *y;                /* the step's intermediates, dtype */
  unsigned *ctr;                      /* [n_layers][MD_STAGES] arrivals */
  uint64_t *trace;                    /* NULL, or [blocks][n_layers][MD_T_POINTS] */
  sf_mamba1_layer_ptrs layer[SF_MAMBA1_DECODE_MAX_LAYERS];
};

/* Block b's span of n rows. */
__device__ __forceinline__ void md_span(int64_t n, int64_t *lo, int64_t *hi) {
  *lo = n * blockIdx.x / gridDim.x;
  *hi = n * (blockIdx.x + 1) / gridDim.x;
}

/* Block b's channels [c0, c1): whole groups of MD_GROUP. */
__device__ __forceinline__ void md_chans(const md_args &g, int64_t *c0, int64_t *c1) {
  md_span(g.di / MD_GROUP, c0, c1);
  *c0 *= MD_GROUP, *c1 *= MD_GROUP;
}

/* Rows of k 16-bit elements a slot holds. */
__device__ __forceinline__ int md_rows_per_chunk(const md_args &g, int k) { return g.slot_bytes / (k * 2); }

/* The streamed row spans of a layer, in the order the stages read them. */
enum { MD_IN_X, MD_IN_Z, MD_X_PROJ, MD_OUT_PROJ, MD_SPANS };

/* Span m of layer l: its matrix, and this block's rows [lo, hi) of k
 * elements. The one description the producer and the consumers share, so
 * both walk the same chunks. */
__device__ __forceinline__ const void *md_rows(const md_args &g, int l, int m, int64_t *lo, int64_t *hi, int *k) {
  const sf_mamba1_layer_ptrs &L = g.layer[l];
  if (m == MD_IN_X || m == MD_IN_Z) {
    md_chans(g, lo, hi);
    if (m == MD_IN_Z) *lo += g.di, *hi += g.di;
    *k = g.d;
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
  unsigned char *base;
  uint32_t ring, full, empty;         /* shared addresses: slots, their full and empty mbarriers */
  uint32_t opa_full, opa_empty, opb_full, opb_empty;
  const uint4 *ring_p;
  uint4 *act;
  float *vals, *red, *xcs, *zs, *xo;
  uint64_t *fwait;
};

__device__ __forceinline__ md_smem md_smem_of(const md_args &g, unsigned char *smem) {
  md_smem s;
  const md_layout &L = g.lay;
  s.base = smem;
  s.ring = (uint32_t)__cvta_generic_to_shared(smem);
  s.ring_p = reinterpret_cast<const uint4 *>(smem);
  s.full = s.ring + L.bars;
  s.empty = s.full + 8 * g.slots;
  s.opa_full = s.empty + 8 * g.slots;
  s.opa_empty = s.opa_full + 8, s.opb_full = s.opa_full + 16, s.opb_empty = s.opa_full + 24;
  s.act = reinterpret_cast<uint4 *>(smem + L.act);
  s.vals = reinterpret_cast<float *>(smem + L.vals);
  s.red = reinterpret_cast<float *>(smem + L.red);
  s.xcs = reinterpret_cast<float *>(smem + L.xcs);
  s.zs = reinterpret_cast<float *>(smem + L.zs);
  s.xo = reinterpret_cast<float *>(smem + L.xo);
  s.fwait = reinterpret_cast<uint64_t *>(smem + L.fwait);
  return s;
}

__device__ __forceinline__ uint64_t md_now() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__device__ __forceinline__ uint64_t *md_trace_at(const md_args &g, int l, int k) {
  return g.trace + ((size_t)blockIdx.x * g.n_layers + l) * MD_T_POINTS + k;
}

/* Trace point k of layer l, by consumer thread 0 (nothing without a trace). */
__device__ __forceinline__ void md_mark(const md_args &g, int l, int k) {
  if (g.trace && threadIdx.x == 0) *md_trace_at(g, l, k) = md_now();
}

/* ---- the producers -------------------------------------------------------- */

/* The weight producer's place in the stream: chunk by chunk through every
 * layer's spans, in md_rows' order (the consumers' order). l == n_layers:
 * past the end. */
struct md_cursor {
  int l, m;
  int64_t r, hi, rpc, row_bytes; /* the chunk's first row, the span's end, rows a chunk, bytes a row */
  const char *w;                 /* the span's matrix */
};

/* Sets c to the first chunk at or after the start of span (l, m). */
__device__ __forceinline__ void md_cursor_settle(const md_args &g, md_cursor &c) {
  for (; c.l < g.n_layers; c.m = 0, c.l++)
    for (; c.m < MD_SPANS; c.m++) {
      int64_t lo;
      int k;
      c.w = (const char *)md_rows(g, c.l, c.m, &lo, &c.hi, &k);
      c.rpc = md_rows_per_chunk(g, k), c.row_bytes = (int64_t)k * 2, c.r = lo;
      if (lo < c.hi) return;
    }
}

__device__ __forceinline__ md_cursor md_cursor_first(const md_args &g) {
  md_cursor c = {};
  md_cursor_settle(g, c);
  return c;
}

__device__ __forceinline__ void md_cursor_next(const md_args &g, md_cursor &c) {
  c.r += c.rpc;
  if (c.r < c.hi) return;
  c.m++;
  md_cursor_settle(g, c);
}

__device__ __forceinline__ const char *md_cursor_src(const md_cursor &c) { return c.w + c.r * c.row_bytes; }
__device__ __forceinline__ uint32_t md_cursor_bytes(const md_cursor &c) {
  return (uint32_t)(min(c.rpc, c.hi - c.r) * c.row_bytes);
}

/* The weight producer: chunk q into slot q % slots once the slot is free
 * and (g.inflight) once chunk q - inflight has landed, so that no more than
 * `inflight` slots' copies queue in the memory system at once. While it
 * waits for a free slot it asks L2 for up to g.l2_ahead chunks from q on
 * (the L2 a second, larger ring; nothing comes back to the SM). */
__device__ void md_produce_weights(const md_args &g, const md_smem &s) {
  md_cursor c = md_cursor_first(g), ahead = c;
  uint32_t pq = 0; /* the chunk `ahead` points at */
  uint64_t first = 0, waited = 0, flight = 0;
  int layer = 0;
  for (uint32_t q = 0; c.l < g.n_layers; q++, md_cursor_next(g, c)) {
    if (g.trace && c.l != layer) {
      *md_trace_at(g, layer, MD_T_PRODUCER) = first, *md_trace_at(g, layer, MD_T_EMPTY_WAIT) = waited;
      *md_trace_at(g, layer, MD_T_FLIGHT_WAIT) = flight;
      layer = c.l, first = waited = flight = 0;
    }
    const uint32_t slot = q % g.slots;
    if (q >= (uint32_t)g.slots) {
      const uint32_t bar = s.empty + 8 * slot, parity = (q / g.slots - 1) & 1;
      const uint64_t t0 = g.trace ? md_now() : 0;
      if (g.l2_ahead && !mbar_test(bar, parity)) {
        if (pq < q) ahead = c, pq = q;
        for (; pq < q + (uint32_t)g.l2_ahead && ahead.l < g.n_layers; pq++, md_cursor_next(g, ahead))
          bulk_prefetch_l2(md_cursor_src(ahead), md_cursor_bytes(ahead));
      }
      mbar_wait(bar, parity);
      if (g.trace) waited += md_now() - t0;
    }
    if (q >= (uint32_t)g.inflight) {
      const uint32_t p = q - (uint32_t)g.inflight;
      const uint64_t t0 = g.trace ? md_now() : 0;
      mbar_wait(s.full + 8 * (p % g.slots), (p / g.slots) & 1);
      if (g.trace) flight += md_now() - t0;
    }
    if (g.trace && !first) first = md_now();
    const uint32_t bytes = md_cursor_bytes(c);
    mbar_arrive_expect_tx(s.full + 8 * slot, bytes);
    bulk_g2s(s.ring + slot * g.slot_bytes, md_cursor_src(c), bytes, s.full + 8 * slot);
  }
  if (g.trace) {
    *md_trace_at(g, layer, MD_T_PRODUCER) = first, *md_trace_at(g, layer, MD_T_EMPTY_WAIT) = waited;
    *md_trace_at(g, layer, MD_T_FLIGHT_WAIT) = flight;
  }
}

/* One operand slice: `bytes` (a multiple of 16; 0: none) from src into the
 * operand buffer at offset off. */
struct md_slice {
  uint32_t off;
  const void *src;
  int64_t bytes;
};

/* Fills an operand buffer: its full barrier armed with the bytes of the
 * very slices then copied, so the two cannot disagree (a count that does
 * not match the copies would leave the consumers waiting for ever). */
template <int K>
__device__ __forceinline__ void md_fill(const md_smem &s, uint32_t bar, const md_slice (&c)[K]) {
  int64_t total = 0;
#pragma unroll
  for (int i = 0; i < K; i++) total += c[i].bytes;
  mbar_arrive_expect_tx(bar, (uint32_t)total);
#pragma unroll
  for (int i = 0; i < K; i++)
    if (c[i].bytes > 0) bulk_g2s(s.ring + c[i].off, c[i].src, (uint32_t)c[i].bytes, bar);
}

/* The operand producer: for every layer, buffer A once stage 0 of the
 * previous layer has released it, then buffer B once stage 2 has. */
template <typename T>
__device__ void md_produce_operands(const md_args &g, const md_smem &s) {
  int64_t c0, c1;
  md_chans(g, &c0, &c1);
  const int64_t n = c1 - c0, e = sizeof(T), W = g.W, N = g.N, R = g.R;
  const md_layout &O = g.lay;
  for (int l = 0; l < g.n_layers; l++) {
    const sf_mamba1_layer_ptrs &L = g.layer[l];
    if (l > 0) mbar_wait(s.opa_empty, (l - 1) & 1);
    const md_slice a[] = {
        {O.norm_w, L.norm_w, g.d * e},
        {O.conv_w, (const T *)L.conv_w + c0 * W, n * W * e},
        {O.conv_b, L.conv_b ? (const T *)L.conv_b + c0 : nullptr, L.conv_b ? n * e : 0},
        {O.conv_st, W > 1 ? (const T *)L.conv_state + c0 * (W - 1) : nullptr, n * (W - 1) * e}};
    md_fill(s, s.opa_full, a);
    if (l > 0) mbar_wait(s.opb_empty, (l - 1) & 1);
    const md_slice b[] = {{O.dtw, (const T *)L.dt_proj_w + c0 * R, n * R * e},
                          {O.A, L.A + c0 * N, n * N * 4},
                          {O.D, L.D ? L.D + c0 : nullptr, L.D ? n * 4 : 0},
                          {O.bias, L.dt_bias ? L.dt_bias + c0 : nullptr, L.dt_bias ? n * 4 : 0},
                          {O.st, L.ssm_state + c0 * N, n * N * 4}};
    md_fill(s, s.opb_full, b);
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

/* This block's stage is done: every consumer has written its outputs (and
 * read the operand buffer `release`, if not 0, which goes back to the
 * operand producer). The named barrier orders the consumers' writes before
 * thread 0's release add (cumulativity), which a block's acquire load of
 * the counter then orders before its reads: no separate fences. */
__device__ __forceinline__ void md_arrive(unsigned *ctr, uint32_t release = 0) {
  md_sync();
  if (threadIdx.x == 0) {
    if (release) mbar_arrive(release);
    asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(ctr) : "memory");
  }
}

/* Every block has finished the stage counted by ctr. */
__device__ __forceinline__ void md_wait(const unsigned *ctr) {
  if (threadIdx.x == 0)
    while (md_ld_acquire(ctr) < gridDim.x) {
    }
  md_sync();
}

/* n 16-bit elements (a multiple of 8) of another block's output into the
 * act buffer. */
template <typename T>
__device__ __forceinline__ void md_stage(uint4 *act, const T *src, int n) {
  const uint4 *s = reinterpret_cast<const uint4 *>(src);
  for (int i = threadIdx.x; i < n / 8; i += MD_CONSUMERS) act[i] = __ldcg(s + i);
}

/* Two 16-bit elements of a 32-bit word as floats (element 0 in x). */
template <typename T>
__device__ __forceinline__ float2 md_pair(uint32_t v);
template <>
__device__ __forceinline__ float2 md_pair<__nv_bfloat16>(uint32_t v) {
  return make_float2(__uint_as_float(v << 16), __uint_as_float(v & 0xffff0000u));
}
template <>
__device__ __forceinline__ float2 md_pair<__half>(uint32_t v) {
  return __half22float2(__halves2half2(__ushort_as_half((unsigned short)(v & 0xffffu)),
                                       __ushort_as_half((unsigned short)(v >> 16))));
}

/* The dot product of 8 weights and 8 inputs, each a 16-byte word held in
 * registers, in element order. By value: a reference into shared memory
 * made the compiler load the weights 16 bits at a time (8 loads a word). */
template <typename T>
__device__ __forceinline__ float md_dot8(const uint4 w, const uint4 a) {
  const uint32_t wv[4] = {w.x, w.y, w.z, w.w}, av[4] = {a.x, a.y, a.z, a.w};
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const float2 x = md_pair<T>(wv[i]), y = md_pair<T>(av[i]);
    s = fmaf(x.x, y.x, s);
    s = fmaf(x.y, y.y, s);
  }
  return s;
}

/* The block's rows [lo, hi) of a product with k-wide rows, from the ring
 * (chunks q, q + 1, ... in the producer's order) into vals[row - lo].
 * Chunk qq goes to group qq % groups of g.wpc warps, and the slots are a
 * multiple of the groups, so each slot has one group, whose warps wait for
 * its next fill only after they have consumed the last: a full barrier is
 * never two phases behind its waiter (the parity wait could not tell those
 * apart), and the refill waits for every warp of the group (the empty
 * barrier counts wpc arrivals: lane 0's, after its warp has met; an arrival
 * from every lane costs 32 serialised shared-memory atomics). Warp h of a
 * group takes the chunk's rows h, h + wpc, ...; two at a time, so that their
 * reductions overlap; each lane sums its words into two accumulators for
 * the same reason. STREAM (the stream_only kernel): the chunks are only
 * taken and given back. */
template <typename T, int AW, bool STREAM = false>
__device__ void md_gemv(const md_args &g, const md_smem &s, uint32_t &q, int64_t lo, int64_t hi, int k,
                        float *vals) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, k8 = k / 8, step = g.wpc;
  const int group = warp / step, h = warp % step;
  const int rpc = md_rows_per_chunk(g, k);
  const int rows = (int)(hi - lo), chunks = (rows + rpc - 1) / rpc;
  const uint32_t first = q + (uint32_t)(group - (int)(q % g.groups) + g.groups) % g.groups;
  for (uint32_t qq = first; qq < q + chunks; qq += g.groups) {
    const int c = (int)(qq - q);
    const uint32_t slot = qq % g.slots;
    const uint64_t t0 = g.trace && threadIdx.x == 0 ? md_now() : 0;
    mbar_wait(s.full + 8 * slot, (qq / g.slots) & 1);
    if (t0) *s.fwait += md_now() - t0;
    const uint4 *chunk = s.ring_p + slot * (g.slot_bytes / 16);
    const int nr = STREAM ? 0 : min(rpc, rows - c * rpc);
    for (int j = h; j < nr; j += 2 * step) {
      const bool two = j + step < nr;
      const uint4 *w0 = chunk + j * k8, *w1 = w0 + step * k8;
      float a0[2] = {0.0f, 0.0f}, a1[2] = {0.0f, 0.0f};
#pragma unroll
      for (int u = 0; u < AW; u++) {
        const int i = lane + 32 * u;
        if (i < k8) {
          const uint4 av = s.act[i], x0 = w0[i];
          a0[u & 1] += md_dot8<T>(x0, av);
          if (two) {
            const uint4 x1 = w1[i];
            a1[u & 1] += md_dot8<T>(x1, av);
          }
        }
      }
      const float r0 = sf_warp_sum(a0[0] + a0[1]), r1 = sf_warp_sum(a1[0] + a1[1]);
      if (lane == 0) {
        vals[c * rpc + j] = r0;
        if (two) vals[c * rpc + j + step] = r1;
      }
    }
    __syncwarp();
    if (lane == 0) mbar_arrive(s.empty + 8 * slot);
  }
  q += chunks;
  md_sync();
}

/* Stage 0: x normalised into act (as the norm op writes it), the in_proj
 * rows of the block's channels, and their epilogue: the conv update, xc
 * written out and kept with z. */
template <typename T, int AW>
__device__ void md_in_proj(const md_args &g, const md_smem &s, uint32_t &q, int l, int64_t c0, int64_t c1) {
  const sf_mamba1_layer_ptrs &L = g.layer[l];
  const md_layout &O = g.lay;
  const int d = g.d, W = g.W, n = (int)(c1 - c0);
  float v[MD_NPT], ss = 0.0f;
#pragma unroll
  for (int u = 0; u < MD_NPT; u++) {
    const int i = threadIdx.x + MD_CONSUMERS * u;
    v[u] = i < d ? __ldcg(g.x + i) : 0.0f;
    ss += v[u] * v[u];
  }
  const float inv = 1.0f / sqrtf(md_sum(ss, s.red) / (float)d + g.eps);
  T *act = reinterpret_cast<T *>(s.act);
  const T *nw = reinterpret_cast<const T *>(s.base + O.norm_w);
#pragma unroll
  for (int u = 0; u < MD_NPT; u++) {
    const int i = threadIdx.x + MD_CONSUMERS * u;
    if (i < d) act[i] = sf_from_f<T>(v[u] * inv * sf_to_f<T>(nw[i]));
  }
  md_sync();
  md_mark(g, l, MD_T_NORM);
  int64_t lo, hi;
  int k;
  md_rows(g, l, MD_IN_X, &lo, &hi, &k);
  md_gemv<T, AW>(g, s, q, lo, hi, k, s.vals);
  md_rows(g, l, MD_IN_Z, &lo, &hi, &k);
  md_gemv<T, AW>(g, s, q, lo, hi, k, s.vals + n);
  md_mark(g, l, MD_T_IN_PROJ);
  const T *cw = reinterpret_cast<const T *>(s.base + O.conv_w), *cb = reinterpret_cast<const T *>(s.base + O.conv_b);
  T *cst = reinterpret_cast<T *>(s.base + O.conv_st);
  for (int t = threadIdx.x; t < n; t += MD_CONSUMERS) {
    /* the channel's states shifted in place in operand buffer A (refilled
     * only after this stage): a local array indexed by W lived in local
     * memory (bench/notes-decode.md, session 9) */
    T *st = cst + t * (W - 1);
    const T *wt = cw + t * W;
    const T xc = sf_conv1d_update_channel_by<T>(
        sf_from_f<T>(s.vals[t]), [wt](int j) { return sf_to_f<T>(wt[j]); }, L.conv_b ? sf_to_f<T>(cb[t]) : 0.0f, st,
        W, 1);
    T *gst = (T *)L.conv_state + (c0 + t) * (W - 1);
    for (int j = 0; j < W - 1; j++) gst[j] = st[j];
    ((T *)g.xc)[c0 + t] = xc;
    s.xcs[t] = sf_to_f<T>(xc);
    s.zs[t] = sf_to_f<T>(sf_from_f<T>(s.vals[n + t]));
  }
  md_mark(g, l, MD_T_CONV);
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
  md_gemv<T, AW>(g, s, q, *lo, *hi, k, s.vals);
}

/* Stage 1: x_proj over xc. */
template <typename T, int AW>
__device__ void md_x_proj(const md_args &g, const md_smem &s, uint32_t &q, int l) {
  int64_t lo, hi;
  md_product<T, AW>(g, s, q, l, MD_X_PROJ, g.xc, &lo, &hi);
  for (int64_t r = lo + threadIdx.x; r < hi; r += MD_CONSUMERS) ((T *)g.xdbl)[r] = sf_from_f<T>(s.vals[r - lo]);
}

/* Stage 2: the state update of the block's channels, d_state / 4 threads a
 * channel as the op's vector kernel (the same helpers): dt from dt_proj's
 * row and dt_low, the states, y. Operands from buffer B; xc and z kept by
 * stage 0; x_proj's output read from L2. */
template <typename T>
__device__ void md_state_update(const md_args &g, const md_smem &s, int l, int64_t c0, int64_t c1) {
  const sf_mamba1_layer_ptrs &L = g.layer[l];
  const md_layout &O = g.lay;
  const int N = g.N, R = g.R, nx = R + 2 * N, tpc = N / 4, nw = R / 8, n = (int)(c1 - c0);
  T *xd = reinterpret_cast<T *>(s.base + O.xd);
  for (int i = threadIdx.x; i < nx; i += MD_CONSUMERS) xd[i] = __ldcg((const T *)g.xdbl + i);
  md_sync();
  const uint4 *dtw = reinterpret_cast<const uint4 *>(s.base + O.dtw), *dtl = reinterpret_cast<const uint4 *>(xd);
  const float4 *A = reinterpret_cast<const float4 *>(s.base + O.A);
  const float4 *st = reinterpret_cast<const float4 *>(s.base + O.st);
  const float *D = reinterpret_cast<const float *>(s.base + O.D), *bias = reinterpret_cast<const float *>(s.base + O.bias);
  float4 *gst = reinterpret_cast<float4 *>(L.ssm_state + c0 * N);
  /* whole warps go round together: the channel groups' shuffles need every lane */
  for (int base = 0; base < n * tpc; base += MD_CONSUMERS) {
    const int i = base + threadIdx.x, ch = i < n * tpc ? i / tpc : 0, qd = i % tpc;
    float p = 0.0f;
    for (int w = qd; w < nw; w += tpc) p += dtw_word_dot<T>(dtw[ch * nw + w], dtl[w]);
    const float raw = sf_to_f<T>(sf_from_f<T>(group_sum(p, tpc)));
    const float dt = sf_ssu_dt(raw, L.dt_bias ? bias[ch] : 0.0f, 1), xv = s.xcs[ch];
    const T *Bt = xd + R + 4 * qd, *Ct = xd + R + N + 4 * qd;
    float4 s4 = st[ch * tpc + qd];
    const float4 b4 = make_float4(sf_to_f<T>(Bt[0]), sf_to_f<T>(Bt[1]), sf_to_f<T>(Bt[2]), sf_to_f<T>(Bt[3]));
    const float4 e4 = make_float4(sf_to_f<T>(Ct[0]), sf_to_f<T>(Ct[1]), sf_to_f<T>(Ct[2]), sf_to_f<T>(Ct[3]));
    const float y = group_sum(sf_ssu_states4(dt, xv, A[ch * tpc + qd], s4, b4, e4), tpc);
    if (i < n * tpc) {
      gst[ch * tpc + qd] = s4;
      if (qd == 0) ((T *)g.y)[c0 + ch] = sf_ssu_out<T>(y, L.D ? D[ch] : 0.0f, xv, true, s.zs[ch]);
    }
  }
}

/* Stage 3: out_proj over y, added into the residual (the block's rows of
 * it kept in xo). */
template <typename T, int AW>
__device__ void md_out_proj(const md_args &g, const md_smem &s, uint32_t &q, int l) {
  int64_t lo, hi;
  md_product<T, AW>(g, s, q, l, MD_OUT_PROJ, g.y, &lo, &hi);
  for (int64_t r = lo + threadIdx.x; r < hi; r += MD_CONSUMERS) {
    const float v = s.xo[r - lo] + s.vals[r - lo];
    s.xo[r - lo] = v;
    g.x[r] = v;
  }
}

/* A layer with nothing computed (stream_only, for benchmarks): the
 * weight chunks taken and given back, the operand buffers released, no
 * grid barriers; what the weight stream alone can do. The trace's points
 * from one product's end to the next one's start are stamped together. */
template <typename T, int AW>
__device__ void md_stream_layer(const md_args &g, const md_smem &s, uint32_t &q, int l) {
  const uint32_t phase = l & 1;
  int64_t lo, hi;
  int k;
  md_mark(g, l, MD_T_START);
  mbar_wait(s.opa_full, phase);
  for (int t = MD_T_OPA; t <= MD_T_NORM; t++) md_mark(g, l, t);
  for (int m = MD_IN_X; m <= MD_IN_Z; m++) md_rows(g, l, m, &lo, &hi, &k), md_gemv<T, AW, true>(g, s, q, lo, hi, k, s.vals);
  if (threadIdx.x == 0) mbar_arrive(s.opa_empty); /* md_gemv met: every consumer is past the full wait */
  for (int t = MD_T_IN_PROJ; t <= MD_T_XC; t++) md_mark(g, l, t);
  md_rows(g, l, MD_X_PROJ, &lo, &hi, &k), md_gemv<T, AW, true>(g, s, q, lo, hi, k, s.vals);
  md_mark(g, l, MD_T_S1);
  mbar_wait(s.opb_full, phase);
  md_sync();
  if (threadIdx.x == 0) mbar_arrive(s.opb_empty);
  for (int t = MD_T_OPB; t <= MD_T_Y; t++) md_mark(g, l, t);
  md_rows(g, l, MD_OUT_PROJ, &lo, &hi, &k), md_gemv<T, AW, true>(g, s, q, lo, hi, k, s.vals);
  md_mark(g, l, MD_T_S3);
}

/* STREAM: the stream_only kernel (benchmarks), its own instantiation: with
 * that path inlined beside the real one the kernel's code grew by a fifth
 * (bf16: 139 -> 168 KB), and the bf16 instantiation for narrow models
 * computed wrong states (test_gpu_ops, session 10; not explained). */
template <typename T, int AW, bool STREAM>
__global__ void __launch_bounds__(MD_THREADS, 1) mamba1_decode_kernel(const __grid_constant__ md_args g) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(128) unsigned char smem[];
  const md_smem s = md_smem_of(g, smem);
  if (threadIdx.x == 0) {
    for (int i = 0; i < g.slots; i++) mbar_init(s.full + 8 * i, 1), mbar_init(s.empty + 8 * i, g.wpc);
    mbar_init(s.opa_full, 1), mbar_init(s.opa_empty, 1), mbar_init(s.opb_full, 1), mbar_init(s.opb_empty, 1);
    mbar_init_fence();
  }
  __syncthreads();
  if (threadIdx.x >= MD_CONSUMERS) { /* the producer warps, one thread each */
    if (threadIdx.x == MD_CONSUMERS) md_produce_weights(g, s);
    if (threadIdx.x == MD_CONSUMERS + 32) md_produce_operands<T>(g, s);
    return;
  }
  uint32_t q = 0;
  int64_t c0, c1, r0, r1;
  md_chans(g, &c0, &c1);
  md_span(g.d, &r0, &r1);
  for (int64_t r = r0 + threadIdx.x; r < r1; r += MD_CONSUMERS) s.xo[r - r0] = g.x[r];
  if (threadIdx.x == 0) *s.fwait = 0;
  for (int l = 0; l < g.n_layers; l++) {
    if constexpr (STREAM) {
      md_stream_layer<T, AW>(g, s, q, l);
      continue;
    }
    unsigned *ctr = g.ctr + l * MD_STAGES;
    const uint32_t phase = l & 1;
    md_mark(g, l, MD_T_START);
    mbar_wait(s.opa_full, phase);
    md_mark(g, l, MD_T_OPA);
    if (l > 0) md_wait(ctr - 1);
    md_mark(g, l, MD_T_X);
    md_in_proj<T, AW>(g, s, q, l, c0, c1);
    md_arrive(ctr + 0, s.opa_empty);
    md_mark(g, l, MD_T_S0);
    md_wait(ctr + 0);
    md_mark(g, l, MD_T_XC);
    md_x_proj<T, AW>(g, s, q, l);
    md_arrive(ctr + 1);
    md_mark(g, l, MD_T_S1);
    mbar_wait(s.opb_full, phase);
    md_mark(g, l, MD_T_OPB);
    md_wait(ctr + 1);
    md_mark(g, l, MD_T_XD);
    md_state_update<T>(g, s, l, c0, c1);
    md_arrive(ctr + 2, s.opb_empty);
    md_mark(g, l, MD_T_S2);
    md_wait(ctr + 2);
    md_mark(g, l, MD_T_Y);
    md_out_proj<T, AW>(g, s, q, l);
    md_arrive(ctr + 3);
    md_mark(g, l, MD_T_S3);
    if (g.trace && threadIdx.x == 0) *md_trace_at(g, l, MD_T_FULL_WAIT) = *s.fwait, *s.fwait = 0;
  }
#endif
}

/* ---- the launcher ---------------------------------------------------------- */

static sf_status unsupported(sf_error *err, const char *why) {
  return sf_fail(err, SF_ERR_UNSUPPORTED, "mamba1_decode: %s", why);
}

/* The longer of d_model and d_inner: the widest row and input vector. */
static int64_t md_widest(const sf_mamba1_decode_params *p) { return p->d_model > p->d_inner ? p->d_model : p->d_inner; }

static int64_t md_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* The kernel's shape on a grid of `grid` blocks with `slots` ring slots. */
static md_shape md_shape_of(const sf_mamba1_decode_params *p, int grid, int slots, int slot_bytes) {
  md_shape sh;
  sh.d = p->d_model, sh.di = p->d_inner, sh.N = p->d_state, sh.R = p->dt_rank, sh.W = p->d_conv;
  sh.slots = slots, sh.slot_bytes = slot_bytes, sh.e = 2;
  sh.ncmax = (int)(MD_GROUP * md_ceil_div(p->d_inner / MD_GROUP, grid));
  const int64_t rows[] = {2 * (int64_t)sh.ncmax, md_ceil_div(p->dt_rank + 2 * p->d_state, grid),
                          md_ceil_div(p->d_model, grid)};
  int64_t m = 0;
  for (int i = 0; i < 3; i++) m = rows[i] > m ? rows[i] : m;
  sh.rows_max = (int)m;
  return sh;
}

static int md_aligned(const void *p) { return ((uintptr_t)p & 15) == 0; }

static sf_status md_check(sf_op_ctx *ctx, const sf_mamba1_decode_params *p, sf_error *err) {
  if (p->n_layers < 0 || p->d_model <= 0 || p->d_inner <= 0 || p->d_state <= 0 || p->dt_rank <= 0 ||
      p->d_conv < 1)
    return sf_fail(err, SF_ERR_ARG, "mamba1_decode: bad sizes (layers %d, d_model %lld, d_inner %lld, d_state %d, "
                   "dt_rank %d, d_conv %d)", (int)p->n_layers, (long long)p->d_model, (long long)p->d_inner,
                   (int)p->d_state, (int)p->dt_rank, (int)p->d_conv);
  if (p->n_layers > 0 && (!p->x || !p->layers)) return sf_fail(err, SF_ERR_ARG, "mamba1_decode: x and layers are required");
  if (p->slot_bytes < 0 || p->slot_bytes % 16)
    return sf_fail(err, SF_ERR_ARG, "mamba1_decode: slot_bytes %d is not a multiple of 16", (int)p->slot_bytes);
  if (p->stream_only && p->dtype != SF_BF16) return unsupported(err, "stream_only is bf16 only (benchmarks)");
  for (int l = 0; l < p->n_layers; l++) {
    const sf_mamba1_layer_ptrs *L = &p->layers[l];
    if (!L->norm_w || !L->in_proj_w || !L->conv_w || !L->x_proj_w || !L->dt_proj_w || !L->out_proj_w || !L->A ||
        !L->ssm_state || (p->d_conv > 1 && !L->conv_state))
      return sf_fail(err, SF_ERR_ARG, "mamba1_decode: layer %d lacks a weight or a state", l);
    /* everything the bulk copies read (optional ones where present) */
    const void *copied[] = {L->norm_w, L->in_proj_w, L->conv_w, L->conv_b, L->x_proj_w, L->dt_proj_w,
                            L->out_proj_w, L->dt_bias, L->A, L->D, L->conv_state, L->ssm_state};
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++)
      if (!md_aligned(copied[i])) return unsupported(err, "a weight or a state is not 16-byte aligned");
  }
  if (p->dtype != SF_BF16 && p->dtype != SF_F16) return unsupported(err, "only 16-bit activations");
  if (p->n_layers > SF_MAMBA1_DECODE_MAX_LAYERS) return unsupported(err, "more than 64 layers");
  if (p->d_model % 8 || p->d_inner % 8 || p->d_model > MD_NPT * MD_CONSUMERS || p->d_inner > 8192)
    return unsupported(err, "d_model must be a multiple of 8 up to 6144, d_inner up to 8192");
  if (p->d_state % 4 || (p->d_state / 4 & (p->d_state / 4 - 1)) || p->d_state > 32)
    return unsupported(err, "d_state must be 4, 8, 16 or 32");
  if (p->dt_rank % 8) return unsupported(err, "dt_rank must be a multiple of 8");
  if (p->d_conv > MD_WMAX) return unsupported(err, "d_conv > 8");
  if (sf_cuda_impl_of(ctx)->cc_major < 9) return unsupported(err, "needs compute capability 9.0 (bulk copies)");
  return SF_OK;
}

template <typename T, int AW, bool STREAM>
static sf_status md_launch(sf_op_ctx *ctx, const sf_mamba1_decode_params *p, sf_error *err) {
  sf_cuda_impl *impl = sf_cuda_impl_of(ctx);
  const int grid = impl->num_sms;
  /* A slot holds at least the longest row; a chunk goes to a group of
   * slot_bytes / 8 KiB warps (rounded up to a divisor of MD_WARPS); the
   * slots are a multiple of the groups (md_gemv), two a group at least so
   * that a group's next chunk can arrive while it works on one. */
  const size_t row_max = sf_align_up((size_t)md_widest(p) * sizeof(T), 16);
  const size_t asked = p->slot_bytes > 0 ? (size_t)p->slot_bytes : (size_t)MD_SLOT_DEFAULT;
  const int slot_bytes = (int)(row_max > asked ? row_max : asked);
  int wpc = (slot_bytes + MD_WARP_SHARE - 1) / MD_WARP_SHARE;
  while (wpc < MD_WARPS && MD_WARPS % wpc) wpc++;
  if (wpc > MD_WARPS) return unsupported(err, "a ring slot over 96 KiB (a row too long)");
  const int groups = MD_WARPS / wpc;
  int slots = MD_MAX_SLOTS / groups * groups;
  md_layout lay = md_layout_of(md_shape_of(p, grid, slots, slot_bytes));
  while (lay.total > impl->smem_optin && slots > 2 * groups) {
    slots -= groups;
    lay = md_layout_of(md_shape_of(p, grid, slots, slot_bytes));
  }
  if (lay.total > impl->smem_optin) return unsupported(err, "not enough shared memory for the weight ring");
  auto kernel = mamba1_decode_kernel<T, AW, STREAM>;
  SF_TRY(sf_cuda_smem_optin(ctx, (const void *)kernel, lay.total, "mamba1_decode", err));
  /* a cooperative launch needs every block resident: one an SM */
  int per_sm = 0;
  SF_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, MD_THREADS, lay.total));
  if (per_sm < 1) return unsupported(err, "a block does not fit an SM (registers or shared memory)");

  const size_t e = sizeof(T), ctr_bytes = sf_align_up((size_t)p->n_layers * MD_STAGES * sizeof(unsigned), 256);
  const size_t vec = sf_align_up((size_t)p->d_inner * e, 256), xd = sf_align_up((size_t)(p->dt_rank + 2 * p->d_state) * e, 256);
  void *ws;
  SF_TRY(sf_cuda_workspace(ctx, ctr_bytes + 2 * vec + xd, &ws, err));
  md_args *g = (md_args *)calloc(1, sizeof(md_args));
  if (!g) return sf_fail(err, SF_ERR_NOMEM, "mamba1_decode: host memory for the arguments");
  g->n_layers = p->n_layers, g->d = (int)p->d_model, g->di = (int)p->d_inner, g->N = p->d_state;
  g->R = p->dt_rank, g->W = p->d_conv, g->slots = slots, g->slot_bytes = slot_bytes, g->eps = p->eps, g->x = p->x;
  g->wpc = wpc, g->groups = groups;
  g->lay = lay, g->trace = p->trace;
  const int inflight = p->inflight > 0 ? p->inflight : MD_INFLIGHT_DEFAULT;
  g->inflight = inflight < slots ? inflight : slots;
  g->l2_ahead = p->l2_ahead > 0 ? p->l2_ahead : 0;
  char *w = (char *)ws;
  g->ctr = (unsigned *)w;
  g->xc = w + ctr_bytes, g->y = w + ctr_bytes + vec, g->xdbl = w + ctr_bytes + 2 * vec;
  for (int l = 0; l < p->n_layers; l++) g->layer[l] = p->layers[l];

  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3((unsigned)grid);
  cfg.blockDim = dim3(MD_THREADS);
  cfg.dynamicSmemBytes = lay.total;
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

template <typename T, bool STREAM>
static sf_status md_launch_t(sf_op_ctx *ctx, const sf_mamba1_decode_params *p, sf_error *err) {
  /* words of the widest input vector a lane holds */
  const int64_t aw = (md_widest(p) / 8 + 31) / 32;
  if (aw <= 4) return md_launch<T, 4, STREAM>(ctx, p, err);
  if (aw <= 16) return md_launch<T, 16, STREAM>(ctx, p, err);
  return md_launch<T, 32, STREAM>(ctx, p, err);
}

extern "C" SF_CUDA_OP(mamba1_decode, sf_mamba1_decode_params) {
  SF_TRY(md_check(ctx, p, err));
  if (p->n_layers == 0) return SF_OK;
  if (p->stream_only) return md_launch_t<__nv_bfloat16, true>(ctx, p, err); /* bf16 only (md_check): a short build */
  if (p->dtype == SF_BF16) return md_launch_t<__nv_bfloat16, false>(ctx, p, err);
  return md_launch_t<__half, false>(ctx, p, err);
}
