/* config.json of the three checkpoint families. A key that is missing takes
 * the default of the class that wrote the file (Hugging Face drops keys equal
 * to both PretrainedConfig's and the model class's defaults when saving, so
 * e.g. a missing tie_word_embeddings means true); a key that is present with
 * the wrong type is an error naming it. */
#include "model/checkpoint_config.h"
#include "model/text.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct reader {
  const char *path;
  sf_error *err;
} reader;

static const cJSON *item(const cJSON *obj, const char *key) {
  return obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

/* Integer field: absent -> def (or an error when required). */
static sf_status get_int(const reader *r, const cJSON *obj, const char *key, int required, int64_t def,
                         int32_t *out) {
  const cJSON *v = item(obj, key);
  if (!v || cJSON_IsNull(v)) {
    if (required) return sf_fail(r->err, SF_ERR_FORMAT, "%s: missing field %s", r->path, key);
    *out = (int32_t)def;
    return SF_OK;
  }
  if (!cJSON_IsNumber(v) || floor(v->valuedouble) != v->valuedouble || v->valuedouble < -2147483648.0 ||
      v->valuedouble > 2147483647.0)
    return sf_fail(r->err, SF_ERR_FORMAT, "%s: field %s must be a 32-bit integer", r->path, key);
  *out = (int32_t)v->valuedouble;
  return SF_OK;
}

static sf_status get_num(const reader *r, const cJSON *obj, const char *key, double def, double *out) {
  const cJSON *v = item(obj, key);
  if (!v || cJSON_IsNull(v)) {
    *out = def;
    return SF_OK;
  }
  if (!cJSON_IsNumber(v))
    return sf_fail(r->err, SF_ERR_FORMAT, "%s: field %s must be a number", r->path, key);
  *out = v->valuedouble;
  return SF_OK;
}

/* The first of several spellings that is present, else def. */
static sf_status first_num(const reader *r, const cJSON *const objs[3], const char *const keys[3], double def,
                           double *out) {
  for (int i = 0; i < 3; i++)
    if (item(objs[i], keys[i])) return get_num(r, objs[i], keys[i], def, out);
  *out = def;
  return SF_OK;
}

static sf_status get_bool(const reader *r, const cJSON *obj, const char *key, int def, int *out) {
  const cJSON *v = item(obj, key);
  if (!v || cJSON_IsNull(v)) {
    *out = def;
    return SF_OK;
  }
  if (!cJSON_IsBool(v))
    return sf_fail(r->err, SF_ERR_FORMAT, "%s: field %s must be true or false", r->path, key);
  *out = cJSON_IsTrue(v);
  return SF_OK;
}

/* A boolean the engine supports only at one value. */
static sf_status require_bool(const reader *r, const cJSON *obj, const char *key, int def, int want) {
  int v = def;
  SF_TRY(get_bool(r, obj, key, def, &v));
  if (v != want)
    return sf_fail(r->err, SF_ERR_UNSUPPORTED, "%s: %s = %s is not supported (scanflash runs %s)", r->path,
                   key, v ? "true" : "false", want ? "true" : "false");
  return SF_OK;
}

/* dt_rank / time_step_rank: an integer or "auto" (ceil(d_model / 16)). */
static sf_status get_dt_rank(const reader *r, const cJSON *obj, const char *key, int32_t d_model,
                             int32_t *out) {
  const cJSON *v = item(obj, key);
  if (!v || cJSON_IsNull(v) || (cJSON_IsString(v) && !strcmp(v->valuestring, "auto"))) {
    *out = (d_model + 15) / 16;
    return SF_OK;
  }
  return get_int(r, obj, key, 1, 0, out);
}

static sf_status expand_inner(const reader *r, const cJSON *obj, const char *key, int32_t d_model,
                              int32_t *d_inner) {
  double expand = 2.0;
  SF_TRY(get_num(r, obj, key, 2.0, &expand));
  double di = expand * (double)d_model;
  if (!(expand > 0) || di > 2147483647.0 || floor(di) != di)
    return sf_fail(r->err, SF_ERR_FORMAT, "%s: field %s (%g) times d_model (%d) is not a valid width",
                   r->path, key, expand, d_model);
  *d_inner = (int32_t)di;
  return SF_OK;
}

static sf_status set_eps(const reader *r, const cJSON *obj, const char *key, sf_model_config *c) {
  double eps = 1e-5;
  SF_TRY(get_num(r, obj, key, 1e-5, &eps));
  c->norm_eps = (float)eps;
  return SF_OK;
}

/* Hugging Face MambaConfig (model_type "mamba"). */
static sf_status hf_mamba(const reader *r, const cJSON *j, sf_model_config *c) {
  c->arch = SF_ARCH_MAMBA1;
  SF_TRY(get_int(r, j, "hidden_size", 1, 0, &c->d_model));
  SF_TRY(get_int(r, j, "num_hidden_layers", 1, 0, &c->n_layers));
  SF_TRY(get_int(r, j, "vocab_size", 1, 0, &c->vocab_size));
  SF_TRY(get_int(r, j, "state_size", 0, 16, &c->d_state));
  SF_TRY(get_int(r, j, "conv_kernel", 0, 4, &c->d_conv));
  SF_TRY(expand_inner(r, j, "expand", c->d_model, &c->d_inner));
  if (item(j, "intermediate_size")) SF_TRY(get_int(r, j, "intermediate_size", 1, 0, &c->d_inner));
  SF_TRY(get_dt_rank(r, j, "time_step_rank", c->d_model, &c->dt_rank));
  SF_TRY(set_eps(r, j, "layer_norm_epsilon", c));
  SF_TRY(get_bool(r, j, "tie_word_embeddings", 1, &c->tie_embeddings));
  SF_TRY(get_bool(r, j, "residual_in_fp32", 1, &c->residual_in_fp32));
  SF_TRY(require_bool(r, j, "use_bias", 0, 0));
  SF_TRY(require_bool(r, j, "use_conv_bias", 1, 1));
  return SF_OK;
}

/* Hugging Face Mamba2Config (model_type "mamba2"). */
static sf_status hf_mamba2(const reader *r, const cJSON *j, sf_model_config *c) {
  c->arch = SF_ARCH_MAMBA2;
  SF_TRY(get_int(r, j, "hidden_size", 1, 0, &c->d_model));
  SF_TRY(get_int(r, j, "num_hidden_layers", 1, 0, &c->n_layers));
  SF_TRY(get_int(r, j, "vocab_size", 1, 0, &c->vocab_size));
  SF_TRY(get_int(r, j, "state_size", 0, 128, &c->d_state));
  SF_TRY(get_int(r, j, "head_dim", 0, 64, &c->ssm_head_dim));
  SF_TRY(get_int(r, j, "n_groups", 0, 8, &c->n_groups));
  SF_TRY(get_int(r, j, "conv_kernel", 0, 4, &c->d_conv));
  SF_TRY(get_int(r, j, "chunk_size", 0, 256, &c->chunk_size));
  SF_TRY(expand_inner(r, j, "expand", c->d_model, &c->d_inner));
  int32_t want_heads = c->ssm_head_dim > 0 ? c->d_inner / c->ssm_head_dim : 0;
  SF_TRY(get_int(r, j, "num_heads", 0, want_heads, &c->ssm_heads));
  if (c->ssm_heads != want_heads || (int64_t)c->ssm_heads * c->ssm_head_dim != c->d_inner)
    return sf_fail(r->err, SF_ERR_FORMAT,
                   "%s: num_heads (%d) x head_dim (%d) does not equal expand x hidden_size (%d)", r->path,
                   c->ssm_heads, c->ssm_head_dim, c->d_inner);
  SF_TRY(set_eps(r, j, "layer_norm_epsilon", c));
  SF_TRY(get_bool(r, j, "tie_word_embeddings", 1, &c->tie_embeddings));
  SF_TRY(get_bool(r, j, "residual_in_fp32", 1, &c->residual_in_fp32));
  SF_TRY(require_bool(r, j, "use_bias", 0, 0));
  SF_TRY(require_bool(r, j, "use_conv_bias", 1, 1));
  SF_TRY(require_bool(r, j, "norm_before_gate", 0, 0));
  return SF_OK;
}

/* Hugging Face GPTNeoXConfig (model_type "gpt_neox"). Newer transformers
 * releases spell the rotary settings rope_theta / partial_rotary_factor,
 * possibly inside rope_parameters; each spelling is accepted. */
static sf_status hf_neox(const reader *r, const cJSON *j, sf_model_config *c) {
  c->arch = SF_ARCH_TRANSFORMER;
  SF_TRY(get_int(r, j, "hidden_size", 1, 0, &c->d_model));
  SF_TRY(get_int(r, j, "num_hidden_layers", 1, 0, &c->n_layers));
  SF_TRY(get_int(r, j, "vocab_size", 1, 0, &c->vocab_size));
  SF_TRY(get_int(r, j, "num_attention_heads", 1, 0, &c->n_heads));
  SF_TRY(get_int(r, j, "intermediate_size", 1, 0, &c->d_ff));
  if (c->n_heads <= 0 || c->d_model % c->n_heads != 0)
    return sf_fail(r->err, SF_ERR_FORMAT,
                   "%s: hidden_size (%d) must be a multiple of num_attention_heads (%d)", r->path, c->d_model,
                   c->n_heads);
  c->head_dim = c->d_model / c->n_heads;
  c->n_kv_heads = c->n_heads;
  const cJSON *rope = item(j, "rope_parameters");
  const cJSON *objs[3] = {j, j, rope};
  const char *pct_keys[3] = {"rotary_pct", "partial_rotary_factor", "partial_rotary_factor"};
  const char *base_keys[3] = {"rotary_emb_base", "rope_theta", "rope_theta"};
  double pct = 0.25, base = 10000.0;
  SF_TRY(first_num(r, objs, pct_keys, 0.25, &pct));
  SF_TRY(first_num(r, objs, base_keys, 10000.0, &base));
  if (!(pct >= 0 && pct <= 1))
    return sf_fail(r->err, SF_ERR_FORMAT, "%s: rotary_pct %g is not within [0, 1]", r->path, pct);
  c->rot_dim = (int32_t)(c->head_dim * pct); /* int(head_size * rotary_pct), as GPT-NeoX */
  c->rotary_base = (float)base;
  SF_TRY(get_bool(r, j, "use_parallel_residual", 1, &c->parallel_residual));
  SF_TRY(set_eps(r, j, "layer_norm_eps", c));
  SF_TRY(get_bool(r, j, "tie_word_embeddings", 0, &c->tie_embeddings));
  SF_TRY(require_bool(r, j, "attention_bias", 1, 1));
  const cJSON *act = item(j, "hidden_act");
  if (act && !cJSON_IsString(act))
    return sf_fail(r->err, SF_ERR_FORMAT, "%s: field hidden_act must be a string", r->path);
  if (act && strcmp(act->valuestring, "gelu") != 0)
    return sf_fail(r->err, SF_ERR_UNSUPPORTED,
                   "%s: hidden_act '%.32s' is not supported (scanflash runs gelu)", r->path,
                   sf_printable(act->valuestring));
  return SF_OK;
}

/* mamba_ssm's MambaConfig (config_mamba.py): a MixerModel of Mamba or
 * Mamba2 blocks, ssm_cfg holding the block's arguments; vocab_size is padded
 * up to pad_vocab_size_multiple as MambaLMHeadModel does. */
static sf_status mamba_ssm(const reader *r, const cJSON *j, sf_model_config *c) {
  const cJSON *ssm = item(j, "ssm_cfg");
  if (ssm && !cJSON_IsObject(ssm))
    return sf_fail(r->err, SF_ERR_FORMAT, "%s: field ssm_cfg must be an object", r->path);
  const cJSON *layer = item(ssm, "layer");
  int v2 = 0;
  if (layer) {
    if (!cJSON_IsString(layer) ||
        (strcmp(layer->valuestring, "Mamba1") && strcmp(layer->valuestring, "Mamba2")))
      return sf_fail(r->err, SF_ERR_UNSUPPORTED, "%s: ssm_cfg.layer must be \"Mamba1\" or \"Mamba2\"",
                     r->path);
    v2 = !strcmp(layer->valuestring, "Mamba2");
  }
  c->arch = v2 ? SF_ARCH_MAMBA2 : SF_ARCH_MAMBA1;
  SF_TRY(get_int(r, j, "d_model", 1, 0, &c->d_model));
  SF_TRY(get_int(r, j, "n_layer", 1, 0, &c->n_layers));
  int32_t vocab = 0, mult = 8;
  SF_TRY(get_int(r, j, "vocab_size", 1, 0, &vocab));
  SF_TRY(get_int(r, j, "pad_vocab_size_multiple", 0, 8, &mult));
  if (mult <= 0)
    return sf_fail(r->err, SF_ERR_FORMAT, "%s: pad_vocab_size_multiple must be positive", r->path);
  if (vocab <= 0 || (int64_t)vocab + mult > INT32_MAX)
    return sf_fail(r->err, SF_ERR_FORMAT, "%s: vocab_size %d is out of range", r->path, vocab);
  c->vocab_size = (int32_t)(((int64_t)vocab + mult - 1) / mult * mult);
  SF_TRY(get_bool(r, j, "tie_embeddings", 1, &c->tie_embeddings));
  SF_TRY(get_bool(r, j, "residual_in_fp32", 1, &c->residual_in_fp32));
  SF_TRY(require_bool(r, j, "rms_norm", 1, 1));
  int32_t d_mlp = 0;
  SF_TRY(get_int(r, j, "d_intermediate", 0, 0, &d_mlp));
  if (d_mlp != 0)
    return sf_fail(r->err, SF_ERR_UNSUPPORTED, "%s: d_intermediate = %d (MLP blocks) is not supported",
                   r->path, d_mlp);
  const cJSON *attn = item(j, "attn_layer_idx");
  if (attn && !(cJSON_IsArray(attn) && cJSON_GetArraySize(attn) == 0))
    return sf_fail(r->err, SF_ERR_UNSUPPORTED,
                   "%s: attn_layer_idx (hybrid attention layers) is not supported", r->path);
  c->norm_eps = 1e-5f; /* MixerModel's norm_epsilon default; not in the config */
  SF_TRY(get_int(r, ssm, "d_state", 0, v2 ? 128 : 16, &c->d_state));
  SF_TRY(get_int(r, ssm, "d_conv", 0, 4, &c->d_conv));
  SF_TRY(expand_inner(r, ssm, "expand", c->d_model, &c->d_inner));
  SF_TRY(require_bool(r, ssm, "bias", 0, 0));
  SF_TRY(require_bool(r, ssm, "conv_bias", 1, 1));
  if (!v2) return get_dt_rank(r, ssm, "dt_rank", c->d_model, &c->dt_rank);
  SF_TRY(get_int(r, ssm, "headdim", 0, 64, &c->ssm_head_dim));
  SF_TRY(get_int(r, ssm, "ngroups", 0, 1, &c->n_groups));
  SF_TRY(get_int(r, ssm, "chunk_size", 0, 256, &c->chunk_size));
  int32_t d_ssm = 0;
  SF_TRY(get_int(r, ssm, "d_ssm", 0, c->d_inner, &d_ssm));
  if (d_ssm != c->d_inner)
    return sf_fail(r->err, SF_ERR_UNSUPPORTED, "%s: ssm_cfg.d_ssm = %d (partial SSM width) is not supported",
                   r->path, d_ssm);
  SF_TRY(require_bool(r, ssm, "rmsnorm", 1, 1));
  SF_TRY(require_bool(r, ssm, "norm_before_gate", 0, 0));
  SF_TRY(require_bool(r, ssm, "D_has_hdim", 0, 0));
  c->ssm_heads = c->ssm_head_dim > 0 ? c->d_inner / c->ssm_head_dim : 0;
  return SF_OK;
}

sf_status sf_checkpoint_config_parse(const char *path, const char *text, const char *name,
                                     sf_model_config *cfg, sf_ckpt_scheme *scheme, sf_error *err) {
  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->name, sizeof cfg->name, "%s", name);
  reader r = {path, err};
  cJSON *j = cJSON_Parse(text);
  if (!j) return sf_fail(err, SF_ERR_FORMAT, "%s: not valid JSON", path);
  sf_status rc = SF_OK;
  const cJSON *type = item(j, "model_type");
  /* mamba_ssm's own config (d_model, n_layer, no hidden_size); some copies
   * re-saved through transformers add model_type "mamba" to it. */
  int ssm_style = item(j, "d_model") && item(j, "n_layer") && !item(j, "hidden_size") &&
                  (!type || (cJSON_IsString(type) &&
                             (!strcmp(type->valuestring, "mamba") || !strcmp(type->valuestring, "mamba2"))));
  if (!cJSON_IsObject(j)) {
    rc = sf_fail(err, SF_ERR_FORMAT, "%s: not a JSON object", path);
  } else if (type && !cJSON_IsString(type)) {
    rc = sf_fail(err, SF_ERR_FORMAT, "%s: field model_type must be a string", path);
  } else if (ssm_style) {
    *scheme = SF_CKPT_MAMBA_SSM;
    rc = mamba_ssm(&r, j, cfg);
  } else if (type && !strcmp(type->valuestring, "mamba")) {
    *scheme = SF_CKPT_HF_MAMBA;
    rc = hf_mamba(&r, j, cfg);
  } else if (type && !strcmp(type->valuestring, "mamba2")) {
    *scheme = SF_CKPT_HF_MAMBA;
    rc = hf_mamba2(&r, j, cfg);
  } else if (type && !strcmp(type->valuestring, "gpt_neox")) {
    *scheme = SF_CKPT_GPT_NEOX;
    rc = hf_neox(&r, j, cfg);
  } else if (type) {
    rc = sf_fail(err, SF_ERR_UNSUPPORTED, "%s: model_type '%.64s' is not supported (mamba, mamba2, gpt_neox)",
                 path, sf_printable(type->valuestring));
  } else {
    rc = sf_fail(err, SF_ERR_FORMAT,
                 "%s: no model_type and no d_model/n_layer: not a Mamba, Mamba-2 or GPT-NeoX config", path);
  }
  cJSON_Delete(j);
  if (rc == SF_OK) {
    rc = sf_model_config_validate(cfg, err);
    if (rc != SF_OK) sf_fail_context(err, "%s", path);
  }
  return rc;
}
