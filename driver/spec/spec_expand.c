/* Expansion: spec -> work items in canonical order, with stable keys,
 * memory estimates (sf_model_estimate_memory), a roofline cost model and
 * OOM predictions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scanflash/files.h"
#include "spec/spec_internal.h"

/* Naive baselines run sequentially (scan) or materialise the scores
 * (attention): scheduling treats the scans as this many times slower than
 * their roofline. */
#define SF_NAIVE_SLOWDOWN 20.0

static double ceil_div(double a, double b) { return ceil(a / b); }

static int64_t clamp_i64(double v) {
  if (!(v >= 0)) return 0;
  if (v >= 9.2e18) return INT64_MAX;
  return (int64_t)v;
}

/* ---- parameters ------------------------------------------------------------ */

typedef struct shape_costs {
  double matmul_params;  /* per layer, weights in GEMMs */
  double layer_params;   /* per layer, every weight */
  double total_params;   /* all layers, embedding, lm head, final norm */
} shape_costs;

static shape_costs costs_of(const sf_model_config *c) {
  shape_costs s = {0, 0, 0};
  const double d = c->d_model, V = c->vocab_size;
  switch (c->arch) {
    case SF_ARCH_MAMBA1: {
      const double di = c->d_inner, N = c->d_state, r = c->dt_rank, dc = c->d_conv;
      s.matmul_params = 2 * di * d + (r + 2 * N) * di + di * r + d * di;
      s.layer_params = s.matmul_params + di * dc + di + di + di * N + di + d;
      break;
    }
    case SF_ARCH_MAMBA2: {
      const double di = c->d_inner, N = c->d_state, G = c->n_groups, H = c->ssm_heads, dc = c->d_conv;
      s.matmul_params = (2 * di + 2 * G * N + H) * d + d * di;
      s.layer_params = s.matmul_params + (di + 2 * G * N) * (dc + 1) + 3 * H + di + d;
      break;
    }
    case SF_ARCH_TRANSFORMER: {
      const double h = c->n_heads, kv = c->n_kv_heads, hd = c->head_dim, ff = c->d_ff;
      s.matmul_params = (h + 2 * kv) * hd * d + d * h * hd + 2 * d * ff;
      s.layer_params = s.matmul_params + (h + 2 * kv) * hd + d + ff + d + 4 * d;
      break;
    }
  }
  s.total_params = s.layer_params * c->n_layers + V * d * (c->tie_embeddings ? 1 : 2) + 2 * d;
  return s;
}

/* ---- generate / prefill ------------------------------------------------------ */

typedef struct run_estimate {
  double flops, bytes, seconds;
} run_estimate;

static void add_phase(run_estimate *r, double flops, double bytes, double overhead_s) {
  r->flops += flops;
  r->bytes += bytes;
  r->seconds += fmax(flops / SF_REF_FLOPS, bytes / SF_REF_BYTES_S) + overhead_s;
}

