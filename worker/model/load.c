/* sf_model_load: a checkpoint folder (config.json + model.safetensors, or
 * shards listed in model.safetensors.index.json) into backend memory.
 *
 * Every tensor of the layout is looked up under its checkpoint name, its
 * shape checked against the config, read in bounded chunks, converted to the
 * tensor's dtype (A_log also to A = -exp(A_log)) and uploaded. Tensors the
 * layout does not need (rotary inv_freq and attention-mask buffers, a tied
 * lm_head) are ignored. Host memory stays bounded (one CHUNK buffer): upload
 * must have consumed it when it returns, as cpu's memcpy and CUDA's pageable
 * cudaMemcpy do. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/checkpoint_config.h"
#include "model/layout.h"
#include "model/safetensors.h"
#include "model/text.h"
#include "scanflash/files.h"

enum { CHUNK = 1 << 20, NAME_MAX_LEN = 160 };

typedef struct shard_set {
  char *index_path;        /* NULL for a single model.safetensors */
  cJSON *index;            /* the parsed index file */
  const cJSON *weight_map; /* name -> shard file name */
  int32_t n;
  sf_safetensors *files;
} shard_set;

static char *join(const char *dir, const char *name) {
  size_t len = strlen(dir) + strlen(name) + 2;
  char *p = malloc(len);
  if (p) snprintf(p, len, "%s/%s", dir, name);
  return p;
}

static void shards_close(shard_set *s) {
  for (int32_t i = 0; i < s->n; i++) sf_safetensors_close(&s->files[i]);
  free(s->files);
  cJSON_Delete(s->index);
  free(s->index_path);
  memset(s, 0, sizeof *s);
}

/* Opens one shard file by name (relative to dir) unless already open. */
static sf_status open_shard(shard_set *s, const char *dir, const char *file, sf_error *err) {
  char *path = join(dir, file);
  if (!path) return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", dir);
  for (int32_t i = 0; i < s->n; i++)
    if (!strcmp(s->files[i].path, path)) {
      free(path);
      return SF_OK;
    }
  sf_status rc = sf_safetensors_open(path, &s->files[s->n], err);
  free(path);
  if (rc == SF_OK) s->n++;
  return rc;
}

static sf_status open_index(shard_set *s, const char *dir, sf_error *err) {
  char *text;
  size_t size;
  SF_TRY(sf_read_file(s->index_path, &text, &size, err));
  s->index = cJSON_Parse(text);
  free(text);
  const char *p = s->index_path;
  if (!s->index) return sf_fail(err, SF_ERR_FORMAT, "%s: not valid JSON", p);
  s->weight_map = cJSON_GetObjectItemCaseSensitive(s->index, "weight_map");
  if (!cJSON_IsObject(s->weight_map)) return sf_fail(err, SF_ERR_FORMAT, "%s: no weight_map object", p);
  int count = cJSON_GetArraySize(s->weight_map);
  s->files = calloc((size_t)(count > 0 ? count : 1), sizeof *s->files);
  if (!s->files) return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", p);
  for (const cJSON *e = s->weight_map->child; e; e = e->next) {
    /* Shards are plain file names next to the index: nothing outside dir. */
    if (!cJSON_IsString(e) || !e->valuestring[0] || strchr(e->valuestring, '/') ||
        sf_printable(e->valuestring) != e->valuestring || !strcmp(e->valuestring, ".") ||
        !strcmp(e->valuestring, ".."))
      return sf_fail(err, SF_ERR_FORMAT, "%s: weight_map entry %s is not a file name in the folder", p,
                     sf_printable(e->string));
    SF_TRY(open_shard(s, dir, e->valuestring, err));
  }
  if (s->n == 0) return sf_fail(err, SF_ERR_FORMAT, "%s: weight_map lists no files", p);
  return SF_OK;
}

static sf_status shards_open(const char *dir, shard_set *s, sf_error *err) {
  memset(s, 0, sizeof *s);
  char *single = join(dir, "model.safetensors");
  s->index_path = join(dir, "model.safetensors.index.json");
  if (!single || !s->index_path) {
    free(single);
    return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", dir);
  }
  sf_status rc;
  if (sf_file_exists(s->index_path)) {
    rc = open_index(s, dir, err);
  } else if (sf_file_exists(single)) {
    free(s->index_path);
    s->index_path = NULL;
    s->files = calloc(1, sizeof *s->files);
    rc = s->files ? open_shard(s, dir, "model.safetensors", err)
                  : sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", dir);
  } else {
    rc = sf_fail(err, SF_ERR_IO,
                 "%s: no model.safetensors or model.safetensors.index.json (other formats, e.g. "
                 "pytorch_model.bin, must be converted to safetensors)",
                 dir);
  }
  free(single);
  if (rc != SF_OK) shards_close(s);
  return rc;
}

/* The file that should hold a tensor, for messages about it. */
static const char *blame(const shard_set *s) { return s->index_path ? s->index_path : s->files[0].path; }

/* Looks name up; *t NULL when the checkpoint does not have it. A tensor the
 * index assigns to a shard that lacks it is an error. */
