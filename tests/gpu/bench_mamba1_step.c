/* Micro-benchmark of the persistent Mamba-1 decode step (the op
 * mamba1_decode, kernels/cuda/mamba1_decode.cu) at mamba-1.4b's shapes
 * (d_model 2048, d_inner 4096, d_state 16, dt_rank 128, d_conv 4, bf16);
 * not a test (not in ctest). Built only with CUDA.
 *
 * Timing: the op on random weights of --layers layers (48 as the model),
 * CUDA events around each call, 3 warm-ups, the median of --reps repeats
 * with the L2 flushed before each (bench_common.h time_op). The bytes are
 * what a step must move: every weight once, the SSM and conv states read
 * and written; % is of the device-to-device copy rate measured here.
 *
 * Then one traced call (sf_mamba1_decode_params.trace): where each block's
 * consumers spent a layer, as means over blocks and over the layers but the
 * first and the last (µs), the time from the first to the last block at
 * each grid barrier, and the waits of the ring's two ends.
 *
 * --inflight, --ahead and --slot take comma-separated lists of the
 * stream's tuning (sf_mamba1_decode_params.inflight, l2_ahead, slot_bytes;
 * 0: the default); every combination is timed and traced in turn on the
 * same weights. --stream-only times each combination a second time with
 * nothing computed (stream_only): the weight stream's own ceiling.
 *
 * Usage: bench_mamba1_step [--layers N] [--reps N] [--inflight LIST] [--ahead LIST] [--slot LIST] [--stream-only]
 * Exit 0 unless a call failed. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/convert.h"
#include "ops/mamba.h"
#include "bench_common.h"
#include "scanflash/rng.h"

enum { D = 2048, DI = 4096, N = 16, R = 128, W = 4, NX = R + 2 * N };

/* The trace's points (mamba1_decode.cu md_t_*), in the kernel's order. */
enum { T_START, T_OPA, T_X, T_NORM, T_IN_PROJ, T_CONV, T_S0, T_XC, T_S1, T_OPB, T_XD, T_S2, T_Y, T_S3, T_FULL_WAIT,
       T_PRODUCER, T_EMPTY_WAIT, T_FLIGHT_WAIT };

/* A device copy of n random values (normal, scale) in bf16 or f32. */
static void *dev_random(sf_rng *rng, int64_t n, float scale, float mean, int bf16) {
  float *h = malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) h[i] = mean + scale * sf_rng_normal(rng);
  void *d;
  const size_t bytes = (size_t)n * (bf16 ? 2 : 4);
  CU(cudaMalloc(&d, bytes));
  if (bf16) {
    uint16_t *b = malloc(2 * (size_t)n);
    sf_convert(b, SF_BF16, h, SF_F32, n);
    CU(cudaMemcpy(d, b, bytes, cudaMemcpyHostToDevice));
    free(b);
  } else {
    CU(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
  }
  free(h);
  return d;
}

static sf_status run_step(const void *arg, sf_error *err) { return ctx.ops->mamba1_decode(&ctx, arg, err); }

static double mean_us(const uint64_t *t, int blocks, int layers, int a, int b) {
  double s = 0;
  int n = 0;
  for (int g = 0; g < blocks; g++)
    for (int l = 1; l < layers - 1; l++, n++) {
      const uint64_t *p = t + ((size_t)g * layers + l) * SF_MAMBA1_DECODE_TRACE;
      s += b < 0 ? (double)p[a] : (double)p[b] - (double)p[a];
    }
  return n ? s / n * 1e-3 : 0;
}

/* Mean over the layers of (last block - first block) at point k. */
static double skew_us(const uint64_t *t, int blocks, int layers, int k) {
  double s = 0;
  for (int l = 1; l < layers - 1; l++) {
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int g = 0; g < blocks; g++) {
      const uint64_t v = t[((size_t)g * layers + l) * SF_MAMBA1_DECODE_TRACE + k];
      lo = v < lo ? v : lo, hi = v > hi ? v : hi;
    }
    s += (double)(hi - lo);
  }
  return layers > 2 ? s / (layers - 2) * 1e-3 : 0;
}

/* Up to 16 non-negative integers of a comma-separated list into v; their count, or -1. */
static int int_list(const char *arg, int *v) {
  int n = 0;
  for (const char *p = arg; *p && n < 16;) {
    char *end;
    const long x = strtol(p, &end, 10);
    if (end == p || x < 0 || x > (1 << 20) || (*end && *end != ',')) return -1;
    v[n++] = (int)x;
    p = *end ? end + 1 : end;
  }
  return n;
}

