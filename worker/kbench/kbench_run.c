/* kbench's harness: contexts, ceilings, the timed run of one shape, the
 * check against the cpu backend, and kernels work items. The CUDA parts
 * build only with SCANFLASH_HAVE_CUDA; without it the entry points say so. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kbench/kbench_internal.h"
#include "scanflash/rng.h"

static void info_init(sf_kbench_info *in) {
  memset(in, 0, sizeof *in);
  in->status = SF_STATUS_OK;
  in->t_roof_s = NAN;
  in->pct_roof = NAN;
  in->bound = "-";
}

#ifndef SCANFLASH_HAVE_CUDA

sf_status sf_kbench_ctx_init(sf_kbench_ctx *ctx, int device, sf_error *err) {
  (void)device;
  memset(ctx, 0, sizeof *ctx);
  return sf_fail(err, SF_ERR_UNSUPPORTED, "no CUDA device (built without CUDA)");
}
void sf_kbench_ctx_destroy(sf_kbench_ctx *ctx) {
  if (ctx) memset(ctx, 0, sizeof *ctx);
}
sf_status sf_kbench_ceilings_get(sf_kbench_ctx *ctx, const sf_kbench_ceilings **out, sf_error *err) {
  (void)ctx, (void)out;
  return sf_fail(err, SF_ERR_UNSUPPORTED, "no CUDA device (built without CUDA)");
}
sf_status sf_kbench_run(sf_kbench_ctx *ctx, const sf_kbench_shape *s, const sf_kbench_opts *opts,
                        sf_kernel_result *row, sf_kbench_info *info, sf_error *err) {
  (void)ctx, (void)opts;
  sf_kbench_row_init(s, row);
  info_init(info);
  return sf_fail(err, SF_ERR_UNSUPPORTED, "no CUDA device (built without CUDA)");
}

#else /* SCANFLASH_HAVE_CUDA */

static double unix_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#include <cuda_runtime_api.h>

#include "ops/convert.h"
#include "ops/op_table_cuda.h"

int sf_kbench_fill(void *p, int elem, int64_t n, float lo, float hi, uint64_t seed, void *stream);
int sf_kbench_exp_bench(float *out, int blocks, int threads, int iters, void *stream);

struct sf_kbench_check_entry {
  char key[192];
  int64_t n_wrong;
  double max_rel_err;
  int64_t seqlen;
  int32_t batch;
  int ok;                    /* the check ran (the cpu reference exists) */
};

static sf_status cuda_fail(sf_error *err, cudaError_t e, const char *what) {
  (void)cudaGetLastError();
  return sf_fail(err, e == cudaErrorMemoryAllocation ? SF_ERR_NOMEM : SF_ERR_DEVICE, "kbench: %s: %s", what,
                 cudaGetErrorString(e));
}
#define CK(call)                                              \
  do {                                                        \
    cudaError_t ck_e_ = (call);                               \
    if (ck_e_ != cudaSuccess) return cuda_fail(err, ck_e_, #call); \
  } while (0)

static cudaStream_t stream_of(sf_kbench_ctx *ctx) { return (cudaStream_t)ctx->gpu.stream; }

sf_status sf_kbench_ctx_init(sf_kbench_ctx *ctx, int device, sf_error *err) {
  memset(ctx, 0, sizeof *ctx);
  int n = 0;
  cudaError_t ce = cudaGetDeviceCount(&n);
  if (ce != cudaSuccess) {
    (void)cudaGetLastError();
    return sf_fail(err, SF_ERR_UNSUPPORTED, "no CUDA device (cudaGetDeviceCount: %s)", cudaGetErrorString(ce));
  }
  if (n == 0) return sf_fail(err, SF_ERR_UNSUPPORTED, "no CUDA device (cudaGetDeviceCount found none)");
  if (device < 0 || device >= n)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "no CUDA device %d (%d visible)", device, n);
  struct cudaDeviceProp p;
  CK(cudaGetDeviceProperties(&p, device));
  sf_kbench_device *d = &ctx->dev;
  d->index = device;
  snprintf(d->name, sizeof d->name, "%.*s", (int)sizeof d->name - 1, p.name);
  char *u = d->uuid;
  u += sprintf(u, "GPU-");
  for (int b = 0; b < 16; b++)
    u += sprintf(u, "%02x%s", (unsigned char)p.uuid.bytes[b], (b == 3 || b == 5 || b == 7 || b == 9) ? "-" : "");
  d->cc_major = p.major, d->cc_minor = p.minor, d->sm_count = p.multiProcessorCount;
  int clk = 0, mclk = 0, bus = 0;
  (void)cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, device);
  (void)cudaDeviceGetAttribute(&mclk, cudaDevAttrMemoryClockRate, device);
  (void)cudaDeviceGetAttribute(&bus, cudaDevAttrGlobalMemoryBusWidth, device);
  d->sm_clock_mhz = clk / 1000, d->mem_clock_mhz = mclk / 1000, d->mem_bus_width_bits = bus;
  d->memory_bytes = (int64_t)p.totalGlobalMem;
  d->l2_bytes = p.l2CacheSize;
  (void)cudaDriverGetVersion(&d->driver_version);
  (void)cudaRuntimeGetVersion(&d->runtime_version);

  SF_TRY(sf_cuda_ctx_init(&ctx->gpu, device, err));
  ctx->have_gpu = 1;
  sf_status rc = sf_cpu_ctx_init(&ctx->cpu, 0, err);
  if (rc != SF_OK) {
    sf_kbench_ctx_destroy(ctx);
    return rc;
  }
  ctx->have_cpu = 1;
  /* Twice the L2, at least 64 MiB. */
  ctx->flush_bytes = (size_t)(2 * d->l2_bytes > (64 << 20) ? 2 * d->l2_bytes : (64 << 20));
  cudaError_t e = cudaMalloc(&ctx->flush, ctx->flush_bytes);
  if (e == cudaSuccess) e = cudaEventCreate((cudaEvent_t *)&ctx->ev[0]);
  if (e == cudaSuccess) e = cudaEventCreate((cudaEvent_t *)&ctx->ev[1]);
  if (e != cudaSuccess) {
    rc = cuda_fail(err, e, "flush buffer and events");
    sf_kbench_ctx_destroy(ctx);
    return rc;
  }
  return SF_OK;
}