static run_estimate model_run(const sf_model_config *c, double es, double b, double L, double G,
                              double chunk) {
  run_estimate r = {0, 0, 0};
  const shape_costs sc = costs_of(c);
  const double layers = c->n_layers, d = c->d_model, V = c->vocab_size;
  const double weight_bytes = sc.total_params * es;
  const double n_chunks = chunk > 0 ? ceil_div(L, chunk) : 1;

  /* prefill: b sequences of L tokens; logits for the last token only */
  double pf = 2 * sc.matmul_params * layers * b * L + 2 * V * d * b;
  double pb = n_chunks * weight_bytes + 12 * b * L * d * layers * es;
  switch (c->arch) {
    case SF_ARCH_TRANSFORMER: {
      const double h = c->n_heads, kv = c->n_kv_heads, hd = c->head_dim;
      pf += layers * 4 * b * L * L * h * hd / 2;                 /* causal attention */
      pb += layers * 2 * b * kv * hd * es * L * ceil_div(L, 128); /* K, V per query block */
      break;
    }
    case SF_ARCH_MAMBA1: {
      const double di = c->d_inner, N = c->d_state;
      pf += layers * (9 * b * L * di * N + 2 * b * L * di * c->d_conv);
      break;
    }
    case SF_ARCH_MAMBA2: {
      const double H = c->ssm_heads, P = c->ssm_head_dim, N = c->d_state, Gr = c->n_groups;
      const double Q = fmin((double)c->chunk_size, L);
      pf += layers * (b * L * Q * (Gr * N + H * P) + 4 * b * L * H * P * N +
                      2 * b * L * (c->d_inner + 2 * Gr * N) * c->d_conv);
      pb += layers * b * ceil_div(L, Q > 0 ? Q : 1) * H * P * N * 4 * 2; /* chunk states */
      break;
    }
  }
  add_phase(&r, pf, pb, n_chunks * layers * SF_REF_STEP_S);
  if (G <= 0) return r;

  /* decode: G steps at positions L .. L+G-1 */
  const double sum_pos = G * L + G * (G - 1) / 2;
  double df = G * (2 * sc.matmul_params * layers * b + 2 * V * d * b);
  double db = G * weight_bytes;
  switch (c->arch) {
    case SF_ARCH_TRANSFORMER: {
      const double h = c->n_heads, kv = c->n_kv_heads, hd = c->head_dim;
      df += layers * 4 * b * h * hd * sum_pos;
      db += layers * 2 * b * kv * hd * es * sum_pos; /* the KV cache read every step */
      break;
    }
    case SF_ARCH_MAMBA1: {
      const double di = c->d_inner, N = c->d_state;
      df += G * layers * b * di * (6 * N + 2 * c->d_conv);
      db += G * layers * b * (di * N * 4 * 2 + di * c->d_conv * es * 2); /* state read + write */
      break;
    }
    case SF_ARCH_MAMBA2: {
      const double H = c->ssm_heads, P = c->ssm_head_dim, N = c->d_state;
      const double conv_ch = c->d_inner + 2.0 * c->n_groups * N;
      df += G * layers * b * (6 * H * P * N + 2 * conv_ch * c->d_conv);
      db += G * layers * b * (H * P * N * 4 * 2 + conv_ch * c->d_conv * es * 2);
      break;
    }
  }
  add_phase(&r, df, db, G * layers * SF_REF_STEP_S);
  return r;
}

/* ---- kernels ------------------------------------------------------------------- */

static run_estimate kernel_run(sf_kernel_op op, const sf_model_config *c, double es, double b, double L,
                               int64_t *mem_bytes) {
  run_estimate r = {0, 0, 0};
  double flops = 0, io = 0, extra_mem = 0, extra_io = 0, slow = 1; /* io: inputs + outputs */
  switch (op) {
    case SF_KOP_SELECTIVE_SCAN:
    case SF_KOP_SELECTIVE_SCAN_NAIVE: {
      const double D = c->d_inner, N = c->d_state;
      flops = 9 * b * L * D * N;
      io = es * b * L * (4 * D + 2 * N) + 4 * D * N;
      extra_mem = b * D * N * 4; /* final state */
      if (op == SF_KOP_SELECTIVE_SCAN_NAIVE) slow = SF_NAIVE_SLOWDOWN;
      break;
    }
    case SF_KOP_SSD:
    case SF_KOP_SSD_NAIVE: {
      const double H = c->ssm_heads, P = c->ssm_head_dim, N = c->d_state, Gr = c->n_groups;
      const double Q = fmin((double)c->chunk_size, L);
      io = es * b * L * (2 * H * P + H + 2 * Gr * N);
      if (op == SF_KOP_SSD) {
        flops = b * L * Q * (Gr * N + H * P) + 4 * b * L * H * P * N;
        extra_mem = b * ceil_div(L, Q > 0 ? Q : 1) * H * P * N * 4;
        extra_io = 2 * extra_mem;
      } else {
        flops = 6 * b * L * H * P * N;
        extra_mem = b * H * P * N * 4;
        slow = SF_NAIVE_SLOWDOWN;
      }
      break;
    }
    case SF_KOP_CONV1D: {
      const double C = c->arch == SF_ARCH_MAMBA2 ? c->d_inner + 2.0 * c->n_groups * c->d_state : c->d_inner;
      flops = 2 * b * L * C * c->d_conv;
      io = es * 2 * b * L * C;
      break;
    }
    case SF_KOP_ATTENTION:
    case SF_KOP_ATTENTION_NAIVE: {
      const double h = c->n_heads, kv = c->n_kv_heads, hd = c->head_dim;
      flops = 4 * b * L * L * h * hd / 2;
      io = es * b * L * hd * (2 * h + 2 * kv) + b * h * L * 4;
      if (op == SF_KOP_ATTENTION_NAIVE) { /* the full score matrix, fp32 */
        extra_mem = b * h * L * L * 4;
        flops = 4 * b * L * L * h * hd + 5 * b * h * L * L;
        extra_io = 3 * extra_mem; /* write, softmax in place, read */
      } else {
        extra_io = 2 * b * kv * hd * es * L * ceil_div(L, 128); /* K, V per query block */
      }
      break;
    }
    case SF_KOP_ATTENTION_DECODE: {
      const double h = c->n_heads, kv = c->n_kv_heads, hd = c->head_dim;
      flops = 4 * b * h * hd * L;
      io = es * (2 * b * kv * hd * L + 2 * b * h * hd);
      break;
    }
    case SF_KOP_COUNT: break;
  }
  add_phase(&r, flops, io + extra_io, SF_REF_STEP_S);
  r.seconds *= slow;
  *mem_bytes = clamp_i64(io + extra_mem);
  return r;
}

