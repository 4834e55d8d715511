/* Micro-benchmark of the cuda Mamba ops (SSD, selective scan, the two state
 * updates) through the op table; not a test (not in ctest). Built only with
 * CUDA.
 *
 * Timing: CUDA events around each call on the op's stream, 3 warm-ups, the
 * median of REPS (default 11) repeats, the L2 flushed before each repeat (a
 * 256 MiB memset outside the timed region). Inputs are random (never zeros).
 * Ceilings measured here: the device-to-device copy rate ((read + write)
 * bytes / time of a 1 GiB cudaMemcpy) and a bf16 GEMM (8192^3 through the
 * op table's cuBLAS gemm); the special-function rate is the datasheet's 16
 * ex2 / clock / SM at the reported clock.
 *
 * SSD: the mamba2-1.3b layer (64 heads x head_dim 64, d_state 128, 1 group,
 * chunk 256, batch 1, bf16, dt softplus + bias, D, no z unless said).
 *   bytes = L (x + out + B + C + dt) + the state read and written;
 *   FLOPs (causal, C·Bᵀ shared by the group's heads) per 256-token chunk =
 *   heads (2 N P Q [state] + Q² P [masked scores · x] + 2 Q N P [C · S])
 *   + groups Q² N [C·Bᵀ];  floor = max(bytes / copy rate, FLOPs / GEMM rate).
 *   At 1M tokens the output of heads 0, 1, 62, 63 and their final state are
 *   compared with the sequential kernel (sf_cuda_ssd_variant 1) on a view of
 *   those heads; at 4M tokens (no z, 66 GB) heads 62, 63.
 * Selective scan: the mamba-1.4b layer (d_inner 4096, d_state 16, bf16, z, D,
 *   delta bias + softplus; B, C slices of x_dbl [dt_rank 128 | B | C]).
 *   bytes = L (u + delta + z + out + B + C); exponentials = L d_inner d_state;
 *   floor = max(bytes / copy rate, exps / (16 SMs clock)). Variants (see
 *   sf_cuda_selective_scan_variant): v3, v4 (the op), v5; each chunked one
 *   is compared with the sequential kernel at batch 2 x 16k tokens.
 * Updates: selective_state_update (4096 x 16) and ssd_update (64 x 64 x 128),
 *   batch 1, 8, 64: GB/s over the state bytes read + written.
 *
 * Usage: bench_mamba [--quick] [--reps N] [--no-4m]
 * Prints tables; exit 0 unless a call failed or a check did not pass. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/convert.h"
#include "ops/op_table.h"
#include "ops/op_table_cuda.h"
#include "bench_common.h"
#include "scanflash/rng.h"

/* Tuning and reference entry points of kernels/cuda (ssd.cu, selective_scan.cu). */
sf_status sf_cuda_ssd_variant(sf_op_ctx *ctx, const sf_ssd_params *p, int variant, sf_error *err);
sf_status sf_cuda_selective_scan_variant(sf_op_ctx *ctx, const sf_selective_scan_params *p, int variant,
                                         sf_error *err);

static int reps = 11, quick = 0, do_4m = 1;
static double copy_gbs = 0, gemm_tflops = 0, sfu_rate = 0; /* B/s, FLOP/s, ex2/s */
static sf_rng rng;

/* Random bf16 values (normal, scale, offset) in n elements of device memory:
 * a host block of 4 Mi + 77 elements (off any power of two, so that chunks
 * see shifted data), copied over and over. */
static void fill_bf16(void *d, size_t n, float scale, float offset) {
  const size_t blk = ((size_t)4 << 20) + 77;
  const size_t first = n < blk ? n : blk;
  if (first == 0) return;
  uint16_t *h = malloc(first * 2);
  if (!h) exit(1);
  for (size_t i = 0; i < first; i++) h[i] = sf_f32_to_bf16(offset + scale * sf_rng_normal(&rng));
  CU(cudaMemcpy(d, h, first * 2, cudaMemcpyHostToDevice));
  size_t done = first;
  while (done < n) {
    const size_t c = n - done < done ? n - done : done; /* doubling */
    CU(cudaMemcpy((char *)d + done * 2, d, c * 2, cudaMemcpyDeviceToDevice));
    done += c;
  }
  free(h);
}
static float *dev_f32(size_t n, float lo, float hi) {
  float *h = malloc(n * sizeof(float)), *d;
  for (size_t i = 0; i < n; i++) h[i] = lo + (hi - lo) * sf_rng_uniform(&rng);
  CU(cudaMalloc((void **)&d, n * sizeof(float)));
  CU(cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice));
  free(h);
  return d;
}
static void *dmalloc(size_t bytes) {
  void *p = NULL;
  CU(cudaMalloc(&p, bytes ? bytes : 256));
  return p;
}
static void set_seq(int64_t **d_start, int32_t **d_len, int batch, int64_t L) {
  int64_t st[64];
  int32_t ln[64];
  for (int b = 0; b < batch; b++) st[b] = (int64_t)b * L, ln[b] = (int32_t)L;
  CU(cudaMemcpy(*d_start, st, sizeof(int64_t) * (size_t)batch, cudaMemcpyHostToDevice));
  CU(cudaMemcpy(*d_len, ln, sizeof(int32_t) * (size_t)batch, cudaMemcpyHostToDevice));
}

