/* sf_model_load on tiny checkpoints the test writes itself, in each naming
 * scheme: Hugging Face MambaForCausalLM (bf16), Mamba2ForCausalLM (bf16 with
 * f32 A_log/D/dt_bias), GPTNeoXForCausalLM (f16, sharded with an index, plus
 * the rotary / mask buffers real checkpoints carry) and mamba_ssm's own
 * names and config (f32, Mamba-1 and Mamba-2). A random model is exported
 * under the checkpoint names with an independent mapping written here
 * (A -> A_log = log(-A), conv1d weights [C, W] -> [C, 1, W]), loaded back,
 * and compared with the exported values. Then the errors: bad shape,
 * missing tensor, broken index, bad configs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/model.h"
#include "model/safetensors.h"
#include "ops/convert.h"
#include "ops/op_table.h"
#include "test.h"

static char tmpdir[] = "/tmp/sf_test_model_load_XXXXXX";
static sf_op_ctx cpu;

enum scheme { HF_MAMBA, MAMBA_SSM, NEOX };

static char *path_in(const char *dir, const char *name) {
  static char buf[8][600];
  static int next = 0;
  char *p = buf[next++ % 8];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

static const char *make_dir(const char *name) {
  const char *d = path_in(tmpdir, name);
  static char keep[16][600];
  static int next = 0;
  char *k = keep[next++ % 16];
  snprintf(k, sizeof keep[0], "%s", d);
  REQUIRE(mkdir(k, 0755) == 0);
  return k;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  REQUIRE(f && fputs(text, f) >= 0 && fclose(f) == 0);
}

/* The checkpoint name of a canonical tensor in a scheme (this test's own
 * mapping, independent of the loader's). */
static void ckpt_name(enum scheme s, int mamba2, const char *canon, char *out, size_t len) {
  int l;
  char rest[96];
  if (s == NEOX) {
    static const char *map[][2] = {
        {"input_norm.", "input_layernorm."},         {"post_attn_norm.", "post_attention_layernorm."},
        {"attn.qkv.", "attention.query_key_value."}, {"attn.dense.", "attention.dense."},
        {"mlp.fc_in.", "mlp.dense_h_to_4h."},        {"mlp.fc_out.", "mlp.dense_4h_to_h."}};
    if (!strcmp(canon, "embed.weight"))
      snprintf(out, len, "gpt_neox.embed_in.weight");
    else if (!strcmp(canon, "lm_head.weight"))
      snprintf(out, len, "embed_out.weight");
    else if (!strncmp(canon, "final_norm.", 11))
      snprintf(out, len, "gpt_neox.final_layer_norm.%s", canon + 11);
    else {
      REQUIRE(sscanf(canon, "layers.%d.%95s", &l, rest) == 2);
      for (size_t i = 0; i < 6; i++) {
        size_t k = strlen(map[i][0]);
        if (!strncmp(rest, map[i][0], k)) {
          snprintf(out, len, "gpt_neox.layers.%d.%s%s", l, map[i][1], rest + k);
          return;
        }
      }
      REQUIRE(0 && "unmapped transformer tensor");
    }
    return;
  }
  if (!strcmp(canon, "embed.weight"))
    snprintf(out, len, s == HF_MAMBA ? "backbone.embeddings.weight" : "backbone.embedding.weight");
  else if (!strcmp(canon, "final_norm.weight"))
    snprintf(out, len, "backbone.norm_f.weight");
  else if (!strcmp(canon, "lm_head.weight"))
    snprintf(out, len, "lm_head.weight");
  else {
    REQUIRE(sscanf(canon, "layers.%d.%95s", &l, rest) == 2);
    if (!strcmp(rest, "mixer.A"))
      snprintf(rest, sizeof rest, "mixer.A_log");
    else if (!strcmp(rest, "mixer.dt_bias") && !mamba2)
      snprintf(rest, sizeof rest, "mixer.dt_proj.bias");
    snprintf(out, len, "backbone.layers.%d.%s", l, rest);
  }
}

