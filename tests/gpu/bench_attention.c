/* Micro-benchmark of the cuda attention ops (prefill and decode) through
 * the op table; not a test (not in ctest). Built only with CUDA.
 *
 * Timing: CUDA events around each call on the op's stream, 3 warm-ups, the
 * median of REPS (default 10) repeats, the L2 flushed before each repeat (a
 * 256 MiB memset outside the timed region). Inputs are random (never zeros).
 *
 * Prefill: bf16, h = 16 heads, b * L = 16384 tokens (b = 16..1 for L =
 * 1k..16k, so b * h * L = 256k token-heads fills the GPU), head_dim 64/128,
 * causal or not; FLOPs = 4 b L^2 h d, halved when causal. Every tensor-core
 * variant is timed (variant 0 is the op's mma.sync default; on cc 9.0 the
 * op itself runs wgmma, its row says so); at L = 2k each variant's
 * output is compared with the fp32 kernel's (rel = ||out - ref|| / ||ref||).
 * Decode: bf16, head_dim 128 (and one 64), KV bytes = 2 b kv_heads L d 2;
 * GB/s over those bytes, and % of the measured device-to-device copy rate
 * ((read + write) bytes / time of a 1 GiB cudaMemcpy).
 *
 * Usage: bench_attention [--quick] [--reps N]   (SF_BENCH_QUICK=1 too)
 * Prints a table; exit 0 unless a call failed. */
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

/* Tuning entry points of kernels/cuda/attention*.cu. */
sf_status sf_cuda_attention_variant(sf_op_ctx *ctx, const sf_attention_params *p, int variant, int info[5],
                                    sf_error *err);
sf_status sf_cuda_attention_decode_variant(sf_op_ctx *ctx, const sf_attention_decode_params *p, int variant,
                                           sf_error *err);

static int reps = 10, quick = 0;

/* Random bf16 values (normal, scale 1) in n elements of device memory: a
 * 4 Mi-element host block, copied over and over. */
static void fill_random_bf16(void *d, size_t n, sf_rng *rng) {
  const size_t blk = (size_t)4 << 20;
  uint16_t *h = malloc(blk * 2);
  for (size_t i = 0; i < blk; i++) h[i] = sf_f32_to_bf16(sf_rng_normal(rng));
  size_t done = 0;
  const size_t first = n < blk ? n : blk;
  CU(cudaMemcpy(d, h, first * 2, cudaMemcpyHostToDevice));
  done = first;
  while (done < n) {
    const size_t c = n - done < done ? n - done : done;  /* doubling */
    CU(cudaMemcpy((char *)d + done * 2, d, c * 2, cudaMemcpyDeviceToDevice));
    done += c;
  }
  free(h);
}

/* ---------------------------------------------------------------- prefill */

typedef struct pf_arg {
  sf_attention_params p;
  int variant; /* -2: the op table; -1: fp32 kernel; >= 0: tensor-core variant */
} pf_arg;

static sf_status pf_call(const void *a, sf_error *err) {
  const pf_arg *x = a;
  if (x->variant == -2) return ctx.ops->attention(&ctx, &x->p, err);
  return sf_cuda_attention_variant(&ctx, &x->p, x->variant, NULL, err);
}

static double rel_err(const uint16_t *a, const uint16_t *ref, size_t n, double *max_abs) {
  double num = 0, den = 0, mx = 0;
  for (size_t i = 0; i < n; i++) {
    const double x = sf_bf16_to_f32(a[i]), y = sf_bf16_to_f32(ref[i]);
    if (isnan(x)) return NAN;
    num += (x - y) * (x - y);
    den += y * y;
    if (fabs(x - y) > mx) mx = fabs(x - y);
  }
  *max_abs = mx;
  return sqrt(num / (den > 0 ? den : 1));
}