/* ||a - ref|| / ||ref|| over bf16 rows (row strides in elements), and the
 * count outside |a - ref| <= etol (|ref| + rms(ref)). */
static double cmp_bf16(const uint16_t *a, int64_t as, const uint16_t *r, int64_t rs, int64_t rows, int64_t cols,
                       double etol, int64_t *wrong) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) {
      const double y = sf_bf16_to_f32(r[i * rs + j]);
      den += y * y;
    }
  const double rms = sqrt(den / (double)(rows * cols));
  *wrong = 0;
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) {
      const double x = sf_bf16_to_f32(a[i * as + j]), y = sf_bf16_to_f32(r[i * rs + j]);
      if (isnan(x) || isinf(x)) {
        (*wrong)++;
        num = NAN;
        continue;
      }
      num += (x - y) * (x - y);
      if (fabs(x - y) > etol * (fabs(y) + rms)) (*wrong)++;
    }
  return sqrt(num / (den > 0 ? den : 1));
}
static double cmp_f32(const float *a, const float *r, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    if (isnan(a[i])) return NAN;
    num += ((double)a[i] - r[i]) * ((double)a[i] - r[i]);
    den += (double)r[i] * r[i];
  }
  return sqrt(num / (den > 0 ? den : 1));
}

/* ---------------------------------------------------------------- ceilings */

static sf_status gemm_call(const void *a, sf_error *err) { return ctx.ops->gemm(&ctx, a, err); }

static void ceilings(void) {
  void *bufs[2] = {dmalloc((size_t)1 << 30), dmalloc((size_t)1 << 30)};
  CU(cudaMemset(bufs[1], 1, (size_t)1 << 30));
  const float cms = time_op(bench_copy_call, bufs, reps);
  copy_gbs = 2.0 * (double)((size_t)1 << 30) / (cms * 1e-3) / 1e9;
  cudaFree(bufs[0]), cudaFree(bufs[1]);
  const int64_t M = 8192;
  void *a = dmalloc((size_t)M * M * 2), *w = dmalloc((size_t)M * M * 2), *c = dmalloc((size_t)M * M * 2);
  fill_bf16(a, (size_t)M * M, 1, 0);
  fill_bf16(w, (size_t)M * M, 1, 0);
  sf_gemm_params gp = {.dtype = SF_BF16, .out_dtype = SF_BF16, .m = M, .n = M, .k = M, .a = a, .lda = M,
                       .w = w, .ldw = M, .bias = NULL, .c = c, .ldc = M, .accumulate = 0};
  const float gms = time_op(gemm_call, &gp, reps);
  gemm_tflops = 2.0 * (double)M * M * M / (gms * 1e-3) / 1e12;
  cudaFree(a), cudaFree(w), cudaFree(c);
  int sms = 0, clk = 0;
  CU(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  CU(cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, 0));
  sfu_rate = 16.0 * sms * clk * 1e3;
  printf("== ceilings: copy 1 GiB %.3f ms = %.0f GB/s (read + write); bf16 GEMM 8192^3 %.3f ms = %.0f TFLOP/s;\n"
         "   SFU %d SMs x 16 ex2/clk x %.0f MHz = %.2f Tex2/s\n",
         cms, copy_gbs, gms, gemm_tflops, sms, clk * 1e-3, sfu_rate * 1e-12);
}

/* --------------------------------------------------------------------- SSD */

enum { SH = 64, SP = 64, SN = 128, SG = 1 };

typedef struct ssd_bufs {
  void *x, *dt, *B, *C, *z, *out;
  float *dt_bias, *A, *D, *state, *state0;
  int64_t *start;
  int32_t *len;
  int64_t cap; /* tokens */
} ssd_bufs;

typedef struct ssd_arg {
  sf_ssd_params p;
  int variant;
} ssd_arg;

static sf_status ssd_call(const void *a, sf_error *err) {
  const ssd_arg *s = a;
  return sf_cuda_ssd_variant(&ctx, &s->p, s->variant, err);
}