typedef struct export_opts {
  enum scheme scheme;
  sf_dtype dtype;          /* weights */
  sf_dtype f32_dtype;      /* A_log, D, dt biases */
  int shards;              /* 0: model.safetensors; 2: two shards and an index */
  int extras;              /* buffers real checkpoints carry, and a tied lm_head copy */
  const char *drop;        /* a checkpoint name to leave out */
  const char *bad_shape;   /* a checkpoint name written with one row too many */
  const char *index_drop;  /* a name left out of the index only */
  const char *index_wrong; /* a name the index assigns to the other shard */
} export_opts;

typedef struct entry {
  char name[128];
  sf_dtype dtype;
  int32_t ndim;
  int64_t shape[4];
  void *data;
} entry;

/* The causal-mask buffers GPT-NeoX checkpoints carry (BOOL and a scalar),
 * written by hand as the writer only writes float dtypes: the loader must
 * open and check this shard but never read it. */
static const char *mask_file = "model-extras.safetensors";
static void write_mask_file(const char *path) {
  const char *h =
      "{\"gpt_neox.layers.0.attention.bias\":{\"dtype\":\"BOOL\",\"shape\":[1,1,4,4],"
      "\"data_offsets\":[0,16]},\"gpt_neox.layers.0.attention.masked_bias\":{\"dtype\":\"F32\","
      "\"shape\":[],\"data_offsets\":[16,20]}}";
  unsigned char len[8] = {0}, data[20] = {1, 1, 1, 1};
  size_t n = strlen(h);
  for (int i = 0; i < 8; i++) len[i] = (unsigned char)((unsigned long long)n >> (8 * i));
  FILE *f = fopen(path, "wb");
  REQUIRE(f && fwrite(len, 1, 8, f) == 8 && fwrite(h, 1, n, f) == n && fwrite(data, 1, 20, f) == 20);
  REQUIRE(fclose(f) == 0);
}

/* Writes m under the scheme's names into dir; fills expected[i] with what
 * loading must give for tensor i (the stored values back in f32). */
