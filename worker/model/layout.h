/* The tensor layout of a model: for a configuration, every weight tensor's
 * canonical name, shape, dtype and role, in one fixed order. It is the single
 * source for allocation (sf_model), random init, checkpoint loading, the
 * weights term of the memory estimate and parameter counts, so they cannot
 * disagree. */
#ifndef SCANFLASH_MODEL_LAYOUT_H
#define SCANFLASH_MODEL_LAYOUT_H

#include <stdint.h>

#include "model/model.h"

/* What a tensor is; with its layer index this places it in the views and
 * picks its initialiser and checkpoint name. */
typedef enum sf_tensor_role {
  SF_ROLE_EMBED,          /* [vocab, d_model] */
  SF_ROLE_FINAL_NORM_W,   /* [d_model] */
  SF_ROLE_FINAL_NORM_B,   /* [d_model] LayerNorm only */
  SF_ROLE_LM_HEAD,        /* [vocab, d_model] untied only */
  /* Mamba-1 and Mamba-2 layers */
  SF_ROLE_NORM_W,         /* [d_model] pre-mixer RMSNorm */
  SF_ROLE_IN_PROJ_W,
  SF_ROLE_CONV_W,         /* [conv channels, d_conv] */
  SF_ROLE_CONV_B,
  SF_ROLE_X_PROJ_W,       /* Mamba-1 */
  SF_ROLE_DT_PROJ_W,      /* Mamba-1 */
  SF_ROLE_DT_BIAS,        /* Mamba-1 dt_proj.bias [d_inner], Mamba-2 dt_bias [heads]; f32 */
  SF_ROLE_A,              /* -exp(A_log); f32 */
  SF_ROLE_D,              /* f32 */
  SF_ROLE_GATE_NORM_W,    /* Mamba-2 gated RMSNorm [d_inner] */
  SF_ROLE_OUT_PROJ_W,     /* [d_model, d_inner] */
  /* Transformer layers */
  SF_ROLE_LN1_W, SF_ROLE_LN1_B, SF_ROLE_LN2_W, SF_ROLE_LN2_B,
  SF_ROLE_QKV_W, SF_ROLE_QKV_B,
  SF_ROLE_DENSE_W, SF_ROLE_DENSE_B,
  SF_ROLE_FC_IN_W, SF_ROLE_FC_IN_B,
  SF_ROLE_FC_OUT_W, SF_ROLE_FC_OUT_B
} sf_tensor_role;

typedef struct sf_tensor_spec {
  char name[96];          /* canonical name, as in sf_tensor.name */
  sf_tensor_role role;
  int32_t layer;          /* -1 for model-level tensors */
  sf_dtype dtype;         /* act dtype, or SF_F32 for A, D and dt biases */
  int32_t ndim;
  int64_t shape[4];
} sf_tensor_spec;

int64_t sf_tensor_spec_numel(const sf_tensor_spec *s);
int64_t sf_tensor_spec_bytes(const sf_tensor_spec *s);

/* The tensors of cfg (validated first) with weights in act_dtype: a malloc'd
 * array the caller frees. Tied embeddings have no lm_head entry. */
sf_status sf_model_layout(const sf_model_config *cfg, sf_dtype act_dtype, sf_tensor_spec **specs,
                          int32_t *n, sf_error *err);

/* Parameters (elements) of cfg: the sum over its layout, tied embeddings
 * counted once, as model.parameters() counts them. -1 if cfg is invalid. */
int64_t sf_model_param_count(const sf_model_config *cfg);

/* Builds out: the layout's tensors, each allocated in ctx's memory (one
 * allocation per tensor, contents undefined) and wired into the per-family
 * views. On failure out is freed and zeroed. Used by init_random and load. */
sf_status sf_model_alloc(const sf_model_config *cfg, sf_op_ctx *ctx, sf_model *out, sf_error *err);

#endif
