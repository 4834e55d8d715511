/* Random init: deterministic for a seed, different across seeds, finite,
 * distributed as the originals initialise (std of N(0, 0.02) tensors within
 * 5%, uniform bounds, A, D and dt bias values), one stream per tensor, views
 * wired to the right tensors, and the bf16 path (converted on the host). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/layout.h"
#include "model/model.h"
#include "ops/convert.h"
#include "ops/op_table.h"
#include "test.h"

static sf_op_ctx cpu;

/* A tensor's values as f32 on the host (malloc'd). */
static float *values(const sf_model *m, const sf_tensor *t) {
  int64_t n = sf_tensor_numel(t);
  size_t bytes = (size_t)n * sf_dtype_size(t->dtype);
  void *raw = malloc(bytes);
  float *f = malloc((size_t)n * sizeof *f);
  REQUIRE(raw && f);
  sf_error err;
  REQUIRE(m->ctx->ops->download(m->ctx, raw, t->data, bytes, &err) == SF_OK);
  sf_convert(f, SF_F32, raw, t->dtype, n);
  free(raw);
  return f;
}

static const sf_tensor *tensor(const sf_model *m, const char *name) {
  for (int32_t i = 0; i < m->n_tensors; i++)
    if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
  CHECK_MSG(0, "no tensor %s", name);
  return NULL;
}

static void init(const char *preset, uint64_t seed, sf_op_ctx *ctx, sf_model *m) {
  sf_model_config c;
  sf_error err;
  REQUIRE(sf_model_preset(preset, &c, &err) == SF_OK);
  sf_status rc = sf_model_init_random(&c, ctx, seed, m, &err);
  CHECK_MSG(rc == SF_OK, "%s: %s", preset, err.msg);
  REQUIRE(rc == SF_OK);
}

typedef struct stats {
  double mean, std, min, max;
  int finite;
} stats;

static stats stats_of(const sf_model *m, const sf_tensor *t) {
  stats s = {0, 0, INFINITY, -INFINITY, 1};
  float *v = values(m, t);
  int64_t n = sf_tensor_numel(t);
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(v[i])) s.finite = 0;
    sum += v[i];
    sq += (double)v[i] * v[i];
    if (v[i] < s.min) s.min = v[i];
    if (v[i] > s.max) s.max = v[i];
  }
  s.mean = sum / (double)n;
  s.std = sqrt(fmax(sq / (double)n - s.mean * s.mean, 0));
  free(v);
  return s;
}

/* Statistical checks allow 5% or six standard errors of the estimate,
 * whichever is larger, so small tensors (a 128-channel conv bias) do not
 * fail by chance: a false failure is a ~1e-9 event. */
static double tol(double rel_se_unit, int64_t n) { return fmax(0.05, 6.0 * rel_se_unit / sqrt((double)n)); }

static void check_normal(const sf_model *m, const char *name, double std) {
  const sf_tensor *t = tensor(m, name);
  if (!t) return;
  int64_t n = sf_tensor_numel(t);
  stats s = stats_of(m, t);
  /* std of a normal sample: relative standard error 1 / sqrt(2n) */
  CHECK_MSG(fabs(s.std - std) < tol(sqrt(0.5), n) * std, "%s: std %g, want %g", name, s.std, std);
  CHECK_MSG(fabs(s.mean) < tol(1.0, n) * std, "%s: mean %g", name, s.mean);
}

/* U(-b, b): within the bound, its extremes near the bound, std b / sqrt(3). */
static void check_uniform(const sf_model *m, const char *name, double b) {
  const sf_tensor *t = tensor(m, name);
  if (!t) return;
  int64_t n = sf_tensor_numel(t);
  stats s = stats_of(m, t);
  CHECK_MSG(s.min >= -b * (1 + 1e-6) && s.max <= b * (1 + 1e-6), "%s: [%g, %g] outside +-%g", name, s.min,
            s.max, b);
  /* P(max < b (1 - 40/n)) = (1 - 20/n)^n < e^-20 */
  double reach = b * (1.0 - fmin(40.0 / (double)n, 1.0));
  CHECK_MSG(s.max >= reach && s.min <= -reach, "%s: [%g, %g] does not fill +-%g", name, s.min, s.max, b);
  /* std of a uniform sample: relative standard error sqrt(1/5) / sqrt(n) */
  double want = b / sqrt(3.0);
  CHECK_MSG(fabs(s.std - want) < tol(sqrt(0.2), n) * want, "%s: std %g, want %g", name, s.std, want);
}

