/* Model presets: every preset validates with the DESIGN shapes; parameter
 * counts from the tensor layout match the published ones; bad configs are
 * rejected naming the field; the layout's shapes and dtypes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/layout.h"
#include "model/model.h"
#include "test.h"

static sf_model_config preset(const char *name) {
  sf_model_config c;
  sf_error err;
  sf_error_clear(&err);
  sf_status rc = sf_model_preset(name, &c, &err);
  CHECK_MSG(rc == SF_OK, "%s: %s", name, err.msg);
  if (rc != SF_OK) memset(&c, 0, sizeof c);
  return c;
}

static void test_all_validate(void) {
  int n = 0;
  for (const char *const *p = sf_model_preset_names(); *p; p++, n++) {
    sf_model_config c = preset(*p);
    sf_error err;
    CHECK_MSG(sf_model_config_validate(&c, &err) == SF_OK, "%s: %s", *p, err.msg);
    CHECK_STR_EQ(c.name, *p);
    CHECK(sf_model_param_count(&c) > 0);
  }
  CHECK_EQ_I64(n, 18);
}

static void test_shapes(void) {
  static const char *m1[] = {"mamba-130m", "mamba-370m", "mamba-790m", "mamba-1.4b", "mamba-2.8b"};
  static const char *m2[] = {"mamba2-130m", "mamba2-370m", "mamba2-780m", "mamba2-1.3b", "mamba2-2.7b"};
  static const int L[] = {24, 48, 48, 48, 64}, D[] = {768, 1024, 1536, 2048, 2560};
  for (int i = 0; i < 5; i++) {
    sf_model_config c = preset(m1[i]);
    CHECK(c.arch == SF_ARCH_MAMBA1);
    CHECK_EQ_I64(c.n_layers, L[i]);
    CHECK_EQ_I64(c.d_model, D[i]);
    CHECK_EQ_I64(c.d_inner, 2 * D[i]);
    CHECK_EQ_I64(c.d_state, 16);
    CHECK_EQ_I64(c.d_conv, 4);
    CHECK_EQ_I64(c.dt_rank, (D[i] + 15) / 16);
    CHECK_EQ_I64(c.vocab_size, 50280);
    CHECK(c.tie_embeddings && c.residual_in_fp32 && c.norm_eps == 1e-5f);

    c = preset(m2[i]);
    CHECK(c.arch == SF_ARCH_MAMBA2);
    CHECK_EQ_I64(c.n_layers, L[i]);
    CHECK_EQ_I64(c.d_model, D[i]);
    CHECK_EQ_I64(c.d_inner, 2 * D[i]);
    CHECK_EQ_I64(c.d_state, 128);
    CHECK_EQ_I64(c.ssm_head_dim, 64);
    CHECK_EQ_I64(c.ssm_heads, 2 * D[i] / 64);
    CHECK_EQ_I64(c.n_groups, 1);
    CHECK_EQ_I64(c.chunk_size, 256);
    CHECK_EQ_I64(c.d_conv, 4);
    CHECK_EQ_I64(c.vocab_size, 50288); /* 50277 padded to a multiple of 16 */
    CHECK(c.tie_embeddings);
  }
  static const char *py[] = {"pythia-160m", "pythia-410m", "pythia-1.4b", "pythia-2.8b", "pythia-6.9b"};
  static const int PL[] = {12, 24, 24, 32, 32}, PD[] = {768, 1024, 2048, 2560, 4096},
                   PH[] = {12, 16, 16, 32, 32}, PV[] = {50304, 50304, 50304, 50304, 50432};
  for (int i = 0; i < 5; i++) {
    sf_model_config c = preset(py[i]);
    CHECK(c.arch == SF_ARCH_TRANSFORMER);
    CHECK_EQ_I64(c.n_layers, PL[i]);
    CHECK_EQ_I64(c.d_model, PD[i]);
    CHECK_EQ_I64(c.n_heads, PH[i]);
    CHECK_EQ_I64(c.n_kv_heads, PH[i]);
    CHECK_EQ_I64(c.head_dim, PD[i] / PH[i]);
    CHECK_EQ_I64(c.rot_dim, PD[i] / PH[i] / 4);
    CHECK_EQ_I64(c.d_ff, 4 * PD[i]);
    CHECK_EQ_I64(c.vocab_size, PV[i]);
    CHECK(c.rotary_base == 10000.0f && c.parallel_residual && !c.tie_embeddings);
  }
  sf_model_config t = preset("tiny-mamba2");
  CHECK_EQ_I64(t.n_layers, 2);
  CHECK_EQ_I64(t.d_model, 64);
  CHECK_EQ_I64(t.ssm_head_dim, 16);
  CHECK_EQ_I64(t.ssm_heads, 8);
  CHECK_EQ_I64(t.d_state, 16);
  CHECK_EQ_I64(t.chunk_size, 16);
  t = preset("tiny-transformer");
  CHECK_EQ_I64(t.n_heads, 4);
  CHECK_EQ_I64(t.head_dim, 16);
  CHECK_EQ_I64(t.vocab_size, 50304);
  t = preset("tiny-mamba1");
  CHECK_EQ_I64(t.d_inner, 128);
  CHECK_EQ_I64(t.dt_rank, 4);
  CHECK_EQ_I64(t.vocab_size, 50280);
}