void sf_kbench_ctx_destroy(sf_kbench_ctx *ctx) {
  if (!ctx) return;
  if (ctx->have_gpu) {
    (void)cudaStreamSynchronize(stream_of(ctx));
    if (ctx->flush) (void)cudaFree(ctx->flush);
    for (int i = 0; i < 2; i++)
      if (ctx->ev[i]) (void)cudaEventDestroy((cudaEvent_t)ctx->ev[i]);
    sf_cuda_ctx_destroy(&ctx->gpu);
  }
  if (ctx->have_cpu) sf_cpu_ctx_destroy(&ctx->cpu);
  free(ctx->checks);
  (void)cudaGetLastError();
  memset(ctx, 0, sizeof *ctx);
}

/* ---- timing ------------------------------------------------------------------ */

typedef sf_status (*kb_fn)(sf_kbench_ctx *ctx, void *user, sf_error *err);

/* One call of fn between two events, after an L2 flush when asked. */
static sf_status time_once(sf_kbench_ctx *ctx, kb_fn fn, void *user, int flush, int iter, double *sec,
                           sf_error *err) {
  cudaStream_t st = stream_of(ctx);
  if (flush) CK(cudaMemsetAsync(ctx->flush, iter & 0xff, ctx->flush_bytes, st));
  CK(cudaEventRecord((cudaEvent_t)ctx->ev[0], st));
  SF_TRY(fn(ctx, user, err));
  CK(cudaEventRecord((cudaEvent_t)ctx->ev[1], st));
  CK(cudaEventSynchronize((cudaEvent_t)ctx->ev[1]));
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, (cudaEvent_t)ctx->ev[0], (cudaEvent_t)ctx->ev[1]));
  *sec = 1e-3 * (double)ms;
  return SF_OK;
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Warm-ups then repeats; times sorted on return. The first warm-up sets
 * the number of repeats (row budget) and whether more warm-ups run. */
static sf_status time_loop(sf_kbench_ctx *ctx, kb_fn fn, void *user, int repeats, int warmup, double budget,
                           int flush, double *times, int *n_rep, int *n_warm, sf_error *err) {
  if (warmup < 1) warmup = 1;
  if (repeats < 1) repeats = 1;
  double t1 = 0;
  SF_TRY(time_once(ctx, fn, user, flush, 0, &t1, err));
  int w = 1;
  if (t1 > 0.25) warmup = 1;
  if (budget > 0 && t1 * repeats > budget) {
    int r = (int)(budget / (t1 > 0 ? t1 : 1e-9));
    repeats = r < 3 ? 3 : r;
  }
  for (; w < warmup; w++) {
    double t;
    SF_TRY(time_once(ctx, fn, user, flush, w, &t, err));
  }
  for (int i = 0; i < repeats; i++) SF_TRY(time_once(ctx, fn, user, flush, w + i, &times[i], err));
  qsort(times, (size_t)repeats, sizeof *times, cmp_double);
  *n_rep = repeats;
  *n_warm = warmup;
  return SF_OK;
}