static void export_model(const sf_model *m, const char *dir, const export_opts *o, float **expected) {
  int mamba2 = m->cfg.arch == SF_ARCH_MAMBA2;
  entry *es = calloc((size_t)m->n_tensors + 8, sizeof *es);
  REQUIRE(es);
  int n = 0;
  for (int32_t i = 0; i < m->n_tensors; i++) {
    const sf_tensor *t = &m->tensors[i];
    entry *e = &es[n];
    ckpt_name(o->scheme, mamba2, t->name, e->name, sizeof e->name);
    int64_t numel = sf_tensor_numel(t);
    float *v = malloc((size_t)numel * sizeof *v);
    REQUIRE(v && t->dtype == SF_F32);
    memcpy(v, t->data, (size_t)numel * sizeof *v);
    int is_a = strstr(t->name, ".mixer.A") != NULL;
    if (is_a)
      for (int64_t k = 0; k < numel; k++) v[k] = logf(-v[k]);
    e->dtype = t->dtype == SF_F32 && (is_a || strstr(t->name, ".D") || strstr(t->name, "dt_bias"))
                   ? o->f32_dtype
                   : o->dtype;
    e->ndim = t->ndim;
    memcpy(e->shape, t->shape, sizeof e->shape);
    if (strstr(t->name, "conv1d.weight")) { /* PyTorch Conv1d: [C, 1, W] */
      e->ndim = 3;
      e->shape[2] = t->shape[1];
      e->shape[1] = 1;
    }
    e->data = malloc((size_t)numel * 4);
    REQUIRE(e->data);
    sf_convert(e->data, e->dtype, v, SF_F32, numel);
    expected[i] = malloc((size_t)numel * sizeof(float));
    REQUIRE(expected[i]);
    sf_convert(expected[i], SF_F32, e->data, e->dtype, numel);
    if (is_a)
      for (int64_t k = 0; k < numel; k++) expected[i][k] = -expf(expected[i][k]);
    free(v);
    if (o->drop && !strcmp(e->name, o->drop)) {
      free(e->data);
      continue;
    }
    if (o->bad_shape && !strcmp(e->name, o->bad_shape)) {
      int64_t row = numel / e->shape[0];
      e->shape[0] += 1;
      e->data = realloc(e->data, (size_t)(numel + row) * 4);
      REQUIRE(e->data);
    }
    n++;
  }
  if (o->extras) {
    static float inv_freq[2] = {1.0f, 0.01f};
    static float tied[1];
    entry *e = &es[n++];
    snprintf(e->name, sizeof e->name,
             o->scheme == NEOX ? "gpt_neox.layers.0.attention.rotary_emb.inv_freq" : "lm_head.weight");
    e->dtype = SF_F32;
    e->ndim = 1;
    e->shape[0] = o->scheme == NEOX ? 2 : 1; /* a tied lm_head the loader must not read */
    e->data = malloc(8);
    REQUIRE(e->data);
    memcpy(e->data, o->scheme == NEOX ? (void *)inv_freq : (void *)tied, (size_t)e->shape[0] * 4);
  }
  sf_st_write_tensor *ws = calloc((size_t)n, sizeof *ws);
  REQUIRE(ws);
  for (int i = 0; i < n; i++) {
    ws[i].name = es[i].name;
    ws[i].dtype = es[i].dtype;
    ws[i].ndim = es[i].ndim;
    ws[i].shape = es[i].shape;
    ws[i].data = es[i].data;
  }
  sf_error err;
  const char *meta[] = {"format", "pt"};
  if (o->shards < 2) {
    REQUIRE(sf_safetensors_write(path_in(dir, "model.safetensors"), ws, n, meta, 1, &err) == SF_OK);
  } else {
    int half = n / 2;
    const char *f1 = "model-00001-of-00002.safetensors", *f2 = "model-00002-of-00002.safetensors";
    REQUIRE(sf_safetensors_write(path_in(dir, f1), ws, half, meta, 1, &err) == SF_OK);
    REQUIRE(sf_safetensors_write(path_in(dir, f2), ws + half, n - half, meta, 1, &err) == SF_OK);
    FILE *f = fopen(path_in(dir, "model.safetensors.index.json"), "w");
    REQUIRE(f);
    fprintf(f, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    int first = 1;
    for (int i = 0; i < n; i++) {
      if (o->index_drop && !strcmp(ws[i].name, o->index_drop)) continue;
      int second = i >= half;
      if (o->index_wrong && !strcmp(ws[i].name, o->index_wrong)) second = !second;
      fprintf(f, "%s\n  \"%s\": \"%s\"", first ? "" : ",", ws[i].name, second ? f2 : f1);
      first = 0;
    }
    if (o->extras && o->scheme == NEOX) {
      write_mask_file(path_in(dir, mask_file));
      fprintf(f,
              ",\n  \"gpt_neox.layers.0.attention.bias\": \"%s\",\n"
              "  \"gpt_neox.layers.0.attention.masked_bias\": \"%s\"",
              mask_file, mask_file);
    }
    fprintf(f, "\n}}\n");
    REQUIRE(fclose(f) == 0);
  }
  for (int i = 0; i < n; i++) free(es[i].data);
  free(es);
  free(ws);
}

/* Exports a random model of preset, writes config, loads, compares. */
static void round_trip(const char *preset, const char *dirname, const char *config, const export_opts *o,
                       uint64_t seed) {
  sf_model_config c;
  sf_error err;
  REQUIRE(sf_model_preset(preset, &c, &err) == SF_OK);
  sf_model src;
  REQUIRE(sf_model_init_random(&c, &cpu, seed, &src, &err) == SF_OK);
  const char *dir = make_dir(dirname);
  write_text(path_in(dir, "config.json"), config);
  float **expected = calloc((size_t)src.n_tensors, sizeof *expected);
  REQUIRE(expected);
  export_model(&src, dir, o, expected);

  sf_model m;
  sf_status rc = sf_model_load(dir, &cpu, &m, &err);
  CHECK_MSG(rc == SF_OK, "%s: %s", dirname, err.msg);
  if (rc == SF_OK) {
    CHECK_STR_EQ(m.cfg.name, dirname);
    sf_model_config a = m.cfg, b = c;
    memset(a.name, 0, sizeof a.name);
    memset(b.name, 0, sizeof b.name);
    CHECK_MSG(memcmp(&a, &b, sizeof a) == 0, "%s: config differs from preset %s", dirname, preset);
    CHECK_EQ_I64(m.n_tensors, src.n_tensors);
    CHECK(c.tie_embeddings ? m.lm_head == m.embed : m.lm_head != m.embed);
    for (int32_t i = 0; i < m.n_tensors && i < src.n_tensors; i++) {
      const sf_tensor *t = &m.tensors[i];
      CHECK_STR_EQ(t->name, src.tensors[i].name);
      CHECK(t->dtype == SF_F32 && t->ndim == src.tensors[i].ndim);
      int64_t numel = sf_tensor_numel(t), bad = 0;
      const float *got = t->data;
      int is_a = strstr(t->name, ".mixer.A") != NULL;
      for (int64_t k = 0; k < numel; k++) {
        float want = expected[i][k];
        bad += is_a ? fabsf(got[k] - want) > 1e-6f * fabsf(want) : got[k] != want;
      }
      CHECK_MSG(bad == 0, "%s: %s: %lld values differ", dirname, t->name, (long long)bad);
    }
    if (m.mamba1) CHECK(m.mamba1[1].A == &m.tensors[1 + 10 + 7] && m.mamba1[1].A->shape[1] == c.d_state);
    if (m.mamba2) CHECK(m.mamba2[0].A->ndim == 1 && m.mamba2[0].conv_w->shape[1] == c.d_conv);
    sf_model_free(&m);
  }
  for (int32_t i = 0; i < src.n_tensors; i++) free(expected[i]);
  free(expected);
  sf_model_free(&src);
}

static const char *hf_mamba_cfg =
    "{\"architectures\": [\"MambaForCausalLM\"], \"model_type\": \"mamba\", \"hidden_size\": 64,"
    " \"num_hidden_layers\": 2, \"state_size\": 16, \"conv_kernel\": 4, \"expand\": 2,"
    " \"intermediate_size\": 128, \"time_step_rank\": 4, \"vocab_size\": 50280,"
    " \"layer_norm_epsilon\": 1e-05, \"residual_in_fp32\": true, \"use_bias\": false,"
    " \"use_conv_bias\": true, \"d_model\": 64, \"n_layer\": 24}";
static const char *hf_mamba2_cfg =
    "{\"architectures\": [\"Mamba2ForCausalLM\"], \"model_type\": \"mamba2\", \"hidden_size\": 64,"
    " \"num_hidden_layers\": 2, \"state_size\": 16, \"head_dim\": 16, \"num_heads\": 8, \"n_groups\": 1,"
    " \"expand\": 2, \"conv_kernel\": 4, \"chunk_size\": 16, \"vocab_size\": 50288,"
    " \"layer_norm_epsilon\": 1e-05, \"tie_word_embeddings\": true, \"residual_in_fp32\": true,"
    " \"time_step_rank\": 4, \"use_bias\": false, \"use_conv_bias\": true, \"norm_before_gate\": false}";
static const char *neox_cfg =
    "{\"architectures\": [\"GPTNeoXForCausalLM\"], \"model_type\": \"gpt_neox\", \"hidden_size\": 64,"
    " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"intermediate_size\": 256,"
    " \"rotary_pct\": 0.25, \"rotary_emb_base\": 10000, \"use_parallel_residual\": true,"
    " \"layer_norm_eps\": 1e-05, \"vocab_size\": 50304, \"tie_word_embeddings\": false,"
    " \"hidden_act\": \"gelu\", \"max_position_embeddings\": 2048, \"rope_scaling\": null}";
static const char *ssm2_cfg =
    "{\"d_model\": 64, \"d_intermediate\": 0, \"n_layer\": 2, \"vocab_size\": 50277,"
    " \"ssm_cfg\": {\"layer\": \"Mamba2\", \"d_state\": 16, \"headdim\": 16, \"chunk_size\": 16},"
    " \"attn_layer_idx\": [], \"attn_cfg\": {}, \"rms_norm\": true, \"residual_in_fp32\": true,"
    " \"fused_add_norm\": true, \"pad_vocab_size_multiple\": 16, \"tie_embeddings\": true}";
static const char *ssm1_cfg =
    "{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 50277, \"ssm_cfg\": {}, \"rms_norm\": true,"
    " \"residual_in_fp32\": true, \"fused_add_norm\": true, \"pad_vocab_size_multiple\": 8}";

static void test_round_trips(uint64_t seed) {
  export_opts hf = {HF_MAMBA, SF_BF16, SF_BF16, 0, 1, NULL, NULL, NULL, NULL};
  round_trip("tiny-mamba1", "hf-mamba", hf_mamba_cfg, &hf, seed);
  export_opts hf2 = {HF_MAMBA, SF_BF16, SF_F32, 0, 0, NULL, NULL, NULL, NULL};
  round_trip("tiny-mamba2", "hf-mamba2", hf_mamba2_cfg, &hf2, seed);
  export_opts nx = {NEOX, SF_F16, SF_F16, 2, 1, NULL, NULL, NULL, NULL};
  round_trip("tiny-transformer", "hf-neox-sharded", neox_cfg, &nx, seed);
  export_opts s2 = {MAMBA_SSM, SF_F32, SF_F32, 0, 0, NULL, NULL, NULL, NULL};
  round_trip("tiny-mamba2", "ssm-mamba2", ssm2_cfg, &s2, seed);
  export_opts s1 = {MAMBA_SSM, SF_F16, SF_F32, 2, 0, NULL, NULL, NULL, NULL};
  round_trip("tiny-mamba1", "ssm-mamba1-sharded", ssm1_cfg, &s1, seed);
}

/* Loading dir must fail with a message holding every string in want. */
static void expect_load_fails(const char *dir, sf_status code, const char *want1, const char *want2) {
  sf_model m;
  sf_error err;
  sf_error_clear(&err);
  sf_status rc = sf_model_load(dir, &cpu, &m, &err);
  CHECK_MSG(rc == code, "%s: status %d (%s), want %d", dir, (int)rc, err.msg, (int)code);
  CHECK_MSG(want1 == NULL || strstr(err.msg, want1), "'%s' lacks '%s'", err.msg, want1);
  CHECK_MSG(want2 == NULL || strstr(err.msg, want2), "'%s' lacks '%s'", err.msg, want2);
  CHECK(strchr(err.msg, '\n') == NULL);
  CHECK(m.tensors == NULL && m.n_tensors == 0);
}

/* A broken checkpoint of preset written under dirname with opts. */
static const char *broken(const char *preset, const char *dirname, const char *config, const export_opts *o) {
  sf_model_config c;
  sf_error err;
  REQUIRE(sf_model_preset(preset, &c, &err) == SF_OK);
  sf_model src;
  REQUIRE(sf_model_init_random(&c, &cpu, 7, &src, &err) == SF_OK);
  const char *dir = make_dir(dirname);
  if (config) write_text(path_in(dir, "config.json"), config);
  float **expected = calloc((size_t)src.n_tensors, sizeof *expected);
  REQUIRE(expected);
  export_model(&src, dir, o, expected);
  for (int32_t i = 0; i < src.n_tensors; i++) free(expected[i]);
  free(expected);
  sf_model_free(&src);
  return dir;
}

static void test_errors(void) {
  char want[700];
  export_opts o = {HF_MAMBA, SF_F32, SF_F32, 0, 0, NULL, "backbone.layers.1.mixer.x_proj.weight", NULL, NULL};
  const char *d = broken("tiny-mamba1", "bad-shape", hf_mamba_cfg, &o);
  snprintf(want, sizeof want, "%s/model.safetensors: tensor backbone.layers.1.mixer.x_proj.weight", d);
  expect_load_fails(d, SF_ERR_FORMAT, want, "shape [37, 128], config.json implies [36, 128]");

  export_opts o2 = {HF_MAMBA, SF_F32, SF_F32, 0, 0, "backbone.layers.1.mixer.D", NULL, NULL, NULL};
  d = broken("tiny-mamba2", "missing", hf_mamba2_cfg, &o2);
  snprintf(want, sizeof want, "%s/model.safetensors: missing tensor backbone.layers.1.mixer.D", d);
  expect_load_fails(d, SF_ERR_FORMAT, want, "layers.1.mixer.D");

  export_opts o3 = {NEOX, SF_F32, SF_F32, 2, 0, NULL, NULL, "gpt_neox.layers.1.mlp.dense_4h_to_h.bias", NULL};
  d = broken("tiny-transformer", "index-missing", neox_cfg, &o3);
  snprintf(want, sizeof want,
           "%s/model.safetensors.index.json: missing tensor gpt_neox.layers.1.mlp.dense_4h_to_h.bias", d);
  expect_load_fails(d, SF_ERR_FORMAT, want, NULL);

  export_opts o4 = {NEOX, SF_F32, SF_F32, 2, 0, NULL, NULL, NULL, "gpt_neox.embed_in.weight"};
  d = broken("tiny-transformer", "index-wrong", neox_cfg, &o4);
  snprintf(want, sizeof want, "%s/model-00002-of-00002.safetensors: missing tensor gpt_neox.embed_in.weight",
           d);
  expect_load_fails(d, SF_ERR_FORMAT, want, "the index lists it in this file");

  /* Untied transformer without embed_out. */
  export_opts o5 = {NEOX, SF_BF16, SF_BF16, 0, 0, "embed_out.weight", NULL, NULL, NULL};
  d = broken("tiny-transformer", "no-head", neox_cfg, &o5);
  expect_load_fails(d, SF_ERR_FORMAT, "missing tensor embed_out.weight", "lm_head.weight");

  /* config.json vocab disagrees with the embedding: shape error naming it. */
  export_opts o6 = {MAMBA_SSM, SF_F32, SF_F32, 0, 0, NULL, NULL, NULL, NULL};
  char cfg8[600];
  snprintf(cfg8, sizeof cfg8, "%s", ssm2_cfg);
  char *p = strstr(cfg8, "\"pad_vocab_size_multiple\": 16");
  REQUIRE(p);
  memcpy(p, "\"pad_vocab_size_multiple\": 8 ", strlen("\"pad_vocab_size_multiple\": 8 "));
  d = broken("tiny-mamba2", "vocab", cfg8, &o6);
  expect_load_fails(d, SF_ERR_FORMAT, "backbone.embedding.weight has shape [50288, 64]",
                    "implies [50280, 64]");

  /* Folder problems. */
  d = make_dir("empty");
  snprintf(want, sizeof want, "%s/config.json: cannot open", d);
  expect_load_fails(d, SF_ERR_IO, want, NULL);
  write_text(path_in(d, "config.json"), hf_mamba_cfg);
  expect_load_fails(d, SF_ERR_IO, "no model.safetensors or model.safetensors.index.json", d);
  write_text(path_in(d, "model.safetensors.index.json"), "{\"weight_map\": {\"a\": \"../x.safetensors\"}}");
  expect_load_fails(d, SF_ERR_FORMAT, "weight_map entry a is not a file name in the folder", NULL);
  write_text(path_in(d, "model.safetensors.index.json"), "{\"weight_map\": {\"a\": \"gone.safetensors\"}}");
  expect_load_fails(d, SF_ERR_IO, "gone.safetensors: cannot open", NULL);
  write_text(path_in(d, "model.safetensors.index.json"), "{\"weight_map\": [");
  expect_load_fails(d, SF_ERR_FORMAT, "model.safetensors.index.json: not valid JSON", NULL);

  /* Config problems: each names the file and the field. */
  static const struct {
    const char *json;
    sf_status code;
    const char *want;
  } cfgs[] = {
      {"{\"model_type\": \"mamba\", \"num_hidden_layers\": 2, \"vocab_size\": 8}", SF_ERR_FORMAT,
       "missing field hidden_size"},
      {"{\"model_type\": \"mamba\", \"hidden_size\": \"64\", \"num_hidden_layers\": 2, \"vocab_size\": 8}",
       SF_ERR_FORMAT, "field hidden_size must be a 32-bit integer"},
      {"{\"model_type\": \"mamba\", \"hidden_size\": 64, \"num_hidden_layers\": 2, \"vocab_size\": 8,"
       " \"use_bias\": true}",
       SF_ERR_UNSUPPORTED, "use_bias = true is not supported"},
      {"{\"model_type\": \"mamba\", \"hidden_size\": 64, \"num_hidden_layers\": 0, \"vocab_size\": 8}",
       SF_ERR_ARG, "n_layers must be positive"},
      {"{\"model_type\": \"mamba2\", \"hidden_size\": 64, \"num_hidden_layers\": 2, \"vocab_size\": 8,"
       " \"head_dim\": 16, \"num_heads\": 4}",
       SF_ERR_FORMAT, "num_heads (4) x head_dim (16)"},
      {"{\"model_type\": \"gpt_neox\", \"hidden_size\": 64, \"num_hidden_layers\": 2, \"vocab_size\": 8,"
       " \"num_attention_heads\": 4, \"intermediate_size\": 256, \"hidden_act\": \"relu\"}",
       SF_ERR_UNSUPPORTED, "hidden_act 'relu' is not supported"},
      {"{\"model_type\": \"gpt_neox\", \"hidden_size\": 64, \"num_hidden_layers\": 2, \"vocab_size\": 8,"
       " \"num_attention_heads\": 5, \"intermediate_size\": 256}",
       SF_ERR_FORMAT, "must be a multiple of num_attention_heads"},
      {"{\"model_type\": \"llama\"}", SF_ERR_UNSUPPORTED, "model_type 'llama' is not supported"},
      {"{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 50277, \"d_intermediate\": 128}",
       SF_ERR_UNSUPPORTED, "d_intermediate = 128"},
      {"{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 50277, \"attn_layer_idx\": [1]}",
       SF_ERR_UNSUPPORTED, "attn_layer_idx"},
      {"{\"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 50277, \"ssm_cfg\": {\"layer\": \"Mamba3\"}}",
       SF_ERR_UNSUPPORTED, "ssm_cfg.layer"},
      {"{\"hidden\": 1}", SF_ERR_FORMAT, "not a Mamba, Mamba-2 or GPT-NeoX config"},
      {"[1, 2]", SF_ERR_FORMAT, "not a JSON object"},
      {"{\"model_type\": ", SF_ERR_FORMAT, "not valid JSON"},
  };
  d = make_dir("configs");
  for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
    write_text(path_in(d, "config.json"), cfgs[i].json);
    snprintf(want, sizeof want, "%s/config.json", d);
    expect_load_fails(d, cfgs[i].code, want, cfgs[i].want);
  }
}

