/* Internal to worker/model: a checkpoint's config.json -> sf_model_config,
 * and which tensor naming scheme its weights use. */
#ifndef SCANFLASH_MODEL_CHECKPOINT_CONFIG_H
#define SCANFLASH_MODEL_CHECKPOINT_CONFIG_H

#include "model/model.h"

typedef enum sf_ckpt_scheme {
  SF_CKPT_HF_MAMBA,   /* MambaForCausalLM / Mamba2ForCausalLM: backbone.embeddings.weight */
  SF_CKPT_MAMBA_SSM,  /* mamba_ssm's MambaLMHeadModel: backbone.embedding.weight */
  SF_CKPT_GPT_NEOX    /* GPTNeoXForCausalLM */
} sf_ckpt_scheme;

/* Parses the text of config.json (path for messages): Hugging Face
 * model_type "mamba", "mamba2" or "gpt_neox", or mamba_ssm's own config
 * (d_model, n_layer, ssm_cfg). Fields the engine cannot run (biased
 * projections, hybrid attention layers, other activations) are
 * SF_ERR_UNSUPPORTED naming the field. cfg->name is set to name. The result
 * is validated. */
sf_status sf_checkpoint_config_parse(const char *path, const char *text, const char *name,
                                     sf_model_config *cfg, sf_ckpt_scheme *scheme, sf_error *err);

#endif