/* ---- ceilings ---------------------------------------------------------------- */

typedef struct gemm_user { sf_gemm_params p; } gemm_user;
static sf_status gemm_fn(sf_kbench_ctx *ctx, void *u, sf_error *err) {
  return ctx->gpu.ops->gemm(&ctx->gpu, &((gemm_user *)u)->p, err);
}
typedef struct copy_user { void *dst, *src; size_t bytes; } copy_user;
static sf_status copy_fn(sf_kbench_ctx *ctx, void *u, sf_error *err) {
  copy_user *c = u;
  CK(cudaMemcpyAsync(c->dst, c->src, c->bytes, cudaMemcpyDeviceToDevice, stream_of(ctx)));
  return SF_OK;
}
typedef struct exp_user { float *out; int blocks, threads, iters; } exp_user;
static sf_status exp_fn(sf_kbench_ctx *ctx, void *u, sf_error *err) {
  exp_user *e = u;
  int rc = sf_kbench_exp_bench(e->out, e->blocks, e->threads, e->iters, ctx->gpu.stream);
  if (rc) return cuda_fail(err, (cudaError_t)rc, "exp kernel");
  return SF_OK;
}

static sf_status fill_dev(sf_kbench_ctx *ctx, void *p, sf_dtype dt, int64_t n, float lo, float hi, uint64_t seed,
                          sf_error *err) {
  int rc = sf_kbench_fill(p, (int)dt, n, lo, hi, seed, ctx->gpu.stream);
  if (rc) return cuda_fail(err, (cudaError_t)rc, "fill kernel");
  return SF_OK;
}

static sf_status measure_ceilings(sf_kbench_ctx *ctx, sf_error *err) {
  sf_kbench_ceilings *c = &ctx->ceil;
  memset(c, 0, sizeof *c);
  double times[16];
  int nr, nw;
  sf_status rc;
  { /* bf16 GEMM 8192^3 */
    const int64_t n = 8192;
    void *a = NULL, *w = NULL, *o = NULL;
    const size_t by = (size_t)(n * n) * 2;
    rc = ctx->gpu.ops->alloc(&ctx->gpu, by, &a, err);
    if (rc == SF_OK) rc = ctx->gpu.ops->alloc(&ctx->gpu, by, &w, err);
    if (rc == SF_OK) rc = ctx->gpu.ops->alloc(&ctx->gpu, by, &o, err);
    if (rc == SF_OK) rc = fill_dev(ctx, a, SF_BF16, n * n, -1, 1, 11, err);
    if (rc == SF_OK) rc = fill_dev(ctx, w, SF_BF16, n * n, -1, 1, 12, err);
    gemm_user g = {{.dtype = SF_BF16, .out_dtype = SF_BF16, .m = n, .n = n, .k = n, .a = a, .lda = n, .w = w,
                    .ldw = n, .bias = NULL, .c = o, .ldc = n, .accumulate = 0}};
    if (rc == SF_OK) rc = time_loop(ctx, gemm_fn, &g, 10, 3, 0, 0, times, &nr, &nw, err);
    if (rc == SF_OK) {
      c->gemm_s = kb_quantile(times, nr, 0.5);
      c->gemm_tflops = 2.0 * (double)n * n * n / c->gemm_s / 1e12;
    }
    ctx->gpu.ops->free(&ctx->gpu, a), ctx->gpu.ops->free(&ctx->gpu, w), ctx->gpu.ops->free(&ctx->gpu, o);
    if (rc != SF_OK) return sf_fail_context(err, "GEMM ceiling");
  }
  { /* device-to-device copy of 2 GiB (less when memory is short) */
    size_t fr = 0, tot = 0;
    CK(cudaMemGetInfo(&fr, &tot));
    size_t by = (size_t)2 << 30;
    while (by > ((size_t)64 << 20) && 2 * by + ((size_t)512 << 20) > fr) by /= 2;
    void *s = NULL, *d = NULL;
    rc = ctx->gpu.ops->alloc(&ctx->gpu, by, &s, err);
    if (rc == SF_OK) rc = ctx->gpu.ops->alloc(&ctx->gpu, by, &d, err);
    if (rc == SF_OK) rc = fill_dev(ctx, s, SF_F32, (int64_t)(by / 4), -1, 1, 13, err);
    copy_user cu = {d, s, by};
    if (rc == SF_OK) rc = time_loop(ctx, copy_fn, &cu, 10, 2, 0, 0, times, &nr, &nw, err);
    if (rc == SF_OK) {
      c->copy_s = kb_quantile(times, nr, 0.5);
      c->copy_bytes = (int64_t)by;
      c->copy_gbps = 2.0 * (double)by / c->copy_s / 1e9;
    }
    ctx->gpu.ops->free(&ctx->gpu, s), ctx->gpu.ops->free(&ctx->gpu, d);
    if (rc != SF_OK) return sf_fail_context(err, "copy ceiling");
  }
  { /* MUFU.EX2 throughput */
    exp_user e = {NULL, ctx->dev.sm_count * 16, 256, 4096};
    rc = ctx->gpu.ops->alloc(&ctx->gpu, (size_t)e.blocks * e.threads * 4, (void **)&e.out, err);
    if (rc == SF_OK) rc = time_loop(ctx, exp_fn, &e, 5, 1, 0, 0, times, &nr, &nw, err);
    if (rc == SF_OK) {
      c->exp_s = kb_quantile(times, nr, 0.5);
      c->exp_per_s = (double)e.blocks * e.threads * (double)e.iters * 8.0 / c->exp_s;
    }
    ctx->gpu.ops->free(&ctx->gpu, e.out);
    if (rc != SF_OK) return sf_fail_context(err, "exp ceiling");
  }
  ctx->have_ceilings = 1;
  return SF_OK;
}