static void ssd_alloc(ssd_bufs *s, int64_t cap, int with_z) {
  const int64_t W = (int64_t)SH * SP;
  memset(s, 0, sizeof *s);
  s->cap = cap;
  s->x = dmalloc((size_t)cap * W * 2);
  s->out = dmalloc((size_t)cap * W * 2);
  s->z = with_z ? dmalloc((size_t)cap * W * 2) : NULL;
  s->B = dmalloc((size_t)cap * SG * SN * 2);
  s->C = dmalloc((size_t)cap * SG * SN * 2);
  s->dt = dmalloc((size_t)cap * SH * 2);
  fill_bf16(s->x, (size_t)cap * W, 1, 0);
  if (s->z) fill_bf16(s->z, (size_t)cap * W, 1, 0);
  fill_bf16(s->B, (size_t)cap * SG * SN, 1, 0);
  fill_bf16(s->C, (size_t)cap * SG * SN, 1, 0);
  fill_bf16(s->dt, (size_t)cap * SH, 0.5f, -1.0f);
  s->dt_bias = dev_f32(SH, -4.0f, -1.0f);
  s->A = dev_f32(SH, -8.0f, -0.5f);
  s->D = dev_f32(SH, 0.5f, 1.5f);
  s->state0 = dev_f32((size_t)SH * SP * SN, -1.0f, 1.0f);
  s->state = dmalloc((size_t)SH * SP * SN * 4);
  s->start = dmalloc(64 * sizeof(int64_t));
  s->len = dmalloc(64 * sizeof(int32_t));
}
static void ssd_free(ssd_bufs *s) {
  void *ps[] = {s->x, s->out, s->z, s->B, s->C, s->dt, s->dt_bias, s->A, s->D, s->state0, s->state, s->start, s->len};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
    if (ps[i]) cudaFree(ps[i]);
  memset(s, 0, sizeof *s);
}
static sf_ssd_params ssd_params(const ssd_bufs *s, int64_t L, int with_z, int has_init) {
  const int64_t W = (int64_t)SH * SP;
  sf_ssd_params p = {.dtype = SF_BF16, .n_heads = SH, .head_dim = SP, .n_groups = SG, .d_state = SN,
                     .chunk_size = 256, .seqs = {1, L, s->start, s->len}, .x = s->x, .x_token_stride = W,
                     .dt = s->dt, .dt_token_stride = SH, .dt_bias = s->dt_bias, .dt_softplus = 1, .dt_min = 0.0f,
                     .dt_max = INFINITY, .A = s->A, .B = s->B, .B_token_stride = SG * SN, .C = s->C,
                     .C_token_stride = SG * SN, .D = s->D, .z = with_z ? s->z : NULL, .z_token_stride = W,
                     .state = s->state, .state_batch_stride = W * SN, .has_initial_state = has_init,
                     .out = s->out, .out_token_stride = W};
  return p;
}