/* ---- items ------------------------------------------------------------------------ */

static int32_t gpus_for(const sf_spec *s, sf_arch arch, int64_t context) {
  for (int i = 0; i < s->n_gpu_rules; i++) {
    const sf_gpu_rule *r = &s->gpu_rules[i];
    if ((r->arch < 0 || r->arch == (int)arch) && context >= r->min_context) return r->gpus;
  }
  return s->gpus_default;
}

static int has_kind(const sf_spec *s, int kind) {
  for (int i = 0; i < s->n_kinds; i++)
    if (s->kinds[i] == kind) return 1;
  return 0;
}

void sf_plan_item_problems(const sf_spec *s, const sf_plan_item *it, int32_t *out) {
  for (int32_t g = 0; g < it->item.batch; g++)
    out[g] = it->item.first_problem < 0 || s->n_problems == 0
                 ? -1
                 : s->problems[((int64_t)it->item.first_problem + g) % s->n_problems];
}

char *sf_plan_item_canonical(const sf_spec *s, const sf_plan_item *it) {
  const sf_work_item *w = &it->item;
  const sf_spec_model *m = &s->models[it->item.model_index];
  char shape[1024];
  sf_spec_shape_string(&m->cfg, shape, sizeof shape);
  sf_strbuf b = {0};
  sf_sb_printf(&b, "scanflash-item-v1\nkind=%s\narch=%s\nmodel=%s\nweights=%s\nshape=%s\ndtype=%s\n",
               sf_item_kind_name((sf_item_kind)w->kind), w->arch, w->model, m->checkpoint ? "checkpoint" : "random",
               shape, w->dtype);
  sf_sb_printf(&b, "context=%lld\nbatch=%d\n", (long long)w->context, w->batch);
  if (w->gen == SF_GEN_CANONICAL) sf_sb_printf(&b, "gen=canonical\n");
  else sf_sb_printf(&b, "gen=%d\n", w->gen);
  if (w->first_problem < 0) {
    sf_sb_printf(&b, "problems=-\n");
  } else {
    sf_sb_printf(&b, "problems=");
    for (int32_t g = 0; g < w->batch; g++)
      sf_sb_printf(&b, "%s%d", g ? "," : "", s->problems[((int64_t)w->first_problem + g) % s->n_problems]);
    sf_sb_printf(&b, "\n");
  }
  sf_sb_printf(&b, "op=%s\nrepeats=%d\nwarmup=%d\nseed=%llu\ngpus=%d\nprefill_chunk=%lld\n",
               it->kernel_op >= 0 ? sf_kernel_op_name((sf_kernel_op)it->kernel_op) : "-", w->repeats, w->warmup,
               (unsigned long long)w->seed, w->gpus, (long long)s->prefill_chunk);
  return sf_sb_take(&b);
}