/* One traced call of p: where the layer's time went. */
static void trace_step(sf_mamba1_decode_params *p, int layers) {
  int blocks = 0;
  CU(cudaDeviceGetAttribute(&blocks, cudaDevAttrMultiProcessorCount, 0));
  const size_t tn = (size_t)blocks * layers * SF_MAMBA1_DECODE_TRACE;
  CU(cudaMalloc((void **)&p->trace, tn * sizeof(uint64_t)));
  CU(cudaMemset(p->trace, 0, tn * sizeof(uint64_t)));
  CU(cudaMemsetAsync(flush_buf, 7, FLUSH_BYTES, stream));
  sf_error err = {0};
  if (run_step(p, &err) != SF_OK || ctx.ops->sync(&ctx, &err) != SF_OK) {
    printf("traced call failed: %s\n", err.msg);
    n_fail++;
  } else {
    uint64_t *t = malloc(tn * sizeof(uint64_t));
    CU(cudaMemcpy(t, p->trace, tn * sizeof(uint64_t), cudaMemcpyDeviceToHost));
    static const struct { const char *what; int a, b; } rows[] = {
        {"operand buffer A wait", T_START, T_OPA},   {"grid barrier (x)", T_OPA, T_X},
        {"norm", T_X, T_NORM},                       {"in_proj rows", T_NORM, T_IN_PROJ},
        {"conv (thread 0's warp)", T_IN_PROJ, T_CONV}, {"stage 0 arrival", T_CONV, T_S0},
        {"grid barrier (xc)", T_S0, T_XC},
        {"x_proj rows", T_XC, T_S1},                 {"operand buffer B wait", T_S1, T_OPB},
        {"grid barrier (x_proj)", T_OPB, T_XD},      {"state update", T_XD, T_S2},
        {"grid barrier (y)", T_S2, T_Y},             {"out_proj rows", T_Y, T_S3},
        {"the layer", T_START, T_S3},                {"  of which slot-full waits (thread 0)", T_FULL_WAIT, -1},
        {"producer: empty-slot waits", T_EMPTY_WAIT, -1},
        {"producer: in-flight waits", T_FLIGHT_WAIT, -1},
        {"producer: first copy of the layer - layer start", T_START, T_PRODUCER},
    };
    printf("traced call, %d blocks, means over blocks and layers 1..%d (us):\n", blocks, layers - 2);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
      printf("  %-48s %8.2f\n", rows[i].what, mean_us(t, blocks, layers, rows[i].a, rows[i].b));
    printf("first to last block (us): stage 0 %.2f, stage 1 %.2f, stage 2 %.2f, stage 3 %.2f\n",
           skew_us(t, blocks, layers, T_S0), skew_us(t, blocks, layers, T_S1), skew_us(t, blocks, layers, T_S2),
           skew_us(t, blocks, layers, T_S3));
    free(t);
  }
  CU(cudaFree(p->trace));
  p->trace = NULL;
}