sf_status sf_kbench_ceilings_get(sf_kbench_ctx *ctx, const sf_kbench_ceilings **out, sf_error *err) {
  if (!ctx->have_gpu) return sf_fail(err, SF_ERR_ARG, "kbench: context not initialised");
  if (!ctx->have_ceilings) SF_TRY(measure_ceilings(ctx, err));
  *out = &ctx->ceil;
  return SF_OK;
}

/* ---- tensors on the device ------------------------------------------------------ */

typedef struct kb_dev {
  kb_layout lay;
  void *ptr[KB_MAX_T];
} kb_dev;

static void dev_free(sf_kbench_ctx *ctx, kb_dev *d) {
  for (int i = 0; i < d->lay.nt; i++)
    if (d->ptr[i]) ctx->gpu.ops->free(&ctx->gpu, d->ptr[i]);
  memset(d->ptr, 0, sizeof d->ptr);
}

/* Host values of the small structured tensors (A, start, len). */
static sf_status host_structured(const sf_kbench_shape *s, const kb_tensor *t, sf_rng *rng, void *out) {
  for (int64_t i = 0; i < t->n; i++) {
    switch (t->init) {
      case KB_A_SCAN: {
        const int64_t n = s->d_state > 0 ? i % s->d_state : 0;
        ((float *)out)[i] = -(1.0f + (float)n) * (0.5f + sf_rng_uniform(rng));
        break;
      }
      case KB_SEQ_START: ((int64_t *)out)[i] = i * s->seqlen; break;
      case KB_CONST:
        if (t->elem == KB_I32) ((int32_t *)out)[i] = (int32_t)t->a;
        else if (t->elem == KB_I64) ((int64_t *)out)[i] = (int64_t)t->a;
        else ((float *)out)[i] = t->a;
        break;
      default: break;
    }
  }
  return SF_OK;
}

/* Allocates and fills every tensor of s on the device (outputs unfilled). */
static sf_status dev_setup(sf_kbench_ctx *ctx, const sf_kbench_shape *s, uint64_t seed, kb_dev *d, sf_error *err) {
  memset(d, 0, sizeof *d);
  kb_declare(s, &d->lay);
  sf_rng rng;
  sf_rng_seed_stream(&rng, seed, 7);
  for (int i = 0; i < d->lay.nt; i++) {
    const kb_tensor *t = &d->lay.t[i];
    const size_t es = kb_elem_size(t->elem, s->dtype), by = (size_t)t->n * es;
    SF_TRY(ctx->gpu.ops->alloc(&ctx->gpu, by, &d->ptr[i], err));
    if (t->init == KB_UNIFORM) {
      const sf_dtype dt = t->elem == KB_ACT ? s->dtype : SF_F32;
      SF_TRY(fill_dev(ctx, d->ptr[i], dt, t->n, t->a, t->b, seed * 1000003u + (uint64_t)i, err));
    } else if (t->init != KB_NONE) {
      void *h = malloc(by ? by : 1);
      if (!h) return sf_fail(err, SF_ERR_NOMEM, "kbench: out of host memory");
      host_structured(s, t, &rng, h);
      sf_status rc = ctx->gpu.ops->upload(&ctx->gpu, d->ptr[i], h, by, err);
      if (rc == SF_OK) rc = ctx->gpu.ops->sync(&ctx->gpu, err);
      free(h);
      SF_TRY(rc);
    }
  }
  return ctx->gpu.ops->sync(&ctx->gpu, err);
}

