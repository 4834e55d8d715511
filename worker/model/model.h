/* Model definitions: configuration (presets with the published shapes,
 * Hugging Face config.json, custom shapes), the weights as named tensors in
 * backend memory, and the per-family layer views the engine runs. */
#ifndef SCANFLASH_MODEL_H
#define SCANFLASH_MODEL_H

#include <stdint.h>

#include "ops/op_table.h"
#include "scanflash/error.h"

typedef enum sf_arch { SF_ARCH_MAMBA1, SF_ARCH_MAMBA2, SF_ARCH_TRANSFORMER } sf_arch;

const char *sf_arch_name(sf_arch a); /* "mamba1", "mamba2", "transformer" */

typedef struct sf_model_config {
  char name[64];             /* preset name or "custom" / the checkpoint folder */
  sf_arch arch;
  int32_t n_layers;
  int32_t d_model;
  int32_t vocab_size;        /* embedding rows, padded as the checkpoints: 50280 Mamba-1,
                                50288 Mamba-2, 50304 Pythia (50432 pythia-6.9b) */
  float norm_eps;
  int tie_embeddings;        /* lm head = embedding (Mamba) */

  /* Mamba-1 and Mamba-2 */
  int32_t d_inner;           /* expand * d_model */
  int32_t d_state;
  int32_t d_conv;
  int32_t dt_rank;           /* Mamba-1: ceil(d_model / 16) */
  int32_t ssm_heads;         /* Mamba-2: d_inner / head_dim */
  int32_t ssm_head_dim;      /* Mamba-2: 64 */
  int32_t n_groups;          /* Mamba-2: 1 */
  int32_t chunk_size;        /* Mamba-2: 256 */
  int residual_in_fp32;      /* mamba_ssm keeps the residual stream in fp32 */

  /* Transformer (GPT-NeoX / Pythia) */
  int32_t n_heads;
  int32_t n_kv_heads;        /* = n_heads for Pythia; fewer for GQA custom shapes */
  int32_t head_dim;
  int32_t rot_dim;           /* rotary_pct * head_dim (25%) */
  float rotary_base;         /* 10000 */
  int32_t d_ff;              /* 4 * d_model */
  int parallel_residual;     /* x + attn(ln1 x) + mlp(ln2 x) */
} sf_model_config;

/* Fills cfg from a preset name (mamba-130m ... pythia-6.9b, tiny-mamba1,
 * tiny-mamba2, tiny-transformer). Unknown names: error listing them. */
sf_status sf_model_preset(const char *name, sf_model_config *cfg, sf_error *err);
/* NULL-terminated list of preset names, for --help and errors. */
const char *const *sf_model_preset_names(void);
/* Checks internal consistency (divisibility, positivity); errors name the field. */
sf_status sf_model_config_validate(const sf_model_config *cfg, sf_error *err);

/* One weight tensor in backend memory. */
typedef struct sf_tensor {
  char name[96];             /* scanflash's canonical name, e.g. "layers.3.mixer.in_proj.weight" */
  sf_dtype dtype;
  int32_t ndim;
  int64_t shape[4];
  void *data;                /* backend memory, owned by the sf_model */
} sf_tensor;

int64_t sf_tensor_numel(const sf_tensor *t);

/* Layer views: pointers into sf_model.tensors. A and D are fp32 always, with
 * A already -exp(A_log) (the form the ops take); NULL where absent. */
typedef struct sf_mamba1_layer {
  sf_tensor *norm_w;         /* [d_model] RMSNorm */
  sf_tensor *in_proj_w;      /* [2*d_inner, d_model] -> x, z */
  sf_tensor *conv_w;         /* [d_inner, d_conv] */
  sf_tensor *conv_b;         /* [d_inner] */
  sf_tensor *x_proj_w;       /* [dt_rank + 2*d_state, d_inner] -> dt, B, C */
  sf_tensor *dt_proj_w;      /* [d_inner, dt_rank] */
  sf_tensor *dt_proj_b;      /* [d_inner] f32: the scan's delta_bias */
  sf_tensor *A;              /* [d_inner, d_state] f32 */
  sf_tensor *D;              /* [d_inner] f32 */
  sf_tensor *out_proj_w;     /* [d_model, d_inner] */
} sf_mamba1_layer;