/* Published parameter counts. Where the source gives an exact count the
 * layout must match it exactly (a stronger check than the 1% asked for):
 * - pythia-*: the "Naming convention and parameter count" table of the
 *   EleutherAI Pythia model cards (huggingface.co/EleutherAI/pythia-160m):
 *   160M 162,322,944; 410M 405,334,016; 1.4B 1,414,647,808; 2.8B
 *   2,775,208,960; 6.9B 6,857,302,016 (pythia-6.9b's vocab is 50432).
 * - mamba-*-hf: sum(p.numel() for p in model.parameters()) of
 *   state-spaces/mamba-130m-hf is 129,135,360 (asserted in public code
 *   loading that checkpoint; its fp32 pytorch_model.bin is 517 MB); a public
 *   table of checkpoint parameter counts lists mamba-370m-hf 371,516,416,
 *   mamba-790m-hf 793,204,224, mamba-1.4b-hf 1,372,178,432, mamba-2.8b-hf
 *   2,768,345,600.
 * - mamba2-130m: no exact count is published; state-spaces/mamba2-130m's
 *   pytorch_model.bin holds fp16 weights (HalfStorage, plus a few fp32
 *   vectors) in 258 MB, i.e. about 129M parameters: checked within 1%. */
static void test_param_counts(void) {
  static const struct { const char *name; int64_t want; int exact; } cases[] = {
      {"pythia-160m", 162322944, 1},   {"pythia-410m", 405334016, 1},
      {"pythia-1.4b", 1414647808, 1},  {"pythia-2.8b", 2775208960LL, 1},
      {"pythia-6.9b", 6857302016LL, 1}, {"mamba-130m", 129135360, 1},
      {"mamba-370m", 371516416, 1},    {"mamba-790m", 793204224, 1},
      {"mamba-1.4b", 1372178432, 1},   {"mamba-2.8b", 2768345600LL, 1},
      {"mamba2-130m", 129000000, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sf_model_config c = preset(cases[i].name);
    int64_t got = sf_model_param_count(&c);
    double rel = (double)llabs((long long)(got - cases[i].want)) / (double)cases[i].want;
    printf("%-12s %14lld parameters (published %lld)\n", cases[i].name, (long long)got,
           (long long)cases[i].want);
    CHECK_MSG(rel < 0.01, "%s: %lld vs %lld", cases[i].name, (long long)got, (long long)cases[i].want);
    if (cases[i].exact) CHECK_EQ_I64(got, cases[i].want);
  }
}

static void expect_invalid(sf_model_config c, const char *field) {
  sf_error err;
  sf_error_clear(&err);
  CHECK(sf_model_config_validate(&c, &err) == SF_ERR_ARG);
  CHECK_MSG(strstr(err.msg, field) != NULL, "'%s' does not name %s", err.msg, field);
  CHECK(strchr(err.msg, '\n') == NULL);
}

static void test_invalid(void) {
  sf_error err;
  sf_model_config c;
  CHECK(sf_model_preset("mamba-7b", &c, &err) == SF_ERR_ARG);
  CHECK(strstr(err.msg, "mamba-7b") && strstr(err.msg, "pythia-6.9b") && strstr(err.msg, "tiny-mamba2"));
  CHECK(sf_model_preset(NULL, &c, &err) == SF_ERR_ARG);

  sf_model_config m1 = preset("tiny-mamba1"), m2 = preset("tiny-mamba2"), t = preset("tiny-transformer");
  c = m1; c.n_layers = 0; expect_invalid(c, "n_layers");
  c = m1; c.d_model = -1; expect_invalid(c, "d_model");
  c = m1; c.vocab_size = 0; expect_invalid(c, "vocab_size");
  c = m1; c.norm_eps = 0; expect_invalid(c, "norm_eps");
  c = m1; c.dt_rank = 0; expect_invalid(c, "dt_rank");
  c = m1; c.d_state = 0; expect_invalid(c, "d_state");
  c = m1; c.d_conv = 0; expect_invalid(c, "d_conv");
  c = m1; c.arch = (sf_arch)7; expect_invalid(c, "arch");
  c = m2; c.ssm_head_dim = 24; expect_invalid(c, "ssm_head_dim");
  c = m2; c.ssm_heads = 7; expect_invalid(c, "ssm_heads");
  c = m2; c.n_groups = 3; expect_invalid(c, "n_groups");
  c = m2; c.chunk_size = 0; expect_invalid(c, "chunk_size");
  c = t; c.n_kv_heads = 3; expect_invalid(c, "n_kv_heads");
  c = t; c.rot_dim = 5; expect_invalid(c, "rot_dim");
  c = t; c.rot_dim = 18; expect_invalid(c, "rot_dim");
  c = t; c.d_ff = 0; expect_invalid(c, "d_ff");
  c = t; c.head_dim = 0; expect_invalid(c, "head_dim");
  c = t; c.rotary_base = 0; expect_invalid(c, "rotary_base");
  /* GQA custom shapes are valid. */
  c = t; c.n_kv_heads = 2; CHECK(sf_model_config_validate(&c, &err) == SF_OK);
  CHECK(strcmp(sf_arch_name(SF_ARCH_MAMBA1), "mamba1") == 0);
  CHECK(strcmp(sf_arch_name(SF_ARCH_MAMBA2), "mamba2") == 0);
  CHECK(strcmp(sf_arch_name(SF_ARCH_TRANSFORMER), "transformer") == 0);
}

static const sf_tensor_spec *find_spec(const sf_tensor_spec *s, int32_t n, const char *name) {
  for (int32_t i = 0; i < n; i++)
    if (!strcmp(s[i].name, name)) return &s[i];
  return NULL;
}

static void check_spec(const sf_tensor_spec *s, int32_t n, const char *name, sf_dtype dt, int32_t ndim,
                       int64_t d0, int64_t d1) {
  const sf_tensor_spec *t = find_spec(s, n, name);
  CHECK_MSG(t != NULL, "no tensor %s", name);
  if (!t) return;
  CHECK_MSG(t->dtype == dt && t->ndim == ndim && t->shape[0] == d0 && (ndim < 2 || t->shape[1] == d1),
            "%s: dtype %d ndim %d shape [%lld, %lld]", name, (int)t->dtype, (int)t->ndim,
            (long long)t->shape[0], (long long)t->shape[1]);
}

static void test_layout(void) {
  sf_tensor_spec *s;
  int32_t n;
  sf_error err;
  sf_model_config c = preset("mamba-130m");
  REQUIRE(sf_model_layout(&c, SF_BF16, &s, &n, &err) == SF_OK);
  CHECK_EQ_I64(n, 1 + 24 * 10 + 1); /* tied: no lm_head */
  check_spec(s, n, "embed.weight", SF_BF16, 2, 50280, 768);
  check_spec(s, n, "layers.3.mixer.in_proj.weight", SF_BF16, 2, 3072, 768);
  check_spec(s, n, "layers.3.mixer.conv1d.weight", SF_BF16, 2, 1536, 4);
  check_spec(s, n, "layers.3.mixer.x_proj.weight", SF_BF16, 2, 48 + 32, 1536);
  check_spec(s, n, "layers.3.mixer.dt_proj.weight", SF_BF16, 2, 1536, 48);
  check_spec(s, n, "layers.3.mixer.dt_bias", SF_F32, 1, 1536, 0);
  check_spec(s, n, "layers.3.mixer.A", SF_F32, 2, 1536, 16);
  check_spec(s, n, "layers.3.mixer.D", SF_F32, 1, 1536, 0);
  check_spec(s, n, "layers.23.mixer.out_proj.weight", SF_BF16, 2, 768, 1536);
  CHECK(find_spec(s, n, "lm_head.weight") == NULL);
  for (int32_t i = 0; i < n; i++)
    for (int32_t j = i + 1; j < n; j++) CHECK_MSG(strcmp(s[i].name, s[j].name), "duplicate %s", s[i].name);
  free(s);

  c = preset("mamba2-130m");
  REQUIRE(sf_model_layout(&c, SF_F16, &s, &n, &err) == SF_OK);
  check_spec(s, n, "layers.0.mixer.in_proj.weight", SF_F16, 2, 2 * 1536 + 2 * 128 + 24, 768);
  check_spec(s, n, "layers.0.mixer.conv1d.weight", SF_F16, 2, 1536 + 256, 4);
  check_spec(s, n, "layers.0.mixer.conv1d.bias", SF_F16, 1, 1536 + 256, 0);
  check_spec(s, n, "layers.0.mixer.dt_bias", SF_F32, 1, 24, 0);
  check_spec(s, n, "layers.0.mixer.A", SF_F32, 1, 24, 0);
  check_spec(s, n, "layers.0.mixer.D", SF_F32, 1, 24, 0);
  check_spec(s, n, "layers.0.mixer.norm.weight", SF_F16, 1, 1536, 0);
  free(s);

  c = preset("pythia-160m");
  REQUIRE(sf_model_layout(&c, SF_F32, &s, &n, &err) == SF_OK);
  CHECK_EQ_I64(n, 1 + 12 * 12 + 3);
  check_spec(s, n, "layers.11.attn.qkv.weight", SF_F32, 2, 3 * 768, 768);
  check_spec(s, n, "layers.11.attn.dense.weight", SF_F32, 2, 768, 768);
  check_spec(s, n, "layers.11.mlp.fc_in.weight", SF_F32, 2, 3072, 768);
  check_spec(s, n, "layers.11.mlp.fc_out.bias", SF_F32, 1, 768, 0);
  check_spec(s, n, "final_norm.bias", SF_F32, 1, 768, 0);
  check_spec(s, n, "lm_head.weight", SF_F32, 2, 50304, 768);
  free(s);

  /* GQA: qkv rows are (n_heads + 2 n_kv) * head_dim. */
  c = preset("tiny-transformer");
  c.n_kv_heads = 2;
  REQUIRE(sf_model_layout(&c, SF_F32, &s, &n, &err) == SF_OK);
  check_spec(s, n, "layers.0.attn.qkv.weight", SF_F32, 2, (4 + 4) * 16, 64);
  free(s);

  c.n_kv_heads = 3;
  CHECK(sf_model_layout(&c, SF_F32, &s, &n, &err) == SF_ERR_ARG);
  CHECK(s == NULL && n == 0);
  CHECK_EQ_I64(sf_model_param_count(&c), -1);
}

int main(void) {
  test_all_validate();
  test_shapes();
  test_param_counts();
  test_invalid();
  test_layout();
  return sf_test_finish("test_model_presets");
}