typedef struct op_user {
  const sf_kbench_shape *s;
  kb_params p;
} op_user;
static sf_status op_fn(sf_kbench_ctx *ctx, void *u, sf_error *err) {
  op_user *o = u;
  return kb_call(ctx->gpu.ops, &ctx->gpu, o->s, &o->p, err);
}

/* ---- the check --------------------------------------------------------------- */

static double tol_of(kb_elem e, sf_dtype dt) {
  if (e != KB_ACT || dt == SF_F32) return 1e-3;
  return dt == SF_BF16 ? 4e-2 : 8e-3;
}

static void check_key(const sf_kbench_shape *c, char *buf, size_t cap) {
  char sh[128];
  sf_kbench_shape_str(c, sh, sizeof sh);
  snprintf(buf, cap, "%d/%d/%d/%s/%s", (int)c->op, c->impl, (int)c->dtype, sh, c->model);
}

/* Runs the reduced problem on both backends and compares every output. */
static sf_status run_check(sf_kbench_ctx *ctx, const sf_kbench_shape *s, uint64_t seed,
                           sf_kbench_check_entry *res, sf_error *err) {
  sf_kbench_shape c;
  sf_kbench_check_shape(s, &c);
  res->seqlen = c.seqlen, res->batch = c.batch;
  res->n_wrong = 0, res->max_rel_err = 0, res->ok = 0;
  kb_layout lay;
  kb_declare(&c, &lay);
  void *hp[KB_MAX_T] = {0}, *dp[KB_MAX_T] = {0}, *cp[KB_MAX_T] = {0};
  sf_rng rng;
  sf_rng_seed_stream(&rng, seed, 0xC0FFEE);
  sf_status rc = SF_OK;
  void *tmp = NULL;
  float *got = NULL;
  for (int i = 0; i < lay.nt && rc == SF_OK; i++) {
    const kb_tensor *t = &lay.t[i];
    const int meta = t->elem == KB_I32 || t->elem == KB_I64;
    const size_t hes = meta ? kb_elem_size(t->elem, SF_F32) : 4;
    hp[i] = malloc((size_t)t->n * hes + 8);
    if (!hp[i]) {
      rc = sf_fail(err, SF_ERR_NOMEM, "kbench check: out of host memory");
      break;
    }
    float *hf = hp[i];
    if (t->init == KB_UNIFORM) {
      for (int64_t k = 0; k < t->n; k++) hf[k] = t->a + (t->b - t->a) * sf_rng_uniform(&rng);
      if (t->elem == KB_ACT && c.dtype != SF_F32) { /* the values the 16-bit device op sees */
        for (int64_t k = 0; k < t->n; k++)
          hf[k] = c.dtype == SF_BF16 ? sf_bf16_to_f32(sf_f32_to_bf16(hf[k])) : sf_f16_to_f32(sf_f32_to_f16(hf[k]));
      }
    } else if (t->init == KB_NONE) {
      for (int64_t k = 0; k < t->n; k++) hf[k] = NAN;
    } else {
      host_structured(&c, t, &rng, hp[i]);
    }
    /* the cpu's own copy (it writes outputs and states in place) */
    cp[i] = malloc((size_t)t->n * hes + 8);
    if (!cp[i]) {
      rc = sf_fail(err, SF_ERR_NOMEM, "kbench check: out of host memory");
      break;
    }
    memcpy(cp[i], hp[i], (size_t)t->n * hes);
    /* the device copy, converted to the dtype; outputs poisoned (0xFF: NaN) */
    const size_t des = kb_elem_size(t->elem, c.dtype), dby = (size_t)t->n * des;
    rc = ctx->gpu.ops->alloc(&ctx->gpu, dby, &dp[i], err);
    if (rc != SF_OK) break;
    free(tmp);
    tmp = malloc(dby + 8);
    if (!tmp) {
      rc = sf_fail(err, SF_ERR_NOMEM, "kbench check: out of host memory");
      break;
    }
    if (t->init == KB_NONE) memset(tmp, 0xFF, dby);
    else if (meta) memcpy(tmp, hp[i], dby);
    else sf_convert(tmp, t->elem == KB_ACT ? c.dtype : SF_F32, hf, SF_F32, t->n);
    rc = ctx->gpu.ops->upload(&ctx->gpu, dp[i], tmp, dby, err);
    if (rc == SF_OK) rc = ctx->gpu.ops->sync(&ctx->gpu, err);
  }
  kb_params pc, pg;
  sf_status rc_cpu = SF_OK;
  if (rc == SF_OK) {
    kb_bind(&c, SF_F32, cp, &pc);
    kb_bind(&c, c.dtype, dp, &pg);
    sf_error ce;
    sf_error_clear(&ce);
    rc_cpu = kb_call(ctx->cpu.ops, &ctx->cpu, &c, &pc, &ce);
    rc = kb_call(ctx->gpu.ops, &ctx->gpu, &c, &pg, err);
    if (rc == SF_OK) rc = ctx->gpu.ops->sync(&ctx->gpu, err);
    if (rc != SF_OK) sf_fail_context(err, "check (%lld tokens)", (long long)c.seqlen);
  }
  if (rc == SF_OK && rc_cpu == SF_OK) {
    res->ok = 1;
    for (int i = 0; i < lay.nt && rc == SF_OK; i++) {
      const kb_tensor *t = &lay.t[i];
      if (t->role != KB_OUT && t->role != KB_INOUT) continue;
      const sf_dtype ddt = t->elem == KB_ACT ? c.dtype : SF_F32;
      const size_t dby = (size_t)t->n * sf_dtype_size(ddt);
      free(tmp);
      free(got);
      tmp = malloc(dby + 8);
      got = malloc((size_t)t->n * sizeof(float) + 8);
      if (!tmp || !got) {
        rc = sf_fail(err, SF_ERR_NOMEM, "kbench check: out of host memory");
        break;
      }
      rc = ctx->gpu.ops->download(&ctx->gpu, tmp, dp[i], dby, err);
      if (rc != SF_OK) break;
      sf_convert(got, SF_F32, tmp, ddt, t->n);
      const float *ref = cp[i];
      double ss = 0;
      int64_t nref = 0;
      for (int64_t k = 0; k < t->n; k++)
        if (!isnan(ref[k])) ss += (double)ref[k] * ref[k], nref++;
      const double rms = nref ? sqrt(ss / (double)nref) : 0.0, tol = tol_of(t->elem, c.dtype);
      for (int64_t k = 0; k < t->n; k++) {
        const double e = ref[k], g = got[k];
        if (isnan(e)) { /* the cpu left it: so must the device */
          if (!isnan(g)) res->n_wrong++;
          continue;
        }
        if (!isfinite(g)) {
          res->n_wrong++;
          res->max_rel_err = INFINITY;
          continue;
        }
        const double den = fabs(e) + rms, rel = den > 0 ? fabs(g - e) / den : fabs(g - e);
        if (rel > tol) res->n_wrong++;
        if (rel > res->max_rel_err) res->max_rel_err = rel;
      }
    }
  }
  for (int i = 0; i < lay.nt; i++) {
    free(hp[i]);
    free(cp[i]);
    if (dp[i]) ctx->gpu.ops->free(&ctx->gpu, dp[i]);
  }
  free(tmp);
  free(got);
  return rc;
}