static void check_const(const sf_model *m, const char *name, float want) {
  const sf_tensor *t = tensor(m, name);
  if (!t) return;
  stats s = stats_of(m, t);
  CHECK_MSG(s.min == want && s.max == want, "%s: [%g, %g], want all %g", name, s.min, s.max, want);
}

/* softplus(dt_bias) = dt in [0.001, 0.1] (log-uniform; the 1e-4 floor is
 * below the range). */
static void check_dt_bias(const sf_model *m, const char *name) {
  const sf_tensor *t = tensor(m, name);
  if (!t) return;
  CHECK(t->dtype == SF_F32);
  float *v = values(m, t);
  int64_t n = sf_tensor_numel(t), low = 0;
  for (int64_t i = 0; i < n; i++) {
    double dt = log1p(exp((double)v[i]));
    CHECK_MSG(dt >= 0.001 * 0.999 && dt <= 0.1 * 1.001, "%s[%lld]: softplus %g", name, (long long)i, dt);
    if (dt < 0.01) low++;
  }
  /* log-uniform: half the mass below the geometric midpoint 0.01 (binomial,
   * within six standard deviations sqrt(n) / 2) */
  CHECK_MSG(fabs((double)low - 0.5 * (double)n) <= 3.0 * sqrt((double)n), "%s: %lld of %lld below 0.01", name,
            (long long)low, (long long)n);
  free(v);
}

static void check_all_finite(const sf_model *m) {
  for (int32_t i = 0; i < m->n_tensors; i++) {
    stats s = stats_of(m, &m->tensors[i]);
    CHECK_MSG(s.finite, "%s has non-finite values", m->tensors[i].name);
  }
}

static int same_bytes(const sf_model *a, const sf_model *b, int32_t i) {
  const sf_tensor *x = &a->tensors[i], *y = &b->tensors[i];
  size_t bytes = (size_t)sf_tensor_numel(x) * sf_dtype_size(x->dtype);
  return memcmp(x->data, y->data, bytes) == 0; /* cpu: host memory */
}

static void test_mamba1(uint64_t seed) {
  sf_model m;
  init("tiny-mamba1", seed, &cpu, &m);
  check_all_finite(&m);
  check_normal(&m, "embed.weight", 0.02);
  check_uniform(&m, "layers.0.mixer.in_proj.weight", 1 / sqrt(64.0));
  check_uniform(&m, "layers.1.mixer.conv1d.weight", 1 / sqrt(4.0));
  check_uniform(&m, "layers.1.mixer.conv1d.bias", 1 / sqrt(4.0));
  check_uniform(&m, "layers.0.mixer.x_proj.weight", 1 / sqrt(128.0));
  check_uniform(&m, "layers.0.mixer.dt_proj.weight", 1 / sqrt(4.0));
  check_uniform(&m, "layers.1.mixer.out_proj.weight", 1 / sqrt(128.0) / sqrt(2.0));
  check_dt_bias(&m, "layers.1.mixer.dt_bias");
  check_const(&m, "layers.0.mixer.D", 1.0f);
  check_const(&m, "layers.1.norm.weight", 1.0f);
  check_const(&m, "final_norm.weight", 1.0f);
  const sf_tensor *A = tensor(&m, "layers.0.mixer.A");
  if (A) {
    CHECK(A->dtype == SF_F32);
    float *a = values(&m, A);
    int bad = 0;
    for (int64_t c = 0; c < A->shape[0]; c++)
      for (int64_t n = 0; n < A->shape[1]; n++) bad += a[c * A->shape[1] + n] != -(float)(n + 1);
    CHECK_MSG(bad == 0, "A is not -(1..d_state) per channel (%d wrong)", bad);
    free(a);
  }
  /* views */
  CHECK(m.mamba1 && !m.mamba2 && !m.transformer);
  CHECK(m.lm_head == m.embed && m.embed == tensor(&m, "embed.weight"));
  CHECK(m.final_norm_w == tensor(&m, "final_norm.weight") && m.final_norm_b == NULL);
  for (int l = 0; l < 2; l++) {
    char name[96];
    const sf_mamba1_layer *L = &m.mamba1[l];
    snprintf(name, sizeof name, "layers.%d.mixer.in_proj.weight", l);
    CHECK(L->in_proj_w == tensor(&m, name));
    snprintf(name, sizeof name, "layers.%d.mixer.dt_bias", l);
    CHECK(L->dt_proj_b == tensor(&m, name));
    snprintf(name, sizeof name, "layers.%d.mixer.A", l);
    CHECK(L->A == tensor(&m, name));
    CHECK(L->norm_w && L->conv_w && L->conv_b && L->x_proj_w && L->dt_proj_w && L->D && L->out_proj_w);
    CHECK(L->conv_w->ndim == 2 && L->conv_w->shape[0] == 128 && L->conv_w->shape[1] == 4);
  }

  /* Same seed: same bytes. Other seed: every random tensor differs. */
  sf_model same, other;
  init("tiny-mamba1", seed, &cpu, &same);
  init("tiny-mamba1", seed + 1, &cpu, &other);
  for (int32_t i = 0; i < m.n_tensors; i++) {
    CHECK_MSG(same_bytes(&m, &same, i), "%s differs for the same seed", m.tensors[i].name);
    const char *n = m.tensors[i].name;
    int constant = strstr(n, "norm") || strstr(n, ".A") || strstr(n, ".D");
    if (!constant) CHECK_MSG(!same_bytes(&m, &other, i), "%s is the same for another seed", n);
  }
  sf_model_free(&same);
  sf_model_free(&other);

  /* One stream per tensor: a 3-layer model has the same embedding and
   * layer-0 in_proj (same tensor indices) as the 2-layer one. */
  sf_model_config c3;
  sf_error err;
  REQUIRE(sf_model_preset("tiny-mamba1", &c3, &err) == SF_OK);
  c3.n_layers = 3;
  sf_model m3;
  REQUIRE(sf_model_init_random(&c3, &cpu, seed, &m3, &err) == SF_OK);
  CHECK(same_bytes(&m, &m3, 0));
  CHECK(same_bytes(&m, &m3, 2));
  CHECK(!strcmp(m3.tensors[2].name, "layers.0.mixer.in_proj.weight"));
  sf_model_free(&m3);
  sf_model_free(&m);
  CHECK(m.tensors == NULL && m.n_tensors == 0 && m.mamba1 == NULL);
}