/* Other config spellings load to the same shapes. */
static void test_config_variants(uint64_t seed) {
  /* Newer transformers spell the rotary settings rope_theta /
   * partial_rotary_factor. */
  const char *neox_new =
      "{\"model_type\": \"gpt_neox\", \"hidden_size\": 64, \"num_hidden_layers\": 2,"
      " \"num_attention_heads\": 4, \"intermediate_size\": 256, \"rope_parameters\":"
      " {\"rope_theta\": 10000.0, \"partial_rotary_factor\": 0.25, \"rope_type\": \"default\"},"
      " \"use_parallel_residual\": true, \"layer_norm_eps\": 1e-05, \"vocab_size\": 50304,"
      " \"tie_word_embeddings\": false}";
  export_opts o = {NEOX, SF_BF16, SF_BF16, 0, 0, NULL, NULL, NULL, NULL};
  round_trip("tiny-transformer", "neox-rope-params", neox_new, &o, seed);
  /* time_step_rank "auto" and defaults for absent keys. */
  const char *mamba_auto =
      "{\"model_type\": \"mamba\", \"hidden_size\": 64, \"num_hidden_layers\": 2, \"vocab_size\": 50280,"
      " \"time_step_rank\": \"auto\"}";
  export_opts o2 = {HF_MAMBA, SF_F32, SF_F32, 0, 0, NULL, NULL, NULL, NULL};
  round_trip("tiny-mamba1", "mamba-auto", mamba_auto, &o2, seed);
  /* mamba_ssm's config re-saved through transformers (model_type added,
   * still d_model / n_layer / ssm_cfg). */
  const char *ssm_typed =
      "{\"model_type\": \"mamba\", \"d_model\": 64, \"n_layer\": 2, \"vocab_size\": 50277,"
      " \"ssm_cfg\": {\"layer\": \"Mamba2\", \"d_state\": 16, \"headdim\": 16, \"chunk_size\": 16},"
      " \"pad_vocab_size_multiple\": 16, \"tie_embeddings\": true}";
  export_opts o3 = {MAMBA_SSM, SF_BF16, SF_F32, 0, 0, NULL, NULL, NULL, NULL};
  round_trip("tiny-mamba2", "ssm-typed", ssm_typed, &o3, seed);
}