/* Heads [h0, h0 + nh) of the full run against the sequential kernel on a view. */
static void ssd_check(ssd_bufs *s, int64_t L, int with_z, int h0, int nh, const char *tag) {
  const int64_t W = (int64_t)SH * SP;
  CU(cudaMemcpy(s->state, s->state0, (size_t)W * SN * 4, cudaMemcpyDeviceToDevice));
  ssd_arg a = {ssd_params(s, L, with_z, 1), 0};
  const float ms_fast = time_once(ssd_call, &a, "ssd");
  if (ms_fast < 0) return;
  /* reference on the view */
  const int64_t RW = (int64_t)nh * SP;
  void *ref = dmalloc((size_t)L * RW * 2);
  float *rstate = dmalloc((size_t)RW * SN * 4);
  CU(cudaMemcpy(rstate, s->state0 + (size_t)h0 * SP * SN, (size_t)RW * SN * 4, cudaMemcpyDeviceToDevice));
  sf_ssd_params v = a.p;
  v.n_heads = nh;
  v.x = (const char *)s->x + (size_t)h0 * SP * 2;
  v.dt = (const char *)s->dt + (size_t)h0 * 2;
  v.dt_bias = s->dt_bias + h0;
  v.A = s->A + h0;
  v.D = s->D + h0;
  v.z = with_z ? (const char *)s->z + (size_t)h0 * SP * 2 : NULL;
  v.state = rstate;
  v.state_batch_stride = RW * SN;
  v.out = ref;
  v.out_token_stride = RW;
  ssd_arg ra = {v, 1};
  const float ms_ref = time_once(ssd_call, &ra, "ssd reference");
  if (ms_ref < 0) {
    cudaFree(ref), cudaFree(rstate);
    return;
  }
  uint16_t *hg = malloc((size_t)L * RW * 2), *hr = malloc((size_t)L * RW * 2);
  CU(cudaMemcpy2D(hg, (size_t)RW * 2, (const char *)s->out + (size_t)h0 * SP * 2, (size_t)W * 2, (size_t)RW * 2,
                  (size_t)L, cudaMemcpyDeviceToHost));
  CU(cudaMemcpy(hr, ref, (size_t)L * RW * 2, cudaMemcpyDeviceToHost));
  int64_t wrong = 0;
  const double rel = cmp_bf16(hg, RW, hr, RW, L, RW, 4e-2, &wrong);
  if (wrong > 0) { /* the first few outliers, with their gate input */
    double den = 0;
    for (int64_t i = 0; i < L * RW; i++) den += (double)sf_bf16_to_f32(hr[i]) * sf_bf16_to_f32(hr[i]);
    const double rms = sqrt(den / (double)(L * RW));
    int shown = 0;
    for (int64_t i = 0; i < L * RW && shown < 4; i++) {
      const double x = sf_bf16_to_f32(hg[i]), y = sf_bf16_to_f32(hr[i]);
      if (!(fabs(x - y) > 4e-2 * (fabs(y) + rms))) continue;
      const int64_t t = i / RW, c = i % RW;
      uint16_t zb = 0;
      if (with_z) CU(cudaMemcpy(&zb, (const char *)s->z + ((size_t)t * W + (size_t)h0 * SP + (size_t)c) * 2, 2,
                                cudaMemcpyDeviceToHost));
      printf("    outlier token %lld channel %lld: got %.5g ref %.5g (rms %.3g) z %.3g\n", (long long)t,
             (long long)(h0 * SP + c), x, y, rms, with_z ? sf_bf16_to_f32(zb) : 0.0);
      shown++;
    }
  }
  float *sg = malloc((size_t)RW * SN * 4), *sr = malloc((size_t)RW * SN * 4);
  CU(cudaMemcpy(sg, s->state + (size_t)h0 * SP * SN, (size_t)RW * SN * 4, cudaMemcpyDeviceToHost));
  CU(cudaMemcpy(sr, rstate, (size_t)RW * SN * 4, cudaMemcpyDeviceToHost));
  const double srel = cmp_f32(sg, sr, (size_t)RW * SN);
  const int pass = !isnan(rel) && rel <= 1e-2 && wrong == 0 && !isnan(srel) && srel <= 1e-2;
  printf("check %-4s L %8lld heads %2d..%2d%s: out rel %.2e (%lld of %lld outside 4e-2), final state rel %.2e;"
         " chunked %.1f ms, sequential ref %.0f ms: %s\n",
         tag, (long long)L, h0, h0 + nh - 1, with_z ? " z" : "", rel, (long long)wrong, (long long)(L * RW), srel,
         ms_fast, ms_ref, pass ? "pass" : "FAIL");
  if (!pass) n_fail++;
  free(hg), free(hr), free(sg), free(sr);
  cudaFree(ref), cudaFree(rstate);
}

static const char *ssd_kname(int variant, int graph) {
  switch (variant) {
    case 1: return "sequential";
    case 3: return "chunked/v3";
    case 10: return "  1 prep";
    case 11: return "  2 state";
    case 12: return "  3 out";
    case 13: return "  2 state/v3";
    default: return graph ? "chunked/graph" : "chunked";
  }
}

static void ssd_row(ssd_bufs *s, int64_t L, int with_z, int variant, int graph) {
  const int64_t W = (int64_t)SH * SP;
  set_seq(&s->start, &s->len, 1, L);
  ssd_arg a = {ssd_params(s, L, with_z, 0), variant};
  const int nrep = variant == 1 ? 3 : reps;
  if (variant >= 10) { /* one stage after a full call: its own time */
    sf_error err = {0};
    ssd_arg f = {a.p, 0};
    if (ssd_call(&f, &err) != SF_OK) return;
  }
  const float ms = graph ? time_graph(ssd_call, &a, nrep) : time_op(ssd_call, &a, nrep);
  if (ms <= 0) return;
  if (variant >= 10) {
    printf("%-13s %8lld %-2s %9.3f\n", ssd_kname(variant, 0), (long long)L, with_z ? "z" : "-", ms);
    return;
  }
  const double bytes = (double)L * (2.0 * W * 2 + 2.0 * SG * SN * 2 + SH * 2 + (with_z ? W * 2 : 0)) +
                       2.0 * W * SN * 4;
  const double chunks = (double)L / 256.0;
  const double flops = chunks * (SH * (2.0 * SN * SP * 256 + 256.0 * 256 * SP + 2.0 * 256 * SN * SP) +
                                 SG * 256.0 * 256 * SN);
  const double t_bytes = bytes / (copy_gbs * 1e9), t_flops = flops / (gemm_tflops * 1e12);
  const double floor_ms = 1e3 * (t_bytes > t_flops ? t_bytes : t_flops);
  printf("%-13s %8lld %-2s %9.3f %8.0f %6.1f%% %8.1f %6.1f%% %8.3f %6.1f%%\n", ssd_kname(variant, graph),
         (long long)L, with_z ? "z" : "-", ms,
         bytes / (ms * 1e-3) / 1e9, 100.0 * bytes / (ms * 1e-3) / 1e9 / copy_gbs, flops / (ms * 1e-3) / 1e12,
         100.0 * flops / (ms * 1e-3) / 1e12 / gemm_tflops, floor_ms, 100.0 * floor_ms / ms);
}

