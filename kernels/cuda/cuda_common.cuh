/* What every cuda op file shares: the context's private state, error macros
 * (errors are values: nothing here prints or exits), element conversions,
 * warp/block reductions and the device status word. CUDA C++, included by
 * the .cu files only. */
#ifndef SCANFLASH_KERNELS_CUDA_COMMON_CUH
#define SCANFLASH_KERNELS_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda_ops.h"

/* ---- device status word: errors only the device can see ---------------- */

enum sf_cuda_status_code {
  SF_CST_OK = 0,
  SF_CST_EMBED_ID = 1,      /* index = token, value = id, limit = vocab */
  SF_CST_KV_APPEND = 2,     /* index = sequence, value = past + len, limit = max_len */
  SF_CST_ATTN_CACHE = 3,    /* index = sequence, value = past + len, limit = max_len */
  SF_CST_DECODE_CACHE = 4,  /* index = sequence, value = cache_len, limit = max_len */
};

struct sf_cuda_status {
  int code;
  int pad_;
  long long index, value, limit;
};

/* Only the first error is kept until the next sync/download reports it. */
__device__ inline void sf_cuda_record(sf_cuda_status *st, int code, long long index,
                                      long long value, long long limit) {
  if (atomicCAS(&st->code, 0, code) == 0) {
    st->index = index;
    st->value = value;
    st->limit = limit;
  }
}

/* ---- the context's private state --------------------------------------- */

struct sf_cuda_impl {
  cudaStream_t stream;
  cublasHandle_t blas;
  cublasLtHandle_t lt;
  void *blas_ws;                 /* cuBLAS + cuBLASLt workspace */
  size_t blas_ws_bytes;
  sf_cuda_status *d_status;      /* device */
  sf_cuda_status *h_status;      /* pinned host mirror */
  void *host_buf;                /* host staging (top-k sampling) */
  size_t host_buf_bytes;
  int num_sms;
  int cc_major;                  /* compute capability of the context's device */
  size_t smem_optin;             /* max dynamic shared memory per block */
  int pdl;                       /* launches may overlap their predecessor (sf_launch) */
  struct sf_cuda_block *blocks;  /* live allocations of alloc (for mem_live) */
  size_t n_blocks, cap_blocks;
};

/* One allocation made by the alloc entry: free needs its size for the count. */
struct sf_cuda_block {
  void *ptr;
  size_t bytes;
};

static inline sf_cuda_impl *sf_cuda_impl_of(sf_op_ctx *ctx) { return (sf_cuda_impl *)ctx->impl; }
static inline cudaStream_t sf_cuda_stream(sf_op_ctx *ctx) { return sf_cuda_impl_of(ctx)->stream; }

/* ---- errors -------------------------------------------------------------- */

/* "cuda: file.cu:123: cudaMalloc: out of memory"; OOM is SF_ERR_NOMEM. */
sf_status sf_cuda_fail(sf_error *err, cudaError_t e, const char *file, int line, const char *call);
sf_status sf_cublas_fail(sf_error *err, cublasStatus_t s, const char *file, int line, const char *call);

