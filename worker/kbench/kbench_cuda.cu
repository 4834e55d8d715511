/* kbench's own device code: random fills for the benchmark inputs and the
 * special-function (exp) ceiling. Not ops: nothing here is timed as a
 * kernel of the model. Built only with CUDA. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace {

__device__ __forceinline__ uint64_t mix64(uint64_t x) { /* splitmix64's finaliser */
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }

/* p[i] = lo + (hi - lo) u_i, u_i uniform in [0, 1) from a hash of (seed, i):
 * the same values for the same seed whatever the grid. */
template <typename T>
__global__ void fill_kernel(T *p, int64_t n, float lo, float hi, uint64_t seed) {
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    const uint64_t h = mix64(seed ^ mix64((uint64_t)i));
    const float u = (float)(h >> 40) * (1.0f / 16777216.0f);
    p[i] = from_f<T>(lo + (hi - lo) * u);
  }
}

__device__ __forceinline__ float ex2(float x) {
  float y;
  asm volatile("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

/* 8 independent chains x <- 2^(c x) per thread: MUFU.EX2 bound (the FMUL
 * beside it runs on another pipe). */
__global__ void exp_kernel(float *out, int iters, float c) {
  float x[8];
#pragma unroll
  for (int j = 0; j < 8; j++) x[j] = 0.01f * (float)(threadIdx.x & 31) + 0.1f * (float)j;
  for (int i = 0; i < iters; i++) {
#pragma unroll
    for (int j = 0; j < 8; j++) x[j] = ex2(c * x[j]);
  }
  float s = 0.0f;
#pragma unroll
  for (int j = 0; j < 8; j++) s += x[j];
  if (s == 12345.0f) out[blockIdx.x * blockDim.x + threadIdx.x] = s; /* never true; keeps the work */
}

}  // namespace

/* elem: 0 f32, 1 bf16, 2 f16 (sf_dtype). Returns the cudaError_t of the launch. */
extern "C" int sf_kbench_fill(void *p, int elem, int64_t n, float lo, float hi, uint64_t seed, void *stream) {
  if (n <= 0) return 0;
  const int threads = 256;
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks > 65536) blocks = 65536;
  cudaStream_t st = (cudaStream_t)stream;
  switch (elem) {
    case 0: fill_kernel<float><<<(unsigned)blocks, threads, 0, st>>>((float *)p, n, lo, hi, seed); break;
    case 1:
      fill_kernel<__nv_bfloat16><<<(unsigned)blocks, threads, 0, st>>>((__nv_bfloat16 *)p, n, lo, hi, seed);
      break;
    default: fill_kernel<__half><<<(unsigned)blocks, threads, 0, st>>>((__half *)p, n, lo, hi, seed); break;
  }
  return (int)cudaGetLastError();
}

/* Exponentials computed: blocks * threads * iters * 8. */
extern "C" int sf_kbench_exp_bench(float *out, int blocks, int threads, int iters, void *stream) {
  exp_kernel<<<blocks, threads, 0, (cudaStream_t)stream>>>(out, iters, -0.5f);
  return (int)cudaGetLastError();
}
