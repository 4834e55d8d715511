/* Micro-benchmark of decode's weight streams: the gemm op at one or two
 * rows (gemm_small_m.cu) on the projection shapes of mamba-1.4b,
 * mamba2-1.3b and pythia-1.4b; not a test (not in ctest). Built only with
 * CUDA.
 *
 * A decode step streams each weight matrix once, one product after the
 * other, so a product is timed as it runs there: NB copies of the weights
 * (together over 1 GiB, so none is in L2 when its turn comes) multiplied one
 * after the other, the NB launches captured in one CUDA graph (as decode
 * steps are), the median of REPS replays (bench_common.h time_graph, the L2
 * flushed before each) divided by NB. GB/s counts the
 * weight bytes (the activations are a few kilobytes); % is of the
 * device-to-device copy rate measured here ((read + write) bytes / time of a
 * 1 GiB cudaMemcpy). Each shape runs with the op's own choice and with every
 * (words per lane, warps per column) variant, which is how the op's choice
 * was made. The op's result is compared with a cpu product once per shape.
 *
 * Usage: bench_gemv [--reps N] [--quick]   (SCANFLASH_PDL=0: plain launches)
 * Exit 0 unless a call failed or a check did not pass. */
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

sf_status sf_cuda_gemm_small_m_variant(sf_op_ctx *ctx, const sf_gemm_params *p, int words, int split,
                                       sf_error *err);

typedef struct shape {
  const char *what;
  int64_t n, k;
  int f32_out, accumulate;
} shape;

static const shape SHAPES[] = {
    {"mamba-1.4b in_proj", 8192, 2048, 0, 0},  {"mamba-1.4b x_proj", 160, 4096, 0, 0},
    {"mamba-1.4b dt_proj", 4096, 128, 0, 0},   {"mamba-1.4b out_proj (+= f32)", 2048, 4096, 1, 1},
    {"mamba2-1.3b in_proj", 8512, 2048, 0, 0}, {"pythia-1.4b qkv", 6144, 2048, 0, 0},
    {"pythia-1.4b dense (+= f32)", 2048, 2048, 1, 1}, {"pythia-1.4b fc1", 8192, 2048, 0, 0},
    {"pythia-1.4b fc2 (+= f32)", 2048, 8192, 1, 1},   {"lm_head (f32)", 50280, 2048, 1, 0},
};

static int reps = 11, quick = 0;
static double copy_gbs = 0;

typedef struct run {
  sf_gemm_params p[64];
  int nb, words, split; /* words 0: the op's own choice */
} run;

static sf_status run_all(const void *arg, sf_error *err) {
  const run *r = arg;
  for (int i = 0; i < r->nb; i++) {
    const sf_status st = r->words ? sf_cuda_gemm_small_m_variant(&ctx, &r->p[i], r->words, r->split, err)
                                  : ctx.ops->gemm(&ctx, &r->p[i], err);
    if (st != SF_OK) return st;
  }
  return SF_OK;
}

/* got (device, out type) against a . w^T (+ bias) (+ c0) on the host. */
static int check(const shape *s, int m, const uint16_t *a, const uint16_t *w, const uint16_t *bias, const float *c0,
                 const void *dc) {
  const size_t n = (size_t)s->n, k = (size_t)s->k;
  float *got = malloc(sizeof(float) * m * n);
  if (s->f32_out) {
    CU(cudaMemcpy(got, dc, sizeof(float) * m * n, cudaMemcpyDeviceToHost));
  } else {
    uint16_t *h = malloc(2 * m * n);
    CU(cudaMemcpy(h, dc, 2 * m * n, cudaMemcpyDeviceToHost));
    sf_convert(got, SF_F32, h, SF_BF16, (int64_t)(m * n));
    free(h);
  }
  double num = 0, den = 0;
  for (int r = 0; r < m; r++)
    for (size_t j = 0; j < n; j++) {
      double ref = bias ? sf_bf16_to_f32(bias[j]) : 0.0;
      if (s->accumulate) ref += c0[r * n + j];
      for (size_t i = 0; i < k; i++) ref += (double)sf_bf16_to_f32(a[r * k + i]) * sf_bf16_to_f32(w[j * k + i]);
      num += (got[r * n + j] - ref) * (got[r * n + j] - ref);
      den += ref * ref;
    }
  free(got);
  const double rel = sqrt(num / (den > 0 ? den : 1));
  const int ok = rel < (s->f32_out ? 1e-5 : 1e-2);
  if (!ok) n_fail++;
  printf("  check m %d: rel err %.2e %s\n", m, rel, ok ? "pass" : "FAIL");
  return ok;
}