#define SF_CUDA_TRY(call)                                                          \
  do {                                                                             \
    cudaError_t sf_cu_e_ = (call);                                                 \
    if (sf_cu_e_ != cudaSuccess) return sf_cuda_fail(err, sf_cu_e_, __FILE__, __LINE__, #call); \
  } while (0)

#define SF_CUBLAS_TRY(call)                                                        \
  do {                                                                             \
    cublasStatus_t sf_cb_s_ = (call);                                              \
    if (sf_cb_s_ != CUBLAS_STATUS_SUCCESS)                                         \
      return sf_cublas_fail(err, sf_cb_s_, __FILE__, __LINE__, #call);             \
  } while (0)

/* After every kernel launch: configuration errors surface here. */
#define SF_CUDA_LAUNCHED(kernel_name)                                              \
  do {                                                                             \
    cudaError_t sf_cu_e_ = cudaGetLastError();                                     \
    if (sf_cu_e_ != cudaSuccess)                                                   \
      return sf_cuda_fail(err, sf_cu_e_, __FILE__, __LINE__, "launch " kernel_name); \
  } while (0)

/* ---- launches: programmatic dependent launch ------------------------------
 *
 * A decode step is a few hundred kernels of a few microseconds each; launched
 * one after the other, every one pays the launch latency and the ramp-up
 * and tail of its grid, together comparable with the step's memory time.
 * With programmatic dependent launch (sm_90) a kernel launched through
 * sf_launch may start while its predecessor in the stream still runs: it
 * first does what does not depend on earlier kernels (a weight stream's
 * first loads), then waits in sf_pdl_wait() until the predecessor grid has
 * completed with its memory visible, and only then reads or writes
 * anything an earlier kernel touches. The contract of every kernel launched
 * through sf_launch:
 *   - it calls sf_pdl_release() first: its successor may launch as soon as
 *     every block of this grid has started. Successors' blocks then wait
 *     resident, so a chain of kernels is in flight at once as far as the
 *     SMs have room, and the weight streams of the next GEMMs start while
 *     the small kernels before them run. A grid's blocks have all started
 *     before its successor launches, so no grid is starved by its
 *     successors;
 *   - every thread calls sf_pdl_wait() before any early return and before
 *     touching data of earlier kernels, so no grid completes before its
 *     predecessor: a successor waiting on it waits on the whole chain.
 * Without PDL (pre-Hopper, or SCANFLASH_PDL=0 for comparisons) sf_launch is
 * a plain launch and both calls are no-ops or return at once. */
__device__ __forceinline__ void sf_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void sf_pdl_release() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

template <typename... Params, typename... Args>
static inline cudaError_t sf_launch(sf_op_ctx *ctx, void (*kernel)(Params...), dim3 grid, dim3 block,
                                    size_t smem, Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = sf_cuda_stream(ctx);
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = sf_cuda_impl_of(ctx)->pdl ? 1 : 0;
  return cudaLaunchKernelEx(&cfg, kernel, args...);
}

/* SF_CUDA_LAUNCH("name", ctx, kernel<T>, grid, block, smem, args...):
 * sf_launch with its error returned as the op's status. */
#define SF_CUDA_LAUNCH(kernel_name, ...)                                           \
  do {                                                                             \
    cudaError_t sf_cu_e_ = sf_launch(__VA_ARGS__);                                 \
    if (sf_cu_e_ != cudaSuccess)                                                   \
      return sf_cuda_fail(err, sf_cu_e_, __FILE__, __LINE__, "launch " kernel_name); \
  } while (0)

/* Op workspace of at least `bytes` (256-byte aligned); grows ctx->workspace. */
sf_status sf_cuda_workspace(sf_op_ctx *ctx, size_t bytes, void **ptr, sf_error *err);

/* Raises a kernel's dynamic shared-memory limit when it needs more than 48 KB. */
sf_status sf_cuda_smem_optin(sf_op_ctx *ctx, const void *kernel, size_t bytes, const char *what,
                             sf_error *err);

static inline size_t sf_align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Blocks for a grid-stride loop over n items: at most `cap`. */
static inline unsigned sf_grid_for(long long n, int per_block, long long cap) {
  long long b = (n + per_block - 1) / per_block;
  if (b < 1) b = 1;
  if (b > cap) b = cap;
  return (unsigned)b;
}

/* ---- element conversions ------------------------------------------------- */

template <typename T> __device__ __forceinline__ float sf_to_f(T x);
template <> __device__ __forceinline__ float sf_to_f<float>(float x) { return x; }
template <> __device__ __forceinline__ float sf_to_f<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <> __device__ __forceinline__ float sf_to_f<__half>(__half x) { return __half2float(x); }

template <typename T> __device__ __forceinline__ T sf_from_f(float x);
template <> __device__ __forceinline__ float sf_from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 sf_from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half sf_from_f<__half>(float x) { return __float2half_rn(x); }

/* Two kinds of load. sf_ldg goes through the read-only (non-coherent)
 * path, whose contract is that nothing writes the data while the kernel
 * runs, and which the compiler may treat as invariant (free to move above
 * a barrier): only for constants of the step (weights), or in kernels
 * launched without programmatic dependent launch. Under PDL a kernel runs
 * while the kernels before it still write, so whatever they produce is
 * read with sf_ld, a plain load after sf_pdl_wait(). Seen on an H100: with
 * x_proj's output read through the read-only path by the next kernel, a
 * graph-replayed decode step of tiny-mamba1 gave other logits than the same
 * steps launched one by one; with plain loads, or without PDL, they were
 * equal to the bit (tests/gpu/test_gpu_engine). */
template <typename T> __device__ __forceinline__ float sf_ldg(const T *p) { return sf_to_f<T>(__ldg(p)); }
template <typename T> __device__ __forceinline__ float sf_ld(const T *p) { return sf_to_f<T>(*p); }

__device__ __forceinline__ float sf_silu(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float sf_softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

/* ---- reductions ---------------------------------------------------------- */

__device__ __forceinline__ float sf_warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float sf_warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every
 * thread gets the result. `scratch` holds 32 floats; the call begins and ends
 * with a barrier so it can be reused back to back. */
__device__ __forceinline__ float sf_block_sum(float v, float *scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = sf_warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < nw ? scratch[lane] : 0.0f;
  t = sf_warp_sum(t);
  __syncthreads();
  return t;
}

__device__ __forceinline__ float sf_block_max(float v, float *scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = sf_warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < nw ? scratch[lane] : -INFINITY;
  t = sf_warp_max(t);
  __syncthreads();
  return t;
}

/* ---- dtype dispatch ------------------------------------------------------ */

/* SF_DISPATCH(dt, "op", launch<T>(...)): runs the expression with T bound
 * to the element type of dt. */
#define SF_DISPATCH(dt, opname, ...)                                                \
  do {                                                                              \
    switch (dt) {                                                                   \
      case SF_BF16: { typedef __nv_bfloat16 T; return __VA_ARGS__; }               \
      case SF_F16: { typedef __half T; return __VA_ARGS__; }                        \
      case SF_F32: { typedef float T; return __VA_ARGS__; }                         \
    }                                                                               \
    return sf_fail(err, SF_ERR_ARG, "%s: unknown dtype %d", opname, (int)(dt));      \
  } while (0)

/* 16-bit types only (ops whose params exclude f32). */
#define SF_DISPATCH16(dt, opname, ...)                                              \
  do {                                                                              \
    switch (dt) {                                                                   \
      case SF_BF16: { typedef __nv_bfloat16 T; return __VA_ARGS__; }               \
      case SF_F16: { typedef __half T; return __VA_ARGS__; }                        \
      default: break;                                                               \
    }                                                                               \
    return sf_fail(err, SF_ERR_UNSUPPORTED, "%s: the cuda backend supports bf16 and f16 here, got %s", \
                   opname, sf_dtype_name(dt));                                      \
  } while (0)

#endif