/* SF_SSD_CAP=N: sizes up to N tokens (default 1M, 128k with --quick);
 * SF_SSD_CHECK=0: no checks against the sequential kernel. */
static void bench_ssd(void) {
  int64_t cap = quick ? ((int64_t)128 << 10) : ((int64_t)1 << 20);
  const char *ce = getenv("SF_SSD_CAP"), *ke = getenv("SF_SSD_CHECK"), *te = getenv("SF_SSD_TUNE");
  if (ce && atoll(ce) > 0) cap = atoll(ce);
  const int do_check = !(ke && !strcmp(ke, "0"));
  ssd_bufs s;
  ssd_alloc(&s, cap, 1);
  /* one call at the largest size first: the workspace is then reserved for all */
  set_seq(&s.start, &s.len, 1, cap);
  {
    sf_error err = {0};
    ssd_arg a = {ssd_params(&s, cap, 0, 0), 0};
    if (ssd_call(&a, &err) != SF_OK || ctx.ops->sync(&ctx, &err) != SF_OK) {
      printf("ssd failed: %s\n", err.msg);
      n_fail++;
    }
  }
  printf("\n== SSD: %d heads x %d, d_state %d, %d group, chunk 256, batch 1, bf16; floor = max(bytes / copy, "
         "FLOPs / GEMM)%s%s\n",
         SH, SP, SN, SG, te ? "; SF_SSD_TUNE=" : "", te ? te : "");
  printf("%-13s %8s %-2s %9s %8s %7s %8s %7s %8s %7s\n", "kernel", "L", "z", "ms", "GB/s", "%copy", "TFLOP/s",
         "%GEMM", "floor ms", "%floor");
  const int64_t Ls[] = {2048, 16384, 131072, 524288, 1048576};
  for (int i = 0; i < 5; i++) {
    if (Ls[i] > cap) break;
    ssd_row(&s, Ls[i], 0, 0, 0);
    if (Ls[i] == 2048) {
      ssd_row(&s, Ls[i], 0, 0, 1);
      for (int v = 10; v <= 12; v++) ssd_row(&s, Ls[i], 0, v, 0);
    }
    if (Ls[i] == 16384 || Ls[i] == 524288) {
      ssd_row(&s, Ls[i], 1, 0, 0);
      ssd_row(&s, Ls[i], 0, 3, 0);
      for (int v = 10; v <= 13; v++) ssd_row(&s, Ls[i], 0, v, 0);
    }
    if (Ls[i] <= 16384) ssd_row(&s, Ls[i], 0, 1, 0);
  }
  if (do_check && !quick) {
    set_seq(&s.start, &s.len, 1, cap);
    ssd_check(&s, cap, 1, 0, 2, "1M");
    ssd_check(&s, cap, 1, 62, 2, "1M");
  } else if (do_check) {
    set_seq(&s.start, &s.len, 1, cap);
    ssd_check(&s, cap, 1, 62, 2, "128k");
  }
  ssd_free(&s);
  if (do_check && !quick && do_4m) {
    const int64_t L4 = (int64_t)4 << 20;
    size_t fr = 0, tot = 0;
    CU(cudaMemGetInfo(&fr, &tot));
    const double need = (double)L4 * (2.0 * SH * SP * 2 + 2.0 * SN * 2 + SH * 2) + 2.5e9;
    if ((double)fr < need) {
      printf("check 4M skipped: %.1f GB free, %.1f GB needed\n", fr / 1e9, need / 1e9);
      return;
    }
    ssd_alloc(&s, L4, 0);
    set_seq(&s.start, &s.len, 1, L4);
    ssd_check(&s, L4, 0, 62, 2, "4M");
    ssd_free(&s);
  }
}

/* ------------------------------------------------------------ selective scan */

enum { MD = 4096, MN = 16, MR = 128, MXD = MR + 2 * MN };

typedef struct scan_arg {
  sf_selective_scan_params p;
  int variant; /* -1: naive; else sf_cuda_selective_scan_variant */
} scan_arg;

static sf_status scan_call(const void *a, sf_error *err) {
  const scan_arg *s = a;
  if (s->variant < 0) return ctx.ops->selective_scan_naive(&ctx, &s->p, err);
  return sf_cuda_selective_scan_variant(&ctx, &s->p, s->variant, err);
}

