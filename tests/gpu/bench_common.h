/* What the GPU micro-benchmarks (bench_attention.c, bench_mamba.c) share:
 * the per-program state (one op context on one stream, an L2-flush buffer,
 * the failure count), the CUDA check that aborts the program (these are
 * developer tools, not ranks of a job), and the timing of one call: CUDA
 * events around it, 3 warm-ups, the median of nrep repeats with the L2
 * flushed (a 256 MiB memset outside the timed region) before each.
 * Include it once, from the program's only source file. */
#ifndef SCANFLASH_TESTS_GPU_BENCH_COMMON_H
#define SCANFLASH_TESTS_GPU_BENCH_COMMON_H

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_table.h"
#include "ops/op_table_cuda.h"

static sf_op_ctx ctx;
static cudaStream_t stream;
static void *flush_buf;
static const size_t FLUSH_BYTES = (size_t)256 << 20;
static int n_fail = 0;

#define CU(call)                                                                      \
  do {                                                                                \
    cudaError_t e_ = (call);                                                          \
    if (e_ != cudaSuccess) {                                                          \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

static int cmp_f(const void *a, const void *b) {
  const float x = *(const float *)a, y = *(const float *)b;
  return x < y ? -1 : x > y;
}

typedef sf_status (*op_fn)(const void *arg, sf_error *err);

/* Median milliseconds of the call; negative when it failed. */
static inline float time_op(op_fn fn, const void *arg, int nrep) {
  cudaEvent_t e0, e1;
  CU(cudaEventCreate(&e0));
  CU(cudaEventCreate(&e1));
  sf_error err = {0};
  for (int i = 0; i < 3; i++) {
    if (fn(arg, &err) != SF_OK || ctx.ops->sync(&ctx, &err) != SF_OK) {
      printf("    failed: %s\n", err.msg);
      n_fail++;
      return -1.0f;
    }
  }
  float *t = malloc(sizeof(float) * (size_t)nrep);
  for (int i = 0; i < nrep; i++) {
    CU(cudaMemsetAsync(flush_buf, i & 0xff, FLUSH_BYTES, stream));
    CU(cudaEventRecord(e0, stream));
    if (fn(arg, &err) != SF_OK) {
      printf("    failed: %s\n", err.msg);
      n_fail++;
      free(t);
      return -1.0f;
    }
    CU(cudaEventRecord(e1, stream));
    CU(cudaEventSynchronize(e1));
    CU(cudaEventElapsedTime(&t[i], e0, e1));
  }
  if (ctx.ops->sync(&ctx, &err) != SF_OK) {
    printf("    failed: %s\n", err.msg);
    n_fail++;
  }
  qsort(t, (size_t)nrep, sizeof(float), cmp_f);
  const float med = nrep % 2 ? t[nrep / 2] : 0.5f * (t[nrep / 2 - 1] + t[nrep / 2]);
  free(t);
  CU(cudaEventDestroy(e0));
  CU(cudaEventDestroy(e1));
  return med;
}


/* Milliseconds of one call, no warm-up (a long call timed once, as the
 * 1M-token checks are); negative when it failed (said, and counted). */
static inline float time_once(op_fn fn, const void *arg, const char *what) {
  cudaEvent_t e0, e1;
  CU(cudaEventCreate(&e0));
  CU(cudaEventCreate(&e1));
  sf_error err = {0};
  float ms = -1.0f;
  CU(cudaEventRecord(e0, stream));
  if (fn(arg, &err) != SF_OK) {
    printf("    %s failed: %s\n", what, err.msg);
    n_fail++;
  } else {
    CU(cudaEventRecord(e1, stream));
    CU(cudaEventSynchronize(e1));
    CU(cudaEventElapsedTime(&ms, e0, e1));
  }
  CU(cudaEventDestroy(e0));
  CU(cudaEventDestroy(e1));
  return ms;
}

/* Median milliseconds of one replay of the call captured in a CUDA graph
 * (launch overhead out of the way); negative when capture failed. */
static inline float time_graph(op_fn fn, const void *arg, int nrep) {
  sf_error err = {0};
  if (fn(arg, &err) != SF_OK || ctx.ops->sync(&ctx, &err) != SF_OK) return -1.0f; /* workspace sized */
  cudaGraph_t g;
  cudaGraphExec_t ge;
  if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) return -1.0f;
  const sf_status rc = fn(arg, &err);
  if (cudaStreamEndCapture(stream, &g) != cudaSuccess || rc != SF_OK) {
    (void)cudaGetLastError();
    printf("    graph capture failed: %s\n", rc != SF_OK ? err.msg : "EndCapture");
    return -1.0f;
  }
  CU(cudaGraphInstantiate(&ge, g, 0));
  cudaEvent_t e0, e1;
  CU(cudaEventCreate(&e0));
  CU(cudaEventCreate(&e1));
  for (int i = 0; i < 3; i++) CU(cudaGraphLaunch(ge, stream));
  float *t = malloc(sizeof(float) * (size_t)nrep);
  for (int i = 0; i < nrep; i++) {
    CU(cudaMemsetAsync(flush_buf, i & 0xff, FLUSH_BYTES, stream));
    CU(cudaEventRecord(e0, stream));
    CU(cudaGraphLaunch(ge, stream));
    CU(cudaEventRecord(e1, stream));
    CU(cudaEventSynchronize(e1));
    CU(cudaEventElapsedTime(&t[i], e0, e1));
  }
  qsort(t, (size_t)nrep, sizeof(float), cmp_f);
  const float med = nrep % 2 ? t[nrep / 2] : 0.5f * (t[nrep / 2 - 1] + t[nrep / 2]);
  free(t);
  CU(cudaEventDestroy(e0));
  CU(cudaEventDestroy(e1));
  CU(cudaGraphExecDestroy(ge));
  CU(cudaGraphDestroy(g));
  return med;
}

/* One 1 GiB device-to-device copy, bufs[1] into bufs[0] (a time_op call:
 * the copy rate as a median over repeats with the L2 flushed). */
static inline sf_status bench_copy_call(const void *a, sf_error *err) {
  void *const *bufs = a;
  (void)err;
  return cudaMemcpyAsync(bufs[0], bufs[1], (size_t)1 << 30, cudaMemcpyDeviceToDevice, stream) == cudaSuccess
             ? SF_OK
             : SF_ERR_DEVICE;
}

/* The device-to-device copy rate in GB/s ((read + write) bytes / time):
 * the best of 5 copies of 1 GiB on the program's stream. */
static inline double bench_copy_gbs(void) {
  const size_t bytes = (size_t)1 << 30;
  void *x, *y;
  CU(cudaMalloc(&x, bytes));
  CU(cudaMalloc(&y, bytes));
  CU(cudaMemset(x, 1, bytes));
  cudaEvent_t e0, e1;
  CU(cudaEventCreate(&e0));
  CU(cudaEventCreate(&e1));
  float best = 1e30f;
  for (int i = 0; i < 5; i++) {
    float ms;
    CU(cudaEventRecord(e0, stream));
    CU(cudaMemcpyAsync(y, x, bytes, cudaMemcpyDeviceToDevice, stream));
    CU(cudaEventRecord(e1, stream));
    CU(cudaEventSynchronize(e1));
    CU(cudaEventElapsedTime(&ms, e0, e1));
    if (ms < best) best = ms;
  }
  CU(cudaEventDestroy(e0));
  CU(cudaEventDestroy(e1));
  CU(cudaFree(x));
  CU(cudaFree(y));
  return 2.0 * (double)bytes / (best * 1e-3) / 1e9;
}

/* The program's start: 1 with the op context, its stream and the L2-flush
 * buffer ready (device 0 named on stdout), 0 when there is no CUDA device
 * (said on stdout, nothing to measure), -1 when the context fails. */
static inline int bench_begin(const char *prog) {
  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
    printf("%s: SKIPPED: no CUDA device, nothing measured\n", prog);
    return 0;
  }
  struct cudaDeviceProp prop;
  CU(cudaGetDeviceProperties(&prop, 0));
  const char *pdl = getenv("SCANFLASH_PDL");
  printf("device 0: %s, sm_%d%d, %d SMs, %.1f GiB, L2 %d MiB; programmatic dependent launch %s\n", prop.name,
         prop.major, prop.minor, prop.multiProcessorCount, (double)prop.totalGlobalMem / (1 << 30),
         prop.l2CacheSize >> 20, prop.major >= 9 && !(pdl && !strcmp(pdl, "0")) ? "on" : "off");
  sf_error err = {0};
  if (sf_cuda_ctx_init(&ctx, 0, &err) != SF_OK) {
    fprintf(stderr, "%s: sf_cuda_ctx_init: %s\n", prog, err.msg);
    return -1;
  }
  stream = (cudaStream_t)ctx.stream;
  CU(cudaMalloc(&flush_buf, FLUSH_BYTES));
  return 1;
}

static inline void bench_end(void) {
  cudaFree(flush_buf);
  sf_cuda_ctx_destroy(&ctx);
}

#endif