static sf_status shards_find(const shard_set *s, const char *name, const sf_safetensors **file,
                             const sf_st_tensor **t, sf_error *err) {
  *file = NULL;
  *t = NULL;
  if (s->weight_map) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(s->weight_map, name);
    if (!e) return SF_OK;
    for (int32_t i = 0; i < s->n; i++) {
      const char *base = strrchr(s->files[i].path, '/');
      if (strcmp(base ? base + 1 : s->files[i].path, e->valuestring) != 0) continue;
      *file = &s->files[i];
      *t = sf_safetensors_find(*file, name);
      if (!*t)
        return sf_fail(err, SF_ERR_FORMAT, "%s: missing tensor %s (the index lists it in this file)",
                       (*file)->path, name);
      return SF_OK;
    }
    return sf_fail(err, SF_ERR_INTERNAL, "%s: shard %s of tensor %s was not opened", s->index_path,
                   e->valuestring, name);
  }
  *file = &s->files[0];
  *t = sf_safetensors_find(*file, name);
  return SF_OK;
}

/* Checkpoint names of a tensor, preferred first (the other Mamba spelling of
 * the embedding is accepted too). Returns how many. */
static int ckpt_names(sf_ckpt_scheme scheme, const sf_model_config *cfg, const sf_tensor_spec *s,
                      char out[2][NAME_MAX_LEN]) {
  int l = s->layer;
  const char *tail = NULL;
#define PUT(i, ...) snprintf(out[i], NAME_MAX_LEN, __VA_ARGS__)
  if (scheme == SF_CKPT_GPT_NEOX) {
    switch (s->role) {
      case SF_ROLE_EMBED: PUT(0, "gpt_neox.embed_in.weight"); return 1;
      case SF_ROLE_FINAL_NORM_W: PUT(0, "gpt_neox.final_layer_norm.weight"); return 1;
      case SF_ROLE_FINAL_NORM_B: PUT(0, "gpt_neox.final_layer_norm.bias"); return 1;
      case SF_ROLE_LM_HEAD: PUT(0, "embed_out.weight"); return 1;
      case SF_ROLE_LN1_W: tail = "input_layernorm.weight"; break;
      case SF_ROLE_LN1_B: tail = "input_layernorm.bias"; break;
      case SF_ROLE_LN2_W: tail = "post_attention_layernorm.weight"; break;
      case SF_ROLE_LN2_B: tail = "post_attention_layernorm.bias"; break;
      case SF_ROLE_QKV_W: tail = "attention.query_key_value.weight"; break;
      case SF_ROLE_QKV_B: tail = "attention.query_key_value.bias"; break;
      case SF_ROLE_DENSE_W: tail = "attention.dense.weight"; break;
      case SF_ROLE_DENSE_B: tail = "attention.dense.bias"; break;
      case SF_ROLE_FC_IN_W: tail = "mlp.dense_h_to_4h.weight"; break;
      case SF_ROLE_FC_IN_B: tail = "mlp.dense_h_to_4h.bias"; break;
      case SF_ROLE_FC_OUT_W: tail = "mlp.dense_4h_to_h.weight"; break;
      case SF_ROLE_FC_OUT_B: tail = "mlp.dense_4h_to_h.bias"; break;
      default: return 0;
    }
    PUT(0, "gpt_neox.layers.%d.%s", l, tail);
    return 1;
  }
  switch (s->role) {
    case SF_ROLE_EMBED:
      PUT(scheme == SF_CKPT_MAMBA_SSM ? 0 : 1, "backbone.embeddings.weight");
      PUT(scheme == SF_CKPT_MAMBA_SSM ? 1 : 0, "backbone.embedding.weight");
      return 2;
    case SF_ROLE_FINAL_NORM_W: PUT(0, "backbone.norm_f.weight"); return 1;
    case SF_ROLE_LM_HEAD: PUT(0, "lm_head.weight"); return 1;
    case SF_ROLE_NORM_W: PUT(0, "backbone.layers.%d.norm.weight", l); return 1;
    case SF_ROLE_IN_PROJ_W: tail = "in_proj.weight"; break;
    case SF_ROLE_CONV_W: tail = "conv1d.weight"; break;
    case SF_ROLE_CONV_B: tail = "conv1d.bias"; break;
    case SF_ROLE_X_PROJ_W: tail = "x_proj.weight"; break;
    case SF_ROLE_DT_PROJ_W: tail = "dt_proj.weight"; break;
    case SF_ROLE_DT_BIAS: tail = cfg->arch == SF_ARCH_MAMBA1 ? "dt_proj.bias" : "dt_bias"; break;
    case SF_ROLE_A: tail = "A_log"; break;
    case SF_ROLE_D: tail = "D"; break;
    case SF_ROLE_GATE_NORM_W: tail = "norm.weight"; break;
    case SF_ROLE_OUT_PROJ_W: tail = "out_proj.weight"; break;
    default: return 0;
  }
  PUT(0, "backbone.layers.%d.mixer.%s", l, tail);
  return 1;
#undef PUT
}