static void bench_scan(void) {
  const int64_t cap = quick ? ((int64_t)128 << 10) : ((int64_t)512 << 10); /* tokens (batch x L) */
  void *u = dmalloc((size_t)cap * MD * 2), *dl = dmalloc((size_t)cap * MD * 2), *z = dmalloc((size_t)cap * MD * 2);
  void *xd = dmalloc((size_t)cap * MXD * 2), *out = dmalloc((size_t)cap * MD * 2);
  fill_bf16(u, (size_t)cap * MD, 1, 0);
  fill_bf16(dl, (size_t)cap * MD, 0.5f, -1.0f);
  fill_bf16(z, (size_t)cap * MD, 1, 0);
  fill_bf16(xd, (size_t)cap * MXD, 1, 0);
  float *db = dev_f32(MD, -4.0f, -1.0f), *D = dev_f32(MD, 0.5f, 1.5f);
  float *A;
  {
    float *h = malloc((size_t)MD * MN * 4);
    for (int64_t i = 0; i < (int64_t)MD * MN; i++) h[i] = -(1.0f + (float)(i % MN)) * (0.5f + sf_rng_uniform(&rng));
    CU(cudaMalloc((void **)&A, (size_t)MD * MN * 4));
    CU(cudaMemcpy(A, h, (size_t)MD * MN * 4, cudaMemcpyHostToDevice));
    free(h);
  }
  float *state = dmalloc((size_t)64 * MD * MN * 4);
  int64_t *d_start = dmalloc(64 * sizeof(int64_t));
  int32_t *d_len = dmalloc(64 * sizeof(int32_t));
  printf("\n== selective scan: d_inner %d, d_state %d, bf16, z, D, delta bias + softplus; floor = max(bytes / "
         "copy, exps / SFU)\n",
         MD, MN);
  printf("%-12s %2s %8s %9s %8s %7s %9s %8s %7s\n", "kernel", "b", "L", "ms", "GB/s", "%copy", "Gexp/s", "floor ms",
         "%floor");
  typedef struct { int b; int64_t L; int variant; } sc;
  /* variants: 2 = v3 (chunked, 2 states pipelined), 6-9 = v4 (ring of time slots) with 0, 1, 2, 3 of every 16
   * tokens' exponentials on the FMA pipe; 0 = the op's choice */
  const sc cases[] = {{1, 524288, 2},  {8, 65536, 2},  {1, 524288, 7},  {1, 524288, 10}, {1, 524288, 12},
                      {1, 2048, 0},    {1, 16384, 0},  {1, 131072, 0}, {1, 524288, 0},  {8, 65536, 0},
                      {1, 2048, 1},    {1, 16384, 1},  {1, 2048, -1}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const int B = cases[i].b;
    const int64_t L = cases[i].L;
    if ((int64_t)B * L > cap) continue;
    set_seq(&d_start, &d_len, B, L);
    scan_arg a = {{.dtype = SF_BF16, .dim = MD, .d_state = MN, .chunk_size = 0, .seqs = {B, L, d_start, d_len},
                   .u = u, .u_token_stride = MD, .delta = dl, .delta_token_stride = MD, .delta_bias = db,
                   .delta_softplus = 1, .A = A, .B = (char *)xd + MR * 2, .B_token_stride = MXD,
                   .C = (char *)xd + (MR + MN) * 2, .C_token_stride = MXD, .D = D, .z = z, .z_token_stride = MD,
                   .state = state, .state_batch_stride = (int64_t)MD * MN, .has_initial_state = 0, .out = out,
                   .out_token_stride = MD},
                  cases[i].variant};
    const float ms = time_op(scan_call, &a, (cases[i].variant >= 2 || cases[i].variant == 0) ? reps : 3);
    if (ms <= 0) continue;
    const double tok = (double)B * L;
    const double bytes = tok * (4.0 * MD * 2 + 2.0 * MN * 2), exps = tok * MD * MN;
    const double t_b = bytes / (copy_gbs * 1e9), t_e = exps / sfu_rate;
    const double floor_ms = 1e3 * (t_b > t_e ? t_b : t_e);
    static const char *const vname[] = {"op",          "sequential",  "v3",          "chunked/nr2", "?",
                                        "chunked/nr4", "v4/poly0",    "v4/poly1",    "v4/poly2",    "v4/poly3",
                                        "v5/ns4",      "v5/ns4/poly", "v5/ns2",      "v5/ns2/poly"};
    printf("%-12s %2d %8lld %9.3f %8.0f %6.1f%% %9.0f %8.3f %6.1f%%\n",
           cases[i].variant < 0 ? "naive" : vname[cases[i].variant], B, (long long)L, ms,
           bytes / (ms * 1e-3) / 1e9, 100.0 * bytes / (ms * 1e-3) / 1e9 / copy_gbs, exps / (ms * 1e-3) / 1e9,
           floor_ms, 100.0 * floor_ms / ms);
  }
  /* chunked vs sequential at 16k, batch 2 (every output, the final states) */
  for (int cv = 0; cv <= 13; cv++) {
    if (cv == 1 || (cv >= 3 && cv <= 6) || cv == 8 || cv == 9 || cv == 11 || cv == 13) continue;
    const int B = 2;
    const int64_t L = 16384;
    set_seq(&d_start, &d_len, B, L);
    void *o2 = dmalloc((size_t)B * L * MD * 2);
    float *s2 = dmalloc((size_t)B * MD * MN * 4);
    sf_error err = {0};
    scan_arg a = {{.dtype = SF_BF16, .dim = MD, .d_state = MN, .chunk_size = 0, .seqs = {B, L, d_start, d_len},
                   .u = u, .u_token_stride = MD, .delta = dl, .delta_token_stride = MD, .delta_bias = db,
                   .delta_softplus = 1, .A = A, .B = (char *)xd + MR * 2, .B_token_stride = MXD,
                   .C = (char *)xd + (MR + MN) * 2, .C_token_stride = MXD, .D = D, .z = z, .z_token_stride = MD,
                   .state = state, .state_batch_stride = (int64_t)MD * MN, .has_initial_state = 0, .out = out,
                   .out_token_stride = MD},
                  cv};
    scan_arg r = a;
    r.variant = 1;
    r.p.out = o2;
    r.p.state = s2;
    if (scan_call(&a, &err) != SF_OK || scan_call(&r, &err) != SF_OK || ctx.ops->sync(&ctx, &err) != SF_OK) {
      printf("    scan check failed: %s\n", err.msg);
      n_fail++;
    } else {
      const size_t n = (size_t)B * L * MD;
      uint16_t *hg = malloc(n * 2), *hr = malloc(n * 2);
      CU(cudaMemcpy(hg, out, n * 2, cudaMemcpyDeviceToHost));
      CU(cudaMemcpy(hr, o2, n * 2, cudaMemcpyDeviceToHost));
      int64_t wrong = 0;
      const double rel = cmp_bf16(hg, MD, hr, MD, (int64_t)B * L, MD, 4e-2, &wrong);
      float *sg = malloc((size_t)B * MD * MN * 4), *sr = malloc((size_t)B * MD * MN * 4);
      CU(cudaMemcpy(sg, state, (size_t)B * MD * MN * 4, cudaMemcpyDeviceToHost));
      CU(cudaMemcpy(sr, s2, (size_t)B * MD * MN * 4, cudaMemcpyDeviceToHost));
      const double srel = cmp_f32(sg, sr, (size_t)B * MD * MN);
      const int pass = !isnan(rel) && rel <= 1e-2 && wrong == 0 && !isnan(srel) && srel <= 1e-4;
      printf("check chunked (variant %d) vs sequential, b 2 x L 16384: out rel %.2e (%lld outside 4e-2), state rel "
             "%.2e: %s\n",
             cv, rel, (long long)wrong, srel, pass ? "pass" : "FAIL");
      if (!pass) n_fail++;
      free(hg), free(hr), free(sg), free(sr);
    }
    cudaFree(o2), cudaFree(s2);
  }
  void *ps[] = {u, dl, z, xd, out, db, D, A, state, d_start, d_len};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) cudaFree(ps[i]);
}