static sf_status check_cached(sf_kbench_ctx *ctx, const sf_kbench_shape *s, uint64_t seed,
                              const sf_kbench_check_entry **out, sf_error *err) {
  sf_kbench_shape c;
  sf_kbench_check_shape(s, &c);
  char key[192];
  check_key(&c, key, sizeof key);
  for (int i = 0; i < ctx->n_checks; i++)
    if (!strcmp(ctx->checks[i].key, key)) {
      *out = &ctx->checks[i];
      return SF_OK;
    }
  sf_kbench_check_entry e;
  memset(&e, 0, sizeof e);
  snprintf(e.key, sizeof e.key, "%s", key);
  SF_TRY(run_check(ctx, s, seed, &e, err));
  if (ctx->n_checks == ctx->cap_checks) {
    int cap = ctx->cap_checks ? 2 * ctx->cap_checks : 16;
    sf_kbench_check_entry *p = realloc(ctx->checks, (size_t)cap * sizeof *p);
    if (!p) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
    ctx->checks = p, ctx->cap_checks = cap;
  }
  ctx->checks[ctx->n_checks] = e;
  *out = &ctx->checks[ctx->n_checks++];
  return SF_OK;
}

/* ---- one shape ------------------------------------------------------------------ */

/* After a failure: is the context still usable (no sticky device error)? */
static sf_status context_alive(sf_kbench_ctx *ctx, sf_error *err) {
  (void)cudaGetLastError();
  cudaError_t e = cudaStreamSynchronize(stream_of(ctx));
  if (e == cudaSuccess) return SF_OK;
  (void)cudaGetLastError();
  return sf_fail(err, SF_ERR_DEVICE, "kbench: the device context is lost: %s", cudaGetErrorString(e));
}