void sf_spec_key_of(const char *canonical, char key[SF_KEY_LEN]) {
  char hex[65];
  sf_sha256_hex(canonical, strlen(canonical), hex);
  memcpy(key, hex, SF_KEY_LEN - 1);
  key[SF_KEY_LEN - 1] = '\0';
}

static int64_t count_items(const sf_spec *s) {
  int64_t n = 0;
  for (int a = 0; a < 3; a++)
    for (int32_t m = 0; m < s->n_models; m++) {
      if ((int)s->models[m].cfg.arch != a) continue;
      int64_t ops = 0;
      for (int k = 0; k < s->n_kernel_ops; k++) ops += sf_kernel_op_applies((sf_kernel_op)s->kernel_ops[k], (sf_arch)a);
      for (int32_t bi = 0; bi < s->n_batches; bi++) {
        int64_t groups = (s->n_problems + s->batches[bi] - 1) / s->batches[bi];
        int64_t per = 0;
        if (has_kind(s, SF_ITEM_GENERATE)) per += (int64_t)s->n_gens * groups;
        if (has_kind(s, SF_ITEM_PREFILL)) per += groups;
        if (has_kind(s, SF_ITEM_KERNELS)) per += ops;
        n += per * s->n_contexts;
        if (n > SF_SPEC_MAX_ITEMS) return n;
      }
    }
  return n;
}

static void fill_estimates(const sf_spec *s, const sf_spec_model *m, sf_plan_item *it) {
  sf_work_item *w = &it->item;
  const double es = (double)sf_dtype_size(s->dtype);
  const double reps = (double)(s->repeats + s->warmup);
  run_estimate r;
  memset(&it->mem, 0, sizeof it->mem);
  if (w->kind == SF_ITEM_KERNELS) {
    int64_t mem;
    r = kernel_run((sf_kernel_op)it->kernel_op, &m->cfg, es, w->batch, (double)w->context, &mem);
    it->mem.workspace = mem;
    it->mem.total = mem;
  } else {
    const int64_t L = w->context ? w->context : SF_SPEC_NATURAL_TOKENS;
    const int64_t G = w->kind == SF_ITEM_PREFILL ? 0 : w->gen == SF_GEN_CANONICAL ? SF_SPEC_CANONICAL_TOKENS : w->gen;
    const int64_t chunk = s->prefill_chunk > 0 && s->prefill_chunk < L ? s->prefill_chunk : L;
    sf_memory_estimate e;
    sf_model_estimate_memory(&m->cfg, s->dtype, w->batch, L, G, chunk, &e);
    const int64_t k = w->gpus > 0 ? w->gpus : 1;
    it->mem.weights = e.weights;
    it->mem.cache = (e.cache + k - 1) / k;
    it->mem.activations = (e.activations + k - 1) / k;
    it->mem.workspace = (e.workspace + k - 1) / k +
                        sf_model_estimate_cp_prefill(&m->cfg, s->dtype, w->batch, L, (int)k);
    it->mem.total = it->mem.weights + it->mem.cache + it->mem.activations + it->mem.workspace;
    r = model_run(&m->cfg, es, w->batch, (double)L, (double)G, (double)chunk);
  }
  it->est_flops = r.flops;
  it->est_bytes_moved = r.bytes;
  w->est_cost = r.seconds * reps;
  w->est_bytes = it->mem.total;
  w->oom_predicted = w->est_bytes > s->device_mem;
}

static sf_status add_item(const sf_spec *s, sf_plan *p, int32_t mi, int kind, int64_t ctx, int32_t batch,
                          int32_t gen, int32_t first, int kop, sf_error *err) {
  const sf_spec_model *m = &s->models[mi];
  sf_plan_item *it = &p->items[p->n_items];
  memset(it, 0, sizeof *it);
  sf_work_item *w = &it->item;
  w->index = p->n_items;
  w->kind = kind;
  snprintf(w->arch, sizeof w->arch, "%s", sf_arch_name(m->cfg.arch));
  snprintf(w->model, sizeof w->model, "%s", m->name);
  snprintf(w->dtype, sizeof w->dtype, "%s", sf_dtype_name(s->dtype));
  w->context = ctx;
  w->batch = batch;
  w->gen = gen;
  w->first_problem = first;
  w->repeats = s->repeats;
  w->warmup = s->warmup;
  w->gpus = kind == SF_ITEM_KERNELS ? 1 : gpus_for(s, m->cfg.arch, ctx);
  w->seed = s->seed;
  w->timeout_s = s->item_timeout_s;
  w->model_index = mi;
  w->prefill_chunk = s->prefill_chunk;
  it->kernel_op = kop;
  if (kop >= 0) snprintf(w->op, sizeof w->op, "%s", sf_kernel_op_name((sf_kernel_op)kop));
  char *canon = sf_plan_item_canonical(s, it);
  if (!canon) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  sf_spec_key_of(canon, w->key);
  free(canon);
  fill_estimates(s, m, it);
  p->n_items++;
  return SF_OK;
}