static void shape_str(char *buf, size_t len, int32_t ndim, const int64_t *shape) {
  size_t used = (size_t)snprintf(buf, len, "[");
  for (int32_t i = 0; i < ndim && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (used < len) snprintf(buf + used, len - used, "]");
}

/* The checkpoint's shape must be the layout's; conv1d weights are stored
 * [channels, 1, d_conv] by PyTorch's Conv1d and squeezed here. */
static int shape_ok(const sf_tensor_spec *s, const sf_st_tensor *t) {
  if (s->role == SF_ROLE_CONV_W && t->ndim == 3)
    return t->shape[0] == s->shape[0] && t->shape[1] == 1 && t->shape[2] == s->shape[1];
  if (t->ndim != s->ndim) return 0;
  for (int32_t i = 0; i < s->ndim; i++)
    if (t->shape[i] != s->shape[i]) return 0;
  return 1;
}

static sf_status load_tensor(sf_model *m, const shard_set *sh, sf_ckpt_scheme scheme, const sf_tensor_spec *s,
                             sf_tensor *dst, float *buf, sf_error *err) {
  char names[2][NAME_MAX_LEN];
  int n_names = ckpt_names(scheme, &m->cfg, s, names);
  if (n_names == 0)
    return sf_fail(err, SF_ERR_INTERNAL, "%s: no checkpoint name for %s", m->cfg.name, s->name);
  const sf_safetensors *file = NULL;
  const sf_st_tensor *t = NULL;
  for (int i = 0; i < n_names && !t; i++) SF_TRY(shards_find(sh, names[i], &file, &t, err));
  if (!t)
    return sf_fail(err, SF_ERR_FORMAT, "%s: missing tensor %s (scanflash %s)", blame(sh), names[0], s->name);
  if (!shape_ok(s, t)) {
    char got[128], want[128];
    shape_str(got, sizeof got, t->ndim, t->shape);
    shape_str(want, sizeof want, s->ndim, s->shape);
    return sf_fail(err, SF_ERR_FORMAT, "%s: tensor %s has shape %s, config.json implies %s", file->path,
                   t->name, got, want);
  }
  int64_t numel = sf_tensor_spec_numel(s);
  size_t esize = sf_dtype_size(s->dtype);
  for (int64_t off = 0; off < numel; off += CHUNK) {
    int64_t n = numel - off < CHUNK ? numel - off : CHUNK;
    SF_TRY(sf_safetensors_read(file, t, off, n, buf, s->dtype, err));
    if (s->role == SF_ROLE_A) /* f32 by layout */
      for (int64_t k = 0; k < n; k++) buf[k] = -expf(buf[k]);
    sf_status rc =
        m->ctx->ops->upload(m->ctx, (char *)dst->data + (size_t)off * esize, buf, (size_t)n * esize, err);
    if (rc != SF_OK) return sf_fail_context(err, "%s: uploading %s", m->cfg.name, s->name);
  }
  return SF_OK;
}

/* The folder's last path component, the model's name in results. */
static void dir_name(const char *dir, char *out, size_t len) {
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/') n--;
  size_t start = n;
  while (start > 0 && dir[start - 1] != '/') start--;
  size_t k = n - start < len - 1 ? n - start : len - 1;
  memcpy(out, dir + start, k);
  out[k] = '\0';
}

sf_status sf_model_load(const char *dir, sf_op_ctx *ctx, sf_model *out, sf_error *err) {
  memset(out, 0, sizeof *out);
  if (!dir || !ctx || !ctx->ops) return sf_fail(err, SF_ERR_ARG, "model load: no folder or backend given");
  char *cfg_path = join(dir, "config.json");
  if (!cfg_path) return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", dir);
  char *text = NULL;
  size_t size;
  sf_model_config cfg;
  sf_ckpt_scheme scheme = SF_CKPT_HF_MAMBA;
  char name[64];
  dir_name(dir, name, sizeof name);
  sf_status rc = sf_read_file(cfg_path, &text, &size, err);
  if (rc == SF_OK) rc = sf_checkpoint_config_parse(cfg_path, text, name, &cfg, &scheme, err);
  free(text);
  free(cfg_path);
  SF_TRY(rc);

  shard_set sh;
  SF_TRY(shards_open(dir, &sh, err));
  sf_tensor_spec *specs = NULL;
  int32_t n = 0;
  float *buf = malloc((size_t)CHUNK * sizeof(float));
  rc = buf ? sf_model_alloc(&cfg, ctx, out, err) : sf_fail(err, SF_ERR_NOMEM, "%s: out of host memory", dir);
  if (rc == SF_OK) rc = sf_model_layout(&cfg, ctx->ops->act_dtype, &specs, &n, err);
  for (int32_t i = 0; rc == SF_OK && i < n; i++)
    rc = load_tensor(out, &sh, scheme, &specs[i], &out->tensors[i], buf, err);
  if (rc == SF_OK && ctx->ops->sync) rc = ctx->ops->sync(ctx, err);
  free(specs);
  free(buf);
  shards_close(&sh);
  if (rc != SF_OK) sf_model_free(out);
  return rc;
}
