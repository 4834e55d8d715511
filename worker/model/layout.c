/* The tensor list of each family. Shapes follow the PyTorch modules of the
 * originals (Linear weights [out, in]), except conv1d weights, which are
 * [channels, d_conv] here (the checkpoints' [channels, 1, d_conv] squeezed),
 * and A, which is stored as -exp(A_log), the form the scan ops take. */
#include "model/layout.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int64_t sf_tensor_spec_numel(const sf_tensor_spec *s) {
  int64_t n = 1;
  for (int32_t i = 0; i < s->ndim; i++) n *= s->shape[i];
  return n;
}

int64_t sf_tensor_spec_bytes(const sf_tensor_spec *s) {
  return sf_tensor_spec_numel(s) * (int64_t)sf_dtype_size(s->dtype);
}

typedef struct builder {
  sf_tensor_spec *specs;
  int32_t n, cap;
  sf_dtype act;
} builder;

/* Appends one spec; shape given as ndim int64 values. Capacity is sized up
 * front by the caller, so this cannot fail. */
static void add(builder *b, sf_tensor_role role, int32_t layer, int f32, int32_t ndim, ...) {
  sf_tensor_spec *s = &b->specs[b->n++];
  s->role = role;
  s->layer = layer;
  s->dtype = f32 ? SF_F32 : b->act;
  s->ndim = ndim;
  va_list ap;
  va_start(ap, ndim);
  for (int32_t i = 0; i < 4; i++) s->shape[i] = i < ndim ? va_arg(ap, int64_t) : 0;
  va_end(ap);
}

static void set_name(sf_tensor_spec *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_name(sf_tensor_spec *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->name, sizeof s->name, fmt, ap);
  va_end(ap);
}

/* Canonical names: scanflash's own, close to the mamba_ssm / GPT-NeoX module
 * paths so a dump reads naturally next to a checkpoint. */
static void name_spec(sf_tensor_spec *s) {
  int l = s->layer;
  switch (s->role) {
    case SF_ROLE_EMBED: set_name(s, "embed.weight"); return;
    case SF_ROLE_FINAL_NORM_W: set_name(s, "final_norm.weight"); return;
    case SF_ROLE_FINAL_NORM_B: set_name(s, "final_norm.bias"); return;
    case SF_ROLE_LM_HEAD: set_name(s, "lm_head.weight"); return;
    case SF_ROLE_NORM_W: set_name(s, "layers.%d.norm.weight", l); return;
    case SF_ROLE_IN_PROJ_W: set_name(s, "layers.%d.mixer.in_proj.weight", l); return;
    case SF_ROLE_CONV_W: set_name(s, "layers.%d.mixer.conv1d.weight", l); return;
    case SF_ROLE_CONV_B: set_name(s, "layers.%d.mixer.conv1d.bias", l); return;
    case SF_ROLE_X_PROJ_W: set_name(s, "layers.%d.mixer.x_proj.weight", l); return;
    case SF_ROLE_DT_PROJ_W: set_name(s, "layers.%d.mixer.dt_proj.weight", l); return;
    case SF_ROLE_DT_BIAS: set_name(s, "layers.%d.mixer.dt_bias", l); return;
    case SF_ROLE_A: set_name(s, "layers.%d.mixer.A", l); return;
    case SF_ROLE_D: set_name(s, "layers.%d.mixer.D", l); return;
    case SF_ROLE_GATE_NORM_W: set_name(s, "layers.%d.mixer.norm.weight", l); return;
    case SF_ROLE_OUT_PROJ_W: set_name(s, "layers.%d.mixer.out_proj.weight", l); return;
    case SF_ROLE_LN1_W: set_name(s, "layers.%d.input_norm.weight", l); return;
    case SF_ROLE_LN1_B: set_name(s, "layers.%d.input_norm.bias", l); return;
    case SF_ROLE_LN2_W: set_name(s, "layers.%d.post_attn_norm.weight", l); return;
    case SF_ROLE_LN2_B: set_name(s, "layers.%d.post_attn_norm.bias", l); return;
    case SF_ROLE_QKV_W: set_name(s, "layers.%d.attn.qkv.weight", l); return;
    case SF_ROLE_QKV_B: set_name(s, "layers.%d.attn.qkv.bias", l); return;
    case SF_ROLE_DENSE_W: set_name(s, "layers.%d.attn.dense.weight", l); return;
    case SF_ROLE_DENSE_B: set_name(s, "layers.%d.attn.dense.bias", l); return;
    case SF_ROLE_FC_IN_W: set_name(s, "layers.%d.mlp.fc_in.weight", l); return;
    case SF_ROLE_FC_IN_B: set_name(s, "layers.%d.mlp.fc_in.bias", l); return;
    case SF_ROLE_FC_OUT_W: set_name(s, "layers.%d.mlp.fc_out.weight", l); return;
    case SF_ROLE_FC_OUT_B: set_name(s, "layers.%d.mlp.fc_out.bias", l); return;
  }
}