static void test_mamba2(uint64_t seed) {
  sf_model m;
  init("tiny-mamba2", seed, &cpu, &m);
  check_all_finite(&m);
  check_normal(&m, "embed.weight", 0.02);
  check_uniform(&m, "layers.0.mixer.in_proj.weight", 1 / sqrt(64.0));
  check_uniform(&m, "layers.0.mixer.out_proj.weight", 1 / sqrt(128.0) / sqrt(2.0));
  check_dt_bias(&m, "layers.0.mixer.dt_bias");
  check_const(&m, "layers.1.mixer.D", 1.0f);
  check_const(&m, "layers.1.mixer.norm.weight", 1.0f);
  const sf_tensor *A = tensor(&m, "layers.1.mixer.A");
  if (A) {
    stats s = stats_of(&m, A);
    CHECK(A->dtype == SF_F32 && A->ndim == 1 && A->shape[0] == 8);
    CHECK_MSG(s.min >= -16 && s.max <= -1 && s.max > s.min, "A in [%g, %g]", s.min, s.max);
  }
  CHECK(m.mamba2 && !m.mamba1 && m.lm_head == m.embed);
  const sf_mamba2_layer *L = &m.mamba2[1];
  CHECK(L->A == A && L->gate_norm_w == tensor(&m, "layers.1.mixer.norm.weight"));
  CHECK(L->conv_w->shape[0] == 128 + 2 * 16 && L->conv_b->shape[0] == 160);
  CHECK(L->in_proj_w->shape[0] == 2 * 128 + 2 * 16 + 8);
  CHECK(L->norm_w && L->dt_bias && L->D && L->out_proj_w);
  sf_model_free(&m);
}