typedef struct sf_mamba2_layer {
  sf_tensor *norm_w;         /* [d_model] RMSNorm */
  sf_tensor *in_proj_w;      /* [2*d_inner + 2*n_groups*d_state + ssm_heads, d_model] -> z, xBC, dt */
  sf_tensor *conv_w;         /* [d_inner + 2*n_groups*d_state, d_conv] */
  sf_tensor *conv_b;         /* [d_inner + 2*n_groups*d_state] */
  sf_tensor *dt_bias;        /* [ssm_heads] f32 */
  sf_tensor *A;              /* [ssm_heads] f32 */
  sf_tensor *D;              /* [ssm_heads] f32 */
  sf_tensor *gate_norm_w;    /* [d_inner] gated RMSNorm, group size d_inner / n_groups */
  sf_tensor *out_proj_w;     /* [d_model, d_inner] */
} sf_mamba2_layer;

typedef struct sf_transformer_layer {
  sf_tensor *ln1_w, *ln1_b;  /* input_layernorm */
  sf_tensor *ln2_w, *ln2_b;  /* post_attention_layernorm */
  sf_tensor *qkv_w, *qkv_b;  /* [(n_heads + 2*n_kv_heads) * head_dim, d_model]; GPT-NeoX
                                interleaves per head: rows of head h are q_h, k_h, v_h */
  sf_tensor *dense_w, *dense_b;   /* attention output [d_model, n_heads*head_dim] */
  sf_tensor *fc_in_w, *fc_in_b;   /* [d_ff, d_model] */
  sf_tensor *fc_out_w, *fc_out_b; /* [d_model, d_ff] */
} sf_transformer_layer;

typedef struct sf_model {
  sf_model_config cfg;
  sf_op_ctx *ctx;            /* backend the tensors live on */
  int32_t n_tensors;
  sf_tensor *tensors;
  sf_tensor *embed;          /* [vocab_size, d_model] */
  sf_tensor *final_norm_w, *final_norm_b; /* b: LayerNorm only */
  sf_tensor *lm_head;        /* [vocab_size, d_model]; == embed when tied */
  sf_mamba1_layer *mamba1;   /* [n_layers] for SF_ARCH_MAMBA1, else NULL */
  sf_mamba2_layer *mamba2;
  sf_transformer_layer *transformer;
} sf_model;

/* Seeded random weights scaled like the originals' initialisation, so
 * activations stay finite through every layer; dtype = ctx->ops->act_dtype. */
sf_status sf_model_init_random(const sf_model_config *cfg, sf_op_ctx *ctx, uint64_t seed,
                               sf_model *out, sf_error *err);
/* A Hugging Face model folder (config.json + model.safetensors, or shards
 * with model.safetensors.index.json) for MambaForCausalLM,
 * Mamba2ForCausalLM or GPTNeoXForCausalLM, or mamba_ssm's own names. Every
 * shape is checked against the config; errors name the tensor and file. */
sf_status sf_model_load(const char *dir, sf_op_ctx *ctx, sf_model *out, sf_error *err);
void sf_model_free(sf_model *m);

/* Memory a run needs, in bytes, for planning and OOM prediction. */
typedef struct sf_memory_estimate {
  int64_t weights;
  int64_t cache;             /* KV cache (Transformer) or conv + SSM state (Mamba) */
  int64_t activations;       /* one prefill chunk's live activations */
  int64_t workspace;         /* op temporaries (attention partials, SSD chunk states, logits) */
  int64_t total;
} sf_memory_estimate;

/* For batch sequences of up to context + gen tokens, prefilled in chunks of
 * chunk_tokens (per sequence), in dtype. */
void sf_model_estimate_memory(const sf_model_config *cfg, sf_dtype dtype, int32_t batch,
                              int64_t context, int64_t gen, int64_t chunk_tokens,
                              sf_memory_estimate *out);
/* Per rank of a context-parallel group of k ranks: the ring attention's
 * buffers during the prefill pass (two rings of K/V shards, the partial
 * output and its lse, the f32 merge accumulator when k > 2 in 16 bits:
 * worker/parallel/cp_attention_prefill.c). 0 for Mamba and for k = 1. */
int64_t sf_model_estimate_cp_prefill(const sf_model_config *cfg, sf_dtype dtype, int32_t batch,
                                     int64_t context, int k);

#endif
