/* sf_model's lifetime: tensors allocated from the layout (one backend
 * allocation each, so a failed allocation names the tensor and nothing
 * depends on an arena's alignment rules), the per-family views wired to
 * them, and release of everything. */
#include <stdlib.h>
#include <string.h>

#include "model/layout.h"

int64_t sf_tensor_numel(const sf_tensor *t) {
  int64_t n = 1;
  for (int32_t i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

void sf_model_free(sf_model *m) {
  if (!m) return;
  if (m->tensors && m->ctx && m->ctx->ops) {
    for (int32_t i = 0; i < m->n_tensors; i++)
      if (m->tensors[i].data) m->ctx->ops->free(m->ctx, m->tensors[i].data);
  }
  free(m->tensors);
  free(m->mamba1);
  free(m->mamba2);
  free(m->transformer);
  memset(m, 0, sizeof *m);
}

static void wire_mamba1(sf_mamba1_layer *L, sf_tensor_role role, sf_tensor *t) {
  switch (role) {
    case SF_ROLE_NORM_W: L->norm_w = t; break;
    case SF_ROLE_IN_PROJ_W: L->in_proj_w = t; break;
    case SF_ROLE_CONV_W: L->conv_w = t; break;
    case SF_ROLE_CONV_B: L->conv_b = t; break;
    case SF_ROLE_X_PROJ_W: L->x_proj_w = t; break;
    case SF_ROLE_DT_PROJ_W: L->dt_proj_w = t; break;
    case SF_ROLE_DT_BIAS: L->dt_proj_b = t; break;
    case SF_ROLE_A: L->A = t; break;
    case SF_ROLE_D: L->D = t; break;
    case SF_ROLE_OUT_PROJ_W: L->out_proj_w = t; break;
    default: break;
  }
}

static void wire_mamba2(sf_mamba2_layer *L, sf_tensor_role role, sf_tensor *t) {
  switch (role) {
    case SF_ROLE_NORM_W: L->norm_w = t; break;
    case SF_ROLE_IN_PROJ_W: L->in_proj_w = t; break;
    case SF_ROLE_CONV_W: L->conv_w = t; break;
    case SF_ROLE_CONV_B: L->conv_b = t; break;
    case SF_ROLE_DT_BIAS: L->dt_bias = t; break;
    case SF_ROLE_A: L->A = t; break;
    case SF_ROLE_D: L->D = t; break;
    case SF_ROLE_GATE_NORM_W: L->gate_norm_w = t; break;
    case SF_ROLE_OUT_PROJ_W: L->out_proj_w = t; break;
    default: break;
  }
}

static void wire_transformer(sf_transformer_layer *L, sf_tensor_role role, sf_tensor *t) {
  switch (role) {
    case SF_ROLE_LN1_W: L->ln1_w = t; break;
    case SF_ROLE_LN1_B: L->ln1_b = t; break;
    case SF_ROLE_LN2_W: L->ln2_w = t; break;
    case SF_ROLE_LN2_B: L->ln2_b = t; break;
    case SF_ROLE_QKV_W: L->qkv_w = t; break;
    case SF_ROLE_QKV_B: L->qkv_b = t; break;
    case SF_ROLE_DENSE_W: L->dense_w = t; break;
    case SF_ROLE_DENSE_B: L->dense_b = t; break;
    case SF_ROLE_FC_IN_W: L->fc_in_w = t; break;
    case SF_ROLE_FC_IN_B: L->fc_in_b = t; break;
    case SF_ROLE_FC_OUT_W: L->fc_out_w = t; break;
    case SF_ROLE_FC_OUT_B: L->fc_out_b = t; break;
    default: break;
  }
}

static void wire(sf_model *m, const sf_tensor_spec *s, sf_tensor *t) {
  switch (s->role) {
    case SF_ROLE_EMBED: m->embed = t; return;
    case SF_ROLE_FINAL_NORM_W: m->final_norm_w = t; return;
    case SF_ROLE_FINAL_NORM_B: m->final_norm_b = t; return;
    case SF_ROLE_LM_HEAD: m->lm_head = t; return;
    default: break;
  }
  if (m->mamba1) wire_mamba1(&m->mamba1[s->layer], s->role, t);
  if (m->mamba2) wire_mamba2(&m->mamba2[s->layer], s->role, t);
  if (m->transformer) wire_transformer(&m->transformer[s->layer], s->role, t);
}

sf_status sf_model_alloc(const sf_model_config *cfg, sf_op_ctx *ctx, sf_model *out, sf_error *err) {
  memset(out, 0, sizeof *out);
  if (!ctx || !ctx->ops || !ctx->ops->alloc || !ctx->ops->free)
    return sf_fail(err, SF_ERR_ARG, "%s: no backend context for the weights", cfg->name);
  sf_tensor_spec *specs;
  int32_t n;
  SF_TRY(sf_model_layout(cfg, ctx->ops->act_dtype, &specs, &n, err));
  out->cfg = *cfg;
  out->ctx = ctx;
  out->tensors = calloc((size_t)n, sizeof *out->tensors);
  size_t L = (size_t)cfg->n_layers;
  switch (cfg->arch) {
    case SF_ARCH_MAMBA1: out->mamba1 = calloc(L, sizeof *out->mamba1); break;
    case SF_ARCH_MAMBA2: out->mamba2 = calloc(L, sizeof *out->mamba2); break;
    case SF_ARCH_TRANSFORMER: out->transformer = calloc(L, sizeof *out->transformer); break;
  }
  if (!out->tensors || (!out->mamba1 && !out->mamba2 && !out->transformer)) {
    free(specs);
    sf_model_free(out);
    return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory for the tensor table", cfg->name);
  }
  out->n_tensors = n;
  for (int32_t i = 0; i < n; i++) {
    sf_tensor *t = &out->tensors[i];
    memcpy(t->name, specs[i].name, sizeof t->name);
    t->dtype = specs[i].dtype;
    t->ndim = specs[i].ndim;
    memcpy(t->shape, specs[i].shape, sizeof t->shape);
    sf_status rc = ctx->ops->alloc(ctx, (size_t)sf_tensor_spec_bytes(&specs[i]), &t->data, err);
    if (rc != SF_OK) {
      t->data = NULL;
      sf_fail_context(err, "%s: weight %s", cfg->name, t->name);
      free(specs);
      sf_model_free(out);
      return rc;
    }
    wire(out, &specs[i], t);
  }
  if (cfg->tie_embeddings) out->lm_head = out->embed;
  free(specs);
  return SF_OK;
}