/* Loading into a bf16 backend converts f16 checkpoints on the host. */
static void test_bf16_backend(uint64_t seed) {
  sf_ops ops = sf_ops_cpu;
  ops.act_dtype = SF_BF16;
  sf_op_ctx bf = cpu;
  bf.ops = &ops;
  export_opts o = {NEOX, SF_F16, SF_F16, 0, 0, NULL, NULL, NULL, NULL};
  sf_model_config c;
  sf_error err;
  REQUIRE(sf_model_preset("tiny-transformer", &c, &err) == SF_OK);
  sf_model src;
  REQUIRE(sf_model_init_random(&c, &cpu, seed, &src, &err) == SF_OK);
  const char *dir = make_dir("neox-bf16");
  write_text(path_in(dir, "config.json"), neox_cfg);
  float **expected = calloc((size_t)src.n_tensors, sizeof *expected);
  REQUIRE(expected);
  export_model(&src, dir, &o, expected);
  sf_model m;
  sf_status rc = sf_model_load(dir, &bf, &m, &err);
  CHECK_MSG(rc == SF_OK, "%s", err.msg);
  if (rc == SF_OK) {
    for (int32_t i = 0; i < m.n_tensors; i++) {
      const sf_tensor *t = &m.tensors[i];
      CHECK(t->dtype == SF_BF16);
      const uint16_t *got = t->data;
      int64_t bad = 0;
      for (int64_t k = 0; k < sf_tensor_numel(t); k++) bad += got[k] != sf_f32_to_bf16(expected[i][k]);
      CHECK_MSG(bad == 0, "%s: %lld values differ", t->name, (long long)bad);
    }
    sf_model_free(&m);
  }
  for (int32_t i = 0; i < src.n_tensors; i++) free(expected[i]);
  free(expected);
  sf_model_free(&src);
}

static void cleanup(void) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void) {
  uint64_t seed = sf_test_seed();
  sf_error err;
  REQUIRE(mkdtemp(tmpdir) != NULL);
  REQUIRE(sf_cpu_ctx_init(&cpu, 1, &err) == SF_OK);
  test_round_trips(seed);
  test_errors();
  test_config_variants(seed);
  test_bf16_backend(seed);
  sf_cpu_ctx_destroy(&cpu);
  cleanup();
  return sf_test_finish("test_model_load");
}