static void bench_prefill(sf_rng *rng) {
  const int H = 16, TOK = 16384;
  const int Ls[] = {1024, 2048, 4096, 8192, 16384};
  const int nL = quick ? 3 : 5;
  const size_t elems = (size_t)TOK * H * 128;
  void *q, *k, *v, *o, *o_ref;
  int32_t *d_len;
  int64_t *d_start;
  CU(cudaMalloc(&q, elems * 2));
  CU(cudaMalloc(&k, elems * 2));
  CU(cudaMalloc(&v, elems * 2));
  CU(cudaMalloc(&o, elems * 2));
  CU(cudaMalloc(&o_ref, elems * 2));
  CU(cudaMalloc((void **)&d_len, 16 * sizeof(int32_t)));
  CU(cudaMalloc((void **)&d_start, 16 * sizeof(int64_t)));
  fill_random_bf16(q, elems, rng);
  fill_random_bf16(k, elems, rng);
  fill_random_bf16(v, elems, rng);
  uint16_t *h_o = malloc(elems * 2), *h_ref = malloc(elems * 2);

  printf("\n== prefill: bf16, %d heads, b*L = %d tokens; TFLOP/s = 4 b L^2 h d (/2 causal) / time\n", H, TOK);
  printf("%-4s %-6s %6s %3s %-16s %9s %9s %10s\n", "hd", "causal", "L", "b", "kernel", "ms", "TFLOP/s",
         "rel(L=2k)");
  for (int hdi = 0; hdi < 2; hdi++) {
    const int hd = hdi ? 128 : 64;
    for (int causal = 1; causal >= 0; causal--) {
      for (int li = 0; li < nL; li++) {
        const int L = Ls[li], B = TOK / L;
        int32_t lens[16];
        int64_t starts[16];
        for (int b = 0; b < B; b++) lens[b] = L, starts[b] = (int64_t)b * L;
        CU(cudaMemcpy(d_len, lens, sizeof(int32_t) * (size_t)B, cudaMemcpyHostToDevice));
        CU(cudaMemcpy(d_start, starts, sizeof(int64_t) * (size_t)B, cudaMemcpyHostToDevice));
        const int64_t ts = (int64_t)H * hd;
        pf_arg a;
        memset(&a, 0, sizeof a);
        a.p = (sf_attention_params){.dtype = SF_BF16, .n_heads = H, .n_kv_heads = H, .head_dim = hd,
                                    .scale = 1.0f / sqrtf((float)hd), .causal = causal,
                                    .seqs = {B, L, d_start, d_len}, .past_len = NULL, .q = q,
                                    .q_token_stride = ts, .q_head_stride = hd,
                                    .cache = {k, v, (int64_t)L * ts, ts, hd, L}, .out = o,
                                    .out_token_stride = ts, .out_head_stride = hd, .lse = NULL,
                                    .lse_token_stride = H};
        const double flops = 4.0 * B * (double)L * L * H * hd / (causal ? 2.0 : 1.0);
        const size_t n_out = (size_t)B * L * ts;
        const int check = L == 2048;
        if (check) { /* the fp32 kernel as the reference */
          a.variant = -1;
          sf_error err = {0};
          float ms = time_op(pf_call, &a, 1);
          if (ms > 0) {
            CU(cudaMemcpy(h_ref, o, n_out * 2, cudaMemcpyDeviceToHost));
            printf("%-4d %-6s %6d %3d %-16s %9.3f %9.1f %10s\n", hd, causal ? "yes" : "no", L, B, "fp32 (old)", ms,
                   flops / (ms * 1e-3) / 1e12, "ref");
          }
          (void)err;
        }
        for (int var = -2; var < 16; var++) {
          if (var == -1) continue;
          int info[5] = {0, 0, 0, 0, 0};
          sf_error err = {0};
          if (var >= 0) {
            /* probe the variant (runs it once) */
            a.variant = var;
            if (sf_cuda_attention_variant(&ctx, &a.p, var, info, &err) != SF_OK) {
              if (err.code == SF_ERR_UNSUPPORTED || strstr(err.msg, "no variant")) break;
              printf("    variant %d: %s\n", var, err.msg);
              n_fail++;
              break;
            }
          }
          a.variant = var;
          CU(cudaMemset(o, 0xFF, n_out * 2));
          const float ms = time_op(pf_call, &a, reps);
          if (ms < 0) continue;
          char name[32], rel[32] = "";
          if (var == -2) snprintf(name, sizeof name, "op");
          else
            snprintf(name, sizeof name, "v%d %dx%dw%df%d%s", var, info[0], info[1], info[2], info[3],
                     info[4] ? "*" : "");
          if (check) {
            CU(cudaMemcpy(h_o, o, n_out * 2, cudaMemcpyDeviceToHost));
            double mx = 0;
            const double r = rel_err(h_o, h_ref, n_out, &mx);
            snprintf(rel, sizeof rel, "%.2e", r);
            if (!(r < 1e-2)) {
              printf("    MISMATCH vs fp32 kernel: rel %.3e max abs %.3e\n", r, mx);
              n_fail++;
            }
          }
          printf("%-4d %-6s %6d %3d %-16s %9.3f %9.1f %10s\n", hd, causal ? "yes" : "no", L, B, name, ms,
                 flops / (ms * 1e-3) / 1e12, rel);
        }
      }
    }
  }
  /* the long single-head case of the gpu test (the fp32 kernel took 141 ms) */
  {
    const int L = 131072, hd = 64;
    int32_t len = L;
    int64_t st0 = 0;
    CU(cudaMemcpy(d_len, &len, sizeof len, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(d_start, &st0, sizeof st0, cudaMemcpyHostToDevice));
    pf_arg a;
    memset(&a, 0, sizeof a);
    a.variant = -2;
    a.p = (sf_attention_params){.dtype = SF_BF16, .n_heads = 1, .n_kv_heads = 1, .head_dim = hd,
                                .scale = 0.125f, .causal = 1, .seqs = {1, L, d_start, d_len}, .q = q,
                                .q_token_stride = hd, .q_head_stride = hd, .cache = {k, v, (int64_t)L * hd, hd, hd, L},
                                .out = o, .out_token_stride = hd, .out_head_stride = hd, .lse_token_stride = 1};
    const float ms = time_op(pf_call, &a, 5);
    if (ms > 0)
      printf("%-4d %-6s %6d %3d %-16s %9.3f %9.1f   (1 head)\n", hd, "yes", L, 1, "op", ms,
             4.0 * L * (double)L * hd / 2 / (ms * 1e-3) / 1e12);
  }
  free(h_o), free(h_ref);
  cudaFree(q), cudaFree(k), cudaFree(v), cudaFree(o), cudaFree(o_ref), cudaFree(d_len), cudaFree(d_start);
}

/* ----------------------------------------------------------------- decode */

typedef struct dc_arg {
  sf_attention_decode_params p;
  int variant;
} dc_arg;

static sf_status dc_call(const void *a, sf_error *err) {
  const dc_arg *x = a;
  return sf_cuda_attention_decode_variant(&ctx, &x->p, x->variant, err);
}


static void bench_decode(sf_rng *rng) {
  /* device-to-device copy rate */
  void *bufs[2];
  CU(cudaMalloc(&bufs[0], (size_t)1 << 30));
  CU(cudaMalloc(&bufs[1], (size_t)1 << 30));
  CU(cudaMemset(bufs[1], 1, (size_t)1 << 30));
  const float cms = time_op(bench_copy_call, bufs, reps);
  const double copy_gbs = 2.0 * (double)((size_t)1 << 30) / (cms * 1e-3) / 1e9;
  cudaFree(bufs[0]), cudaFree(bufs[1]);
  printf("\n== device-to-device copy: 1 GiB in %.3f ms = %.0f GB/s (read + write)\n", cms, copy_gbs);

  typedef struct { int B, L, H, KVH, hd; } dcase;
  const dcase cases[] = {{1, 32768, 16, 16, 128}, {2, 32768, 16, 16, 128}, {4, 32768, 16, 16, 128},
                         {8, 32768, 16, 16, 128}, {1, 131072, 16, 16, 128}, {1, 32768, 32, 8, 128},
                         {4, 32768, 32, 8, 128},  {8, 32768, 32, 8, 128},  {1, 131072, 32, 8, 128},
                         {4, 32768, 16, 2, 128},  {4, 32768, 16, 16, 64}};
  const int nc = quick ? 4 : (int)(sizeof cases / sizeof cases[0]);
  size_t max_elems = 0;
  for (int i = 0; i < nc; i++) {
    const size_t e = (size_t)cases[i].B * cases[i].L * cases[i].KVH * cases[i].hd;
    if (e > max_elems) max_elems = e;
  }
  void *k, *v, *q, *o;
  int32_t *d_cl;
  CU(cudaMalloc(&k, max_elems * 2));
  CU(cudaMalloc(&v, max_elems * 2));
  CU(cudaMalloc(&q, (size_t)8 * 32 * 128 * 2));
  CU(cudaMalloc(&o, (size_t)8 * 32 * 128 * 2));
  CU(cudaMalloc((void **)&d_cl, 8 * sizeof(int32_t)));
  fill_random_bf16(k, max_elems, rng);
  fill_random_bf16(v, max_elems, rng);
  fill_random_bf16(q, (size_t)8 * 32 * 128, rng);

  printf("== decode: bf16; GB/s over the KV bytes 2 b kv_heads L d 2\n");
  printf("%3s %7s %3s %4s %4s %-9s %9s %8s %7s\n", "b", "L", "H", "KVH", "hd", "kernel", "us", "GB/s", "%copy");
  for (int i = 0; i < nc; i++) {
    const dcase c = cases[i];
    int32_t cl[8];
    for (int b = 0; b < c.B; b++) cl[b] = c.L;
    CU(cudaMemcpy(d_cl, cl, sizeof(int32_t) * (size_t)c.B, cudaMemcpyHostToDevice));
    const int64_t ps = (int64_t)c.KVH * c.hd;
    dc_arg a;
    memset(&a, 0, sizeof a);
    a.p = (sf_attention_decode_params){.dtype = SF_BF16, .batch = c.B, .n_heads = c.H, .n_kv_heads = c.KVH,
                                       .head_dim = c.hd, .scale = 1.0f / sqrtf((float)c.hd), .q = q,
                                       .q_batch_stride = (int64_t)c.H * c.hd, .q_head_stride = c.hd,
                                       .cache = {k, v, (int64_t)c.L * ps, ps, c.hd, c.L}, .cache_len = d_cl,
                                       .num_splits = 0, .out = o, .out_batch_stride = (int64_t)c.H * c.hd,
                                       .out_head_stride = c.hd, .lse = NULL, .lse_batch_stride = c.H};
    const double bytes = 2.0 * c.B * c.KVH * (double)c.L * c.hd * 2;
    /* the op (automatic splits); at two shapes also fixed split counts and
     * the fallback kernel */
    const int splits[] = {0, 33, 66, 132, 256, -1};
    for (int si = 0; si < 6; si++) {
      if (si > 0 && i != 0 && i != 5) break;
      a.variant = splits[si] < 0 ? -1 : 0;
      a.p.num_splits = splits[si] < 0 ? 0 : splits[si];
      const float ms = time_op(dc_call, &a, reps);
      if (ms < 0) continue;
      const double gbs = bytes / (ms * 1e-3) / 1e9;
      char name[32];
      if (splits[si] < 0) snprintf(name, sizeof name, "fallback");
      else if (splits[si] == 0) snprintf(name, sizeof name, "op");
      else snprintf(name, sizeof name, "op S=%d", splits[si]);
      printf("%3d %7d %3d %4d %4d %-9s %9.1f %8.0f %6.1f%%\n", c.B, c.L, c.H, c.KVH, c.hd, name, ms * 1e3, gbs,
             100.0 * gbs / copy_gbs);
    }
  }
  cudaFree(k), cudaFree(v), cudaFree(q), cudaFree(o), cudaFree(d_cl);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *qe = getenv("SF_BENCH_QUICK");
  quick = qe && *qe && strcmp(qe, "0");
  int do_prefill = 1, do_decode = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) quick = 1;
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--prefill")) do_decode = 0;
    else if (!strcmp(argv[i], "--decode")) do_prefill = 0;
  }
  if (reps < 1) reps = 1;
  const int ready = bench_begin("bench_attention");
  if (ready <= 0) return ready < 0 ? 1 : 77;
  sf_rng rng;
  sf_rng_seed(&rng, 1234);
  if (do_prefill) bench_prefill(&rng);
  if (do_decode) bench_decode(&rng);
  bench_end();
  printf("\n%d failure(s)\n", n_fail);
  return n_fail ? 1 : 0;
}