int main(int argc, char **argv) {
  int layers = 48, reps = 11, inflight[16] = {0}, ahead[16] = {0}, slot[16] = {0}, n_inflight = 1, n_ahead = 1;
  int n_slot = 1, stream_only = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--inflight") && i + 1 < argc && (n_inflight = int_list(argv[++i], inflight)) > 0) {
    } else if (!strcmp(argv[i], "--ahead") && i + 1 < argc && (n_ahead = int_list(argv[++i], ahead)) > 0) {
    } else if (!strcmp(argv[i], "--slot") && i + 1 < argc && (n_slot = int_list(argv[++i], slot)) > 0) {
    } else if (!strcmp(argv[i], "--stream-only")) {
      stream_only = 1;
    } else {
      fprintf(stderr, "usage: bench_mamba1_step [--layers N] [--reps N] [--inflight N,N,..] [--ahead N,N,..] "
                      "[--slot BYTES,..] [--stream-only]\n");
      return 2;
    }
  }
  if (layers < 3 || layers > SF_MAMBA1_DECODE_MAX_LAYERS || reps < 1) {
    fprintf(stderr, "bench_mamba1_step: --layers must be 3..%d, --reps at least 1\n", SF_MAMBA1_DECODE_MAX_LAYERS);
    return 2;
  }
  const int ready = bench_begin("bench_mamba1_step");
  if (ready <= 0) return ready < 0 ? 1 : 0;
  if (!ctx.ops->mamba1_decode) {
    printf("bench_mamba1_step: SKIPPED: the backend has no mamba1_decode\n");
    bench_end();
    return 0;
  }
  const double copy_gbs = bench_copy_gbs();
  sf_rng rng;
  sf_rng_seed(&rng, 4321);
  sf_mamba1_layer_ptrs *L = calloc((size_t)layers, sizeof *L);
  for (int l = 0; l < layers; l++) {
    float *A = malloc(sizeof(float) * DI * N);
    for (int i = 0; i < DI * N; i++) A[i] = -(1.0f + (float)(i % N));
    void *dA;
    CU(cudaMalloc(&dA, sizeof(float) * DI * N));
    CU(cudaMemcpy(dA, A, sizeof(float) * DI * N, cudaMemcpyHostToDevice));
    free(A);
    L[l] = (sf_mamba1_layer_ptrs){
        .norm_w = dev_random(&rng, D, 0.1f, 1.0f, 1), .in_proj_w = dev_random(&rng, 2LL * DI * D, 0.022f, 0, 1),
        .conv_w = dev_random(&rng, DI * W, 0.5f, 0, 1), .conv_b = dev_random(&rng, DI, 0.5f, 0, 1),
        .x_proj_w = dev_random(&rng, (int64_t)NX * DI, 0.016f, 0, 1),
        .dt_proj_w = dev_random(&rng, (int64_t)DI * R, 0.09f, 0, 1),
        .out_proj_w = dev_random(&rng, (int64_t)D * DI, 0.008f, 0, 1),
        .dt_bias = dev_random(&rng, DI, 0.5f, -2.5f, 0), .A = dA, .D = dev_random(&rng, DI, 0.5f, 1.0f, 0),
        .conv_state = dev_random(&rng, DI * (W - 1), 1.0f, 0, 1), .ssm_state = dev_random(&rng, DI * N, 1.0f, 0, 0)};
  }
  sf_mamba1_decode_params p = {.dtype = SF_BF16, .n_layers = layers, .d_model = D, .d_inner = DI, .d_state = N,
                               .dt_rank = R, .d_conv = W, .eps = 1e-5f, .x = dev_random(&rng, D, 1.0f, 0, 0),
                               .layers = L};
  /* a step's bytes: weights once (norm, in_proj, conv, x_proj, dt_proj, out_proj, dt bias, A, D), the states
   * read and written */
  const double weights = 2.0 * (D + 2.0 * DI * D + DI * W + DI + (double)NX * DI + (double)DI * R + (double)D * DI) +
                         4.0 * (DI + (double)DI * N + DI);
  const double states = 2.0 * (4.0 * DI * N + 2.0 * DI * (W - 1));
  const double bytes = layers * (weights + states);
  printf("device-to-device copy: %.0f GB/s\n", copy_gbs);
  for (int a = 0; a < n_inflight; a++)
    for (int b = 0; b < n_ahead; b++)
      for (int c = 0; c < n_slot; c++)
        for (int so = 0; so <= stream_only; so++) {
          p.inflight = inflight[a], p.l2_ahead = ahead[b], p.slot_bytes = slot[c], p.stream_only = so;
          const float ms = time_op(run_step, &p, reps);
          printf("\n== inflight %d, l2_ahead %d, slot_bytes %d%s\n", p.inflight, p.l2_ahead, p.slot_bytes,
                 so ? ", the stream alone (nothing computed)" : "");
          if (ms > 0)
            printf("mamba1_decode, %d layers of mamba-1.4b: %.3f ms a step (median of %d), %.1f MB, %.0f GB/s, "
                   "%.1f %% of the copy rate (%.3f ms at it)\n",
                   layers, ms, reps, bytes / 1e6, bytes / (ms * 1e-3) / 1e9,
                   100.0 * bytes / (ms * 1e-3) / 1e9 / copy_gbs, bytes / (copy_gbs * 1e9) * 1e3);
          trace_step(&p, layers);
        }
  bench_end();
  printf("bench_mamba1_step: %d failure(s)\n", n_fail);
  return n_fail ? 1 : 0;
}