static void set_status(sf_kbench_info *info, sf_status rc, const sf_error *e) {
  info->status = rc == SF_ERR_NOMEM ? SF_STATUS_OOM : SF_STATUS_ERROR;
  snprintf(info->message, sizeof info->message, "%.*s", (int)sizeof info->message - 1, e->msg);
}

static void release_workspace(sf_kbench_ctx *ctx) {
  if (ctx->gpu.workspace && ctx->gpu.workspace_bytes > ((size_t)256 << 20)) {
    (void)cudaStreamSynchronize(stream_of(ctx));
    ctx->gpu.ops->free(&ctx->gpu, ctx->gpu.workspace);
    ctx->gpu.workspace = NULL;
    ctx->gpu.workspace_bytes = 0;
  }
}

sf_status sf_kbench_run(sf_kbench_ctx *ctx, const sf_kbench_shape *s, const sf_kbench_opts *opts_in,
                        sf_kernel_result *row, sf_kbench_info *info, sf_error *err) {
  sf_kbench_row_init(s, row);
  info_init(info);
  info->t_start = unix_now();
  if (!ctx->have_gpu) return sf_fail(err, SF_ERR_ARG, "kbench: context not initialised");
  sf_kbench_opts opts;
  if (opts_in) opts = *opts_in;
  else sf_kbench_opts_default(&opts);
  const sf_kbench_ceilings *cl = NULL;
  SF_TRY(sf_kbench_ceilings_get(ctx, &cl, err));
  const sf_kbench_opinfo *oi = sf_kbench_op_info(s->op);
  const sf_kbench_counts k = sf_kbench_counts_of(s);

  /* roofline of the shape */
  const double t_tc = oi->roof == SF_KB_ROOF_TC ? k.flops / (cl->gemm_tflops * 1e12) : 0.0;
  const double t_bw = k.bytes / (cl->copy_gbps * 1e9), t_ex = k.exps / cl->exp_per_s;
  info->t_roof_s = fmax(t_tc, fmax(t_bw, t_ex));
  info->bound = (t_tc >= t_bw && t_tc >= t_ex) ? "tc" : (t_ex > t_bw ? "sfu" : "mem");

  sf_error e;
  sf_error_clear(&e);
  sf_status rc;
  if (opts.check) {
    const sf_kbench_check_entry *ce = NULL;
    rc = check_cached(ctx, s, opts.seed, &ce, &e);
    if (rc != SF_OK) {
      set_status(info, rc, &e);
      release_workspace(ctx);
      info->t_end = unix_now();
      return context_alive(ctx, err);
    }
    info->check_seqlen = ce->seqlen;
    info->check_batch = ce->batch;
    if (ce->ok) {
      info->checked = 1;
      row->n_wrong = ce->n_wrong;
      row->max_rel_err = ce->max_rel_err;
    }
  }

  kb_dev d;
  op_user u;
  memset(&u, 0, sizeof u);
  u.s = s;
  double *times = malloc((size_t)(opts.repeats > 3 ? opts.repeats : 3) * sizeof *times);
  if (!times) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  rc = dev_setup(ctx, s, opts.seed, &d, &e);
  if (rc == SF_ERR_NOMEM) {
    size_t fr = 0, tot = 0;
    (void)cudaMemGetInfo(&fr, &tot);
    const double need = kb_layout_bytes(&d.lay, s->dtype);
    sf_fail(&e, SF_ERR_NOMEM, "out of memory: inputs and outputs need %.2f GiB, %.2f GiB of %.2f GiB free", need / 1073741824.0,
            (double)fr / 1073741824.0, (double)tot / 1073741824.0);
  }
  if (rc == SF_OK) {
    kb_bind(s, s->dtype, d.ptr, &u.p);
    int nr = 0, nw = 0;
    rc = time_loop(ctx, op_fn, &u, opts.repeats, opts.warmup, opts.row_budget_s, opts.flush_l2, times, &nr, &nw, &e);
    if (rc == SF_OK) rc = ctx->gpu.ops->sync(&ctx->gpu, &e);
    if (rc == SF_OK) {
      info->repeats = nr, info->warmup = nw;
      row->median_s = kb_quantile(times, nr, 0.5);
      row->p10_s = kb_quantile(times, nr, 0.1);
      row->p90_s = kb_quantile(times, nr, 0.9);
      const double t = row->median_s;
      row->tflops = k.flops / t / 1e12;
      row->gbps = k.bytes / t / 1e9;
      row->pct_bw_roof = 100.0 * row->gbps / cl->copy_gbps;
      if (oi->roof == SF_KB_ROOF_TC) row->pct_flops_roof = 100.0 * row->tflops / cl->gemm_tflops;
      else if (oi->roof == SF_KB_ROOF_SFU) row->pct_flops_roof = 100.0 * (k.exps / t) / cl->exp_per_s;
      else row->pct_flops_roof = NAN;
      info->pct_roof = 100.0 * info->t_roof_s / t;
    }
  }
  free(times);
  dev_free(ctx, &d);
  if (rc != SF_OK) set_status(info, rc, &e);
  release_workspace(ctx);
  info->t_end = unix_now();
  if (rc != SF_OK) return context_alive(ctx, err);
  return SF_OK;
}