/* ------------------------------------------------------------------ updates */

static sf_status ssu_call(const void *a, sf_error *err) { return ctx.ops->selective_state_update(&ctx, a, err); }
static sf_status ssdu_call(const void *a, sf_error *err) { return ctx.ops->ssd_update(&ctx, a, err); }

static void bench_updates(void) {
  const int BMAX = 64;
  printf("\n== state updates (decode), bf16; GB/s over the fp32 state read + written\n");
  printf("%-24s %3s %9s %8s %7s\n", "op", "b", "us", "GB/s", "%copy");
  {
    void *x = dmalloc((size_t)BMAX * MD * 2), *dt = dmalloc((size_t)BMAX * MD * 2), *z = dmalloc((size_t)BMAX * MD * 2);
    void *bc = dmalloc((size_t)BMAX * 2 * MN * 2), *out = dmalloc((size_t)BMAX * MD * 2);
    fill_bf16(x, (size_t)BMAX * MD, 1, 0);
    fill_bf16(dt, (size_t)BMAX * MD, 0.5f, -1.0f);
    fill_bf16(z, (size_t)BMAX * MD, 1, 0);
    fill_bf16(bc, (size_t)BMAX * 2 * MN, 1, 0);
    float *A = dev_f32((size_t)MD * MN, -8.0f, -0.5f), *db = dev_f32(MD, -4.0f, -1.0f), *D = dev_f32(MD, 0.5f, 1.5f);
    float *st = dev_f32((size_t)BMAX * MD * MN, -1.0f, 1.0f);
    const int bs[] = {1, 8, 64};
    for (int i = 0; i < 3; i++) {
      sf_selective_state_update_params p = {
          .dtype = SF_BF16, .batch = bs[i], .dim = MD, .d_state = MN, .x = x, .x_batch_stride = MD, .dt = dt,
          .dt_batch_stride = MD, .dt_bias = db, .dt_softplus = 1, .A = A, .B = bc, .B_batch_stride = 2 * MN,
          .C = (char *)bc + MN * 2, .C_batch_stride = 2 * MN, .D = D, .z = z, .z_batch_stride = MD, .state = st,
          .state_batch_stride = (int64_t)MD * MN, .out = out, .out_batch_stride = MD};
      const float ms = time_op(ssu_call, &p, reps);
      if (ms <= 0) continue;
      const double bytes = 2.0 * bs[i] * MD * MN * 4;
      printf("%-24s %3d %9.2f %8.0f %6.1f%%\n", "selective_state_update", bs[i], ms * 1e3, bytes / (ms * 1e-3) / 1e9,
             100.0 * bytes / (ms * 1e-3) / 1e9 / copy_gbs);
    }
    void *ps[] = {x, dt, z, bc, out, A, db, D, st};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) cudaFree(ps[i]);
  }
  {
    const int64_t W = (int64_t)SH * SP;
    void *x = dmalloc((size_t)BMAX * W * 2), *dt = dmalloc((size_t)BMAX * SH * 2), *z = dmalloc((size_t)BMAX * W * 2);
    void *bc = dmalloc((size_t)BMAX * 2 * SN * 2), *out = dmalloc((size_t)BMAX * W * 2);
    fill_bf16(x, (size_t)BMAX * W, 1, 0);
    fill_bf16(dt, (size_t)BMAX * SH, 0.5f, -1.0f);
    fill_bf16(z, (size_t)BMAX * W, 1, 0);
    fill_bf16(bc, (size_t)BMAX * 2 * SN, 1, 0);
    float *A = dev_f32(SH, -8.0f, -0.5f), *db = dev_f32(SH, -4.0f, -1.0f), *D = dev_f32(SH, 0.5f, 1.5f);
    float *st = dev_f32((size_t)BMAX * W * SN, -1.0f, 1.0f);
    const int bs[] = {1, 8, 64};
    for (int i = 0; i < 3; i++) {
      sf_ssd_update_params p = {
          .dtype = SF_BF16, .batch = bs[i], .n_heads = SH, .head_dim = SP, .n_groups = SG, .d_state = SN, .x = x,
          .x_batch_stride = W, .dt = dt, .dt_batch_stride = SH, .dt_bias = db, .dt_softplus = 1, .dt_min = 0.0f,
          .dt_max = INFINITY, .A = A, .B = bc, .B_batch_stride = 2 * SN, .C = (char *)bc + SN * 2,
          .C_batch_stride = 2 * SN, .D = D, .z = z, .z_batch_stride = W, .state = st, .state_batch_stride = W * SN,
          .out = out, .out_batch_stride = W};
      const float ms = time_op(ssdu_call, &p, reps);
      if (ms <= 0) continue;
      const double bytes = 2.0 * bs[i] * W * SN * 4;
      printf("%-24s %3d %9.2f %8.0f %6.1f%%\n", "ssd_update", bs[i], ms * 1e3, bytes / (ms * 1e-3) / 1e9,
             100.0 * bytes / (ms * 1e-3) / 1e9 / copy_gbs);
    }
    void *ps[] = {x, dt, z, bc, out, A, db, D, st};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) cudaFree(ps[i]);
  }
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *qe = getenv("SF_BENCH_QUICK");
  quick = qe && *qe && strcmp(qe, "0");
  int do_ssd = 1, do_scan = 1, do_upd = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) quick = 1;
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--no-4m")) do_4m = 0;
    else if (!strcmp(argv[i], "--ssd")) do_scan = do_upd = 0;
    else if (!strcmp(argv[i], "--scan")) do_ssd = do_upd = 0;
    else if (!strcmp(argv[i], "--updates")) do_ssd = do_scan = 0;
  }
  if (reps < 1) reps = 1;
  const int ready = bench_begin("bench_mamba");
  if (ready <= 0) return ready < 0 ? 1 : 0;
  sf_rng_seed(&rng, 1234);
  ceilings();
  if (do_upd) bench_updates();
  if (do_scan) bench_scan();
  if (do_ssd) bench_ssd();
  bench_end();
  printf("%s (%d failure%s)\n", n_fail ? "FAILED" : "done", n_fail, n_fail == 1 ? "" : "s");
  return n_fail ? 1 : 0;
}