static void mamba1_layer(builder *b, const sf_model_config *c, int32_t l) {
  int64_t d = c->d_model, di = c->d_inner, n = c->d_state, r = c->dt_rank;
  add(b, SF_ROLE_NORM_W, l, 0, 1, d);
  add(b, SF_ROLE_IN_PROJ_W, l, 0, 2, 2 * di, d);
  add(b, SF_ROLE_CONV_W, l, 0, 2, di, (int64_t)c->d_conv);
  add(b, SF_ROLE_CONV_B, l, 0, 1, di);
  add(b, SF_ROLE_X_PROJ_W, l, 0, 2, r + 2 * n, di);
  add(b, SF_ROLE_DT_PROJ_W, l, 0, 2, di, r);
  add(b, SF_ROLE_DT_BIAS, l, 1, 1, di);
  add(b, SF_ROLE_A, l, 1, 2, di, n);
  add(b, SF_ROLE_D, l, 1, 1, di);
  add(b, SF_ROLE_OUT_PROJ_W, l, 0, 2, d, di);
}

static void mamba2_layer(builder *b, const sf_model_config *c, int32_t l) {
  int64_t d = c->d_model, di = c->d_inner, gn = (int64_t)c->n_groups * c->d_state;
  int64_t h = c->ssm_heads, conv_dim = di + 2 * gn;
  add(b, SF_ROLE_NORM_W, l, 0, 1, d);
  add(b, SF_ROLE_IN_PROJ_W, l, 0, 2, 2 * di + 2 * gn + h, d);
  add(b, SF_ROLE_CONV_W, l, 0, 2, conv_dim, (int64_t)c->d_conv);
  add(b, SF_ROLE_CONV_B, l, 0, 1, conv_dim);
  add(b, SF_ROLE_DT_BIAS, l, 1, 1, h);
  add(b, SF_ROLE_A, l, 1, 1, h);
  add(b, SF_ROLE_D, l, 1, 1, h);
  add(b, SF_ROLE_GATE_NORM_W, l, 0, 1, di);
  add(b, SF_ROLE_OUT_PROJ_W, l, 0, 2, d, di);
}

static void transformer_layer(builder *b, const sf_model_config *c, int32_t l) {
  int64_t d = c->d_model, hd = c->head_dim, ff = c->d_ff;
  int64_t qkv = ((int64_t)c->n_heads + 2 * (int64_t)c->n_kv_heads) * hd, attn = c->n_heads * hd;
  add(b, SF_ROLE_LN1_W, l, 0, 1, d);
  add(b, SF_ROLE_LN1_B, l, 0, 1, d);
  add(b, SF_ROLE_LN2_W, l, 0, 1, d);
  add(b, SF_ROLE_LN2_B, l, 0, 1, d);
  add(b, SF_ROLE_QKV_W, l, 0, 2, qkv, d);
  add(b, SF_ROLE_QKV_B, l, 0, 1, qkv);
  add(b, SF_ROLE_DENSE_W, l, 0, 2, d, attn);
  add(b, SF_ROLE_DENSE_B, l, 0, 1, d);
  add(b, SF_ROLE_FC_IN_W, l, 0, 2, ff, d);
  add(b, SF_ROLE_FC_IN_B, l, 0, 1, ff);
  add(b, SF_ROLE_FC_OUT_W, l, 0, 2, d, ff);
  add(b, SF_ROLE_FC_OUT_B, l, 0, 1, d);
}

enum { MAX_PER_LAYER = 12, MAX_GLOBAL = 4 };

sf_status sf_model_layout(const sf_model_config *cfg, sf_dtype act, sf_tensor_spec **specs, int32_t *n,
                          sf_error *err) {
  *specs = NULL;
  *n = 0;
  SF_TRY(sf_model_config_validate(cfg, err));
  if (act != SF_F32 && act != SF_BF16 && act != SF_F16)
    return sf_fail(err, SF_ERR_ARG, "%s: unknown weight dtype %d", cfg->name, (int)act);
  if (cfg->n_layers > (INT32_MAX - MAX_GLOBAL) / MAX_PER_LAYER)
    return sf_fail(err, SF_ERR_ARG, "%s: n_layers %d is too large", cfg->name, cfg->n_layers);
  builder b = {0};
  b.act = act;
  b.cap = cfg->n_layers * MAX_PER_LAYER + MAX_GLOBAL;
  b.specs = calloc((size_t)b.cap, sizeof *b.specs);
  if (!b.specs) return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory for the tensor list", cfg->name);
  int64_t v = cfg->vocab_size, d = cfg->d_model;
  add(&b, SF_ROLE_EMBED, -1, 0, 2, v, d);
  for (int32_t l = 0; l < cfg->n_layers; l++) {
    switch (cfg->arch) {
      case SF_ARCH_MAMBA1: mamba1_layer(&b, cfg, l); break;
      case SF_ARCH_MAMBA2: mamba2_layer(&b, cfg, l); break;
      case SF_ARCH_TRANSFORMER: transformer_layer(&b, cfg, l); break;
    }
  }
  add(&b, SF_ROLE_FINAL_NORM_W, -1, 0, 1, d);
  if (cfg->arch == SF_ARCH_TRANSFORMER) add(&b, SF_ROLE_FINAL_NORM_B, -1, 0, 1, d);
  if (!cfg->tie_embeddings) add(&b, SF_ROLE_LM_HEAD, -1, 0, 2, v, d);
  for (int32_t i = 0; i < b.n; i++) name_spec(&b.specs[i]);
  *specs = b.specs;
  *n = b.n;
  return SF_OK;
}

int64_t sf_model_param_count(const sf_model_config *cfg) {
  sf_tensor_spec *specs;
  int32_t n;
  if (sf_model_layout(cfg, SF_F32, &specs, &n, NULL) != SF_OK) return -1;
  int64_t total = 0;
  for (int32_t i = 0; i < n; i++) total += sf_tensor_spec_numel(&specs[i]);
  free(specs);
  return total;
}