static void test_transformer(uint64_t seed) {
  sf_model m;
  init("tiny-transformer", seed, &cpu, &m);
  check_all_finite(&m);
  check_normal(&m, "embed.weight", 0.02);
  check_normal(&m, "lm_head.weight", 0.02);
  check_normal(&m, "layers.0.attn.qkv.weight", 0.02);
  check_normal(&m, "layers.1.attn.dense.weight", 0.02);
  check_normal(&m, "layers.1.mlp.fc_in.weight", 0.02);
  check_normal(&m, "layers.0.mlp.fc_out.weight", 0.02);
  check_const(&m, "layers.0.attn.qkv.bias", 0.0f);
  check_const(&m, "layers.1.mlp.fc_out.bias", 0.0f);
  check_const(&m, "layers.0.input_norm.weight", 1.0f);
  check_const(&m, "layers.0.input_norm.bias", 0.0f);
  check_const(&m, "layers.1.post_attn_norm.weight", 1.0f);
  check_const(&m, "final_norm.bias", 0.0f);
  CHECK(m.transformer && m.lm_head != m.embed && m.lm_head == tensor(&m, "lm_head.weight"));
  CHECK(m.final_norm_b == tensor(&m, "final_norm.bias"));
  const sf_transformer_layer *L = &m.transformer[1];
  CHECK(L->qkv_w == tensor(&m, "layers.1.attn.qkv.weight"));
  CHECK(L->ln1_w && L->ln1_b && L->ln2_w && L->ln2_b && L->qkv_b && L->dense_w && L->dense_b && L->fc_in_w &&
        L->fc_in_b && L->fc_out_w && L->fc_out_b);
  sf_model_free(&m);
}

/* A bf16 backend: the cpu memory functions with act_dtype bf16. Weights are
 * the bf16 rounding of the f32 draws; A, D, dt biases stay f32. */
static void test_bf16(uint64_t seed) {
  sf_ops ops = sf_ops_cpu;
  ops.act_dtype = SF_BF16;
  sf_op_ctx bf = cpu;
  bf.ops = &ops;
  sf_model m32, m16;
  init("tiny-mamba2", seed, &cpu, &m32);
  init("tiny-mamba2", seed, &bf, &m16);
  REQUIRE(m32.n_tensors == m16.n_tensors);
  for (int32_t i = 0; i < m16.n_tensors; i++) {
    const sf_tensor *a = &m32.tensors[i], *b = &m16.tensors[i];
    int f32 = strstr(a->name, ".A") || strstr(a->name, ".D") || strstr(a->name, "dt_bias");
    CHECK_MSG(b->dtype == (f32 ? SF_F32 : SF_BF16), "%s: dtype %d", b->name, (int)b->dtype);
    float *x = values(&m32, a), *y = values(&m16, b);
    int64_t n = sf_tensor_numel(a), bad = 0;
    for (int64_t k = 0; k < n; k++) bad += (f32 ? x[k] : sf_bf16_to_f32(sf_f32_to_bf16(x[k]))) != y[k];
    CHECK_MSG(bad == 0, "%s: %lld values are not the bf16 rounding", a->name, (long long)bad);
    free(x);
    free(y);
  }
  sf_model_free(&m32);
  sf_model_free(&m16);
}

/* A backend whose allocation fails: an error naming the tensor, and a model
 * left empty (nothing leaked: the sanitizer build checks). */
static int allocs_left;
static sf_status failing_alloc(sf_op_ctx *ctx, size_t bytes, void **ptr, sf_error *err) {
  if (allocs_left-- <= 0) return sf_fail(err, SF_ERR_NOMEM, "test: allocation refused");
  return sf_ops_cpu.alloc(ctx, bytes, ptr, err);
}

static void test_alloc_failure(void) {
  sf_ops ops = sf_ops_cpu;
  ops.alloc = failing_alloc;
  sf_op_ctx ctx = cpu;
  ctx.ops = &ops;
  sf_model_config c;
  sf_error err;
  REQUIRE(sf_model_preset("tiny-transformer", &c, &err) == SF_OK);
  allocs_left = 5;
  sf_model m;
  CHECK(sf_model_init_random(&c, &ctx, 1, &m, &err) == SF_ERR_NOMEM);
  CHECK_MSG(strstr(err.msg, "layers.0.attn.qkv.weight") != NULL, "%s", err.msg); /* the 6th tensor */
  CHECK_MSG(strstr(err.msg, "allocation refused") != NULL, "%s", err.msg);
  CHECK(m.tensors == NULL && m.n_tensors == 0);
  c.n_heads = 5;
  CHECK(sf_model_init_random(&c, &cpu, 1, &m, &err) == SF_ERR_ARG);
  CHECK(m.tensors == NULL);
}

int main(void) {
  uint64_t seed = sf_test_seed();
  sf_error err;
  REQUIRE(sf_cpu_ctx_init(&cpu, 1, &err) == SF_OK);
  test_mamba1(seed);
  test_mamba2(seed);
  test_transformer(seed);
  test_bf16(seed);
  test_alloc_failure();
  sf_cpu_ctx_destroy(&cpu);
  return sf_test_finish("test_model_init");
}