#endif /* SCANFLASH_HAVE_CUDA */

/* ---- kernels items ---------------------------------------------------------------- */

sf_status sf_kbench_run_item_cfg(sf_kbench_ctx *ctx, const sf_work_item *item, const sf_model_config *cfg,
                                 sf_kernel_result *rows, int max_rows, int *n, sf_kbench_info *info_out,
                                 sf_error *err) {
  *n = 0;
  if (!item || !cfg || !rows || max_rows < 1) return sf_fail(err, SF_ERR_ARG, "kbench: bad arguments");
  sf_kbench_op op;
  unsigned mask;
  if (!sf_kbench_find_table_op(item->op, &op, &mask)) SF_TRY(sf_kbench_find_op(item->op, &op, &mask, err));
  sf_dtype dt;
  SF_TRY(sf_kbench_parse_dtype(item->dtype, &dt, err));
  sf_kbench_opts opts;
  sf_kbench_opts_default(&opts);
  if (item->repeats > 0) opts.repeats = item->repeats;
  if (item->warmup > 0) opts.warmup = item->warmup;
  opts.seed = item->seed;
  opts.row_budget_s = item->timeout_s > 0 ? 0.5 * item->timeout_s : 0.0; /* the spec's repeats, exactly */
  sf_status worst = SF_OK;
  for (int impl = 0; impl < SF_KB_MAX_IMPLS && *n < max_rows; impl++) {
    if (!(mask & (1u << impl))) continue;
    sf_kbench_shape s;
    SF_TRY(sf_kbench_shape_from_model(op, impl, cfg, dt, item->context, item->batch, &s, err));
    sf_kbench_info info;
    sf_kernel_result *row = &rows[*n];
    sf_status rc = sf_kbench_run(ctx, &s, &opts, row, &info, err);
    snprintf(row->key, sizeof row->key, "%s", item->key);
    (*n)++;
    if (info_out) *info_out = info;
    if (rc != SF_OK) return rc; /* the context itself failed */
    if (info.status != SF_STATUS_OK && worst == SF_OK) {
      worst = info.status == SF_STATUS_OOM ? SF_ERR_NOMEM : SF_ERR_DEVICE;
      sf_fail(err, worst, "%s (%s): %s", row->op, row->impl, info.message);
    }
  }
  return worst;
}

sf_status sf_kbench_run_item(sf_kbench_ctx *ctx, const sf_work_item *item, sf_kernel_result *rows, int max_rows,
                             int *n, sf_error *err) {
  *n = 0;
  if (!item) return sf_fail(err, SF_ERR_ARG, "kbench: no item");
  sf_model_config cfg;
  sf_error e;
  sf_error_clear(&e);
  if (sf_model_preset(item->model, &cfg, &e) != SF_OK)
    return sf_fail(err, SF_ERR_ARG,
                   "kernels item %s: model '%s' is not a preset (its shape must come from the spec: "
                   "sf_kbench_run_item_cfg)",
                   item->key, item->model);
  return sf_kbench_run_item_cfg(ctx, item, &cfg, rows, max_rows, n, NULL, err);
}