static void bench_shape(const shape *s, sf_rng *rng) {
  const size_t wbytes = (size_t)s->n * s->k * 2;
  int nb = (int)(((size_t)1 << 30) / wbytes) + 1;
  if (nb > 64) nb = 64;
  if (nb < 2) nb = 2;
  void *w = NULL, *a = NULL, *c = NULL, *bias = NULL;
  CU(cudaMalloc(&w, wbytes * nb));
  const size_t obytes = (size_t)2 * s->n * (s->f32_out ? 4 : 2);
  CU(cudaMalloc(&a, (size_t)2 * s->k * 2));
  CU(cudaMalloc(&c, obytes));
  CU(cudaMalloc(&bias, (size_t)s->n * 2));
  /* Random weights for copy 0 (checked), the same bytes repeated for the rest. */
  uint16_t *hw = malloc(wbytes), *ha = malloc((size_t)2 * s->k * 2), *hb = malloc((size_t)s->n * 2);
  float *hc = malloc(sizeof(float) * 2 * (size_t)s->n);
  for (size_t i = 0; i < wbytes / 2; i++) hw[i] = sf_f32_to_bf16(0.05f * (float)sf_rng_normal(rng));
  for (int64_t i = 0; i < 2 * s->k; i++) ha[i] = sf_f32_to_bf16((float)sf_rng_normal(rng));
  for (int64_t i = 0; i < s->n; i++) hb[i] = sf_f32_to_bf16((float)sf_rng_normal(rng));
  for (int64_t i = 0; i < 2 * s->n; i++) hc[i] = (float)sf_rng_normal(rng);
  for (int i = 0; i < nb; i++) CU(cudaMemcpy((char *)w + wbytes * i, hw, wbytes, cudaMemcpyHostToDevice));
  CU(cudaMemcpy(a, ha, (size_t)2 * s->k * 2, cudaMemcpyHostToDevice));
  CU(cudaMemcpy(bias, hb, (size_t)s->n * 2, cudaMemcpyHostToDevice));
  printf("%s: n %lld k %lld, %.1f MB of weights, %d copies\n", s->what, (long long)s->n, (long long)s->k,
         wbytes / 1e6, nb);
  for (int m = 1; m <= 2; m++) {
    run *r = calloc(1, sizeof *r);
    r->nb = nb;
    for (int i = 0; i < nb; i++)
      r->p[i] = (sf_gemm_params){.dtype = SF_BF16, .out_dtype = s->f32_out ? SF_F32 : SF_BF16, .m = m, .n = s->n,
                                 .k = s->k, .a = a, .lda = s->k, .w = (char *)w + wbytes * i, .ldw = s->k,
                                 .bias = s->f32_out ? NULL : bias, .c = c, .ldc = s->n,
                                 .accumulate = s->accumulate};
    /* correctness of the op's own choice, once */
    if (s->accumulate) CU(cudaMemcpy(c, hc, sizeof(float) * m * s->n, cudaMemcpyHostToDevice));
    sf_error err = {0};
    if (ctx.ops->gemm(&ctx, &r->p[0], &err) != SF_OK || ctx.ops->sync(&ctx, &err) != SF_OK) {
      printf("  m %d: failed: %s\n", m, err.msg);
      n_fail++;
      free(r);
      continue;
    }
    check(s, m, ha, hw, s->f32_out ? NULL : hb, hc, c);
    static const int WORDS[] = {0, 4, 8, 16}, SPLITS[] = {1, 2, 4, 8};
    for (int wi = 0; wi < 4; wi++)
      for (int si = 0; si < 4; si++) {
        if (WORDS[wi] == 0 && si > 0) continue;
        if (quick && WORDS[wi] != 0) continue;
        r->words = WORDS[wi], r->split = SPLITS[si];
        if (r->words && (int64_t)32 * r->words * r->split > s->k / 8 * 2) continue; /* lanes mostly idle */
        const float ms = time_graph(run_all, r, reps);
        if (ms < 0) {
          n_fail++;
          continue;
        }
        const double us = 1e3 * ms / nb, gbs = wbytes / (us * 1e-6) / 1e9;
        if (r->words)
          printf("  m %d  words %2d split %d  %8.2f us  %7.0f GB/s  %5.1f %%\n", m, r->words, r->split, us, gbs,
                 100 * gbs / copy_gbs);
        else
          printf("  m %d  op's choice         %8.2f us  %7.0f GB/s  %5.1f %%\n", m, us, gbs, 100 * gbs / copy_gbs);
      }
    free(r);
  }
  free(hw), free(ha), free(hb), free(hc);
  CU(cudaFree(w));
  CU(cudaFree(a));
  CU(cudaFree(c));
  CU(cudaFree(bias));
}

static void measure_copy(void) {
  copy_gbs = bench_copy_gbs();
  printf("device-to-device copy: %.0f GB/s (read + write, best of 5 x 1 GiB)\n", copy_gbs);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--quick")) quick = 1;
    else {
      fprintf(stderr, "usage: bench_gemv [--reps N] [--quick]\n");
      return 2;
    }
  }
  if (reps < 1) reps = 1;
  const int ready = bench_begin("bench_gemv");
  if (ready <= 0) return ready < 0 ? 1 : 0;
  measure_copy();
  sf_rng rng;
  sf_rng_seed(&rng, 1234);
  for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) bench_shape(&SHAPES[i], &rng);
  bench_end();
  printf("bench_gemv: %d failure(s)\n", n_fail);
  return n_fail ? 1 : 0;
}