sf_status sf_spec_expand(const sf_spec *s, sf_plan *p, sf_error *err) {
  memset(p, 0, sizeof *p);
  if (s->n_problems <= 0 || s->n_models <= 0)
    return sf_fail(err, SF_ERR_INTERNAL, "spec '%s' was not finished (no models or problems)", s->name);
  int64_t n = count_items(s);
  if (n > SF_SPEC_MAX_ITEMS)
    return sf_fail(err, SF_ERR_ARG, "spec '%s' expands to more than %d items; narrow the sweep", s->name,
                   (int)SF_SPEC_MAX_ITEMS);
  p->items = calloc(n ? (size_t)n : 1, sizeof *p->items);
  if (!p->items) return sf_fail(err, SF_ERR_NOMEM, "out of memory for %lld items", (long long)n);
  sf_status rc = SF_OK;
  for (int a = 0; a < 3 && rc == SF_OK; a++)
    for (int32_t mi = 0; mi < s->n_models && rc == SF_OK; mi++) {
      if ((int)s->models[mi].cfg.arch != a) continue;
      for (int32_t ci = 0; ci < s->n_contexts && rc == SF_OK; ci++)
        for (int32_t bi = 0; bi < s->n_batches && rc == SF_OK; bi++) {
          const int64_t ctx = s->contexts[ci];
          const int32_t b = s->batches[bi];
          const int32_t groups = (int32_t)((s->n_problems + b - 1) / b);
          if (has_kind(s, SF_ITEM_GENERATE))
            for (int32_t gi = 0; gi < s->n_gens && rc == SF_OK; gi++)
              for (int32_t g = 0; g < groups && rc == SF_OK; g++)
                rc = add_item(s, p, mi, SF_ITEM_GENERATE, ctx, b, s->gens[gi], g * b, -1, err);
          if (has_kind(s, SF_ITEM_PREFILL))
            for (int32_t g = 0; g < groups && rc == SF_OK; g++)
              rc = add_item(s, p, mi, SF_ITEM_PREFILL, ctx, b, 0, g * b, -1, err);
          if (has_kind(s, SF_ITEM_KERNELS))
            for (int k = 0; k < s->n_kernel_ops && rc == SF_OK; k++)
              if (sf_kernel_op_applies((sf_kernel_op)s->kernel_ops[k], (sf_arch)a))
                rc = add_item(s, p, mi, SF_ITEM_KERNELS, ctx, b, 0, -1, s->kernel_ops[k], err);
        }
    }
  if (rc != SF_OK) {
    sf_plan_free(p);
    return rc;
  }
  for (int32_t i = 0; i < p->n_items; i++) {
    p->total_cost_all += p->items[i].item.est_cost;
    if (p->items[i].item.oom_predicted) p->n_oom_predicted++;
    else p->total_cost += p->items[i].item.est_cost;
  }
  return SF_OK;
}

static int by_cost(const void *a, const void *b) {
  const sf_plan_item *x = a, *y = b;
  if (x->item.est_cost > y->item.est_cost) return -1;
  if (x->item.est_cost < y->item.est_cost) return 1;
  return (x->item.index > y->item.index) - (x->item.index < y->item.index);
}

void sf_plan_sort_by_cost(sf_plan *p) {
  if (p->n_items > 1) qsort(p->items, (size_t)p->n_items, sizeof *p->items, by_cost);
}

void sf_plan_free(sf_plan *p) {
  if (!p) return;
  free(p->items);
  memset(p, 0, sizeof *p);
}
