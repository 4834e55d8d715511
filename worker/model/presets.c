/* Model presets with the published shapes (DESIGN "Models"), architecture
 * names and configuration checks.
 *
 * Vocabulary sizes are the embedding rows of the released checkpoints, not
 * the tokenizer's 50277 entries: mamba_ssm pads vocab_size up to
 * pad_vocab_size_multiple, which is 8 for the Mamba-1 releases
 * (state-spaces/mamba-130m config.json: vocab_size 50277,
 * pad_vocab_size_multiple 8 -> 50280, the vocab_size of mamba-130m-hf) and 16
 * for the Mamba-2 releases (state-spaces/mamba2-130m config.json: vocab_size
 * 50277, pad_vocab_size_multiple 16 -> 50288). Pythia's GPT-NeoX configs say
 * vocab_size 50304, except pythia-6.9b, whose checkpoint pads to 50432
 * (EleutherAI/pythia-6.9b config.json; with 50432 the parameter count is the
 * model card's 6,857,302,016 exactly). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/model.h"

static void set_name(sf_model_config *c, const char *name) {
  snprintf(c->name, sizeof c->name, "%s", name);
}

/* mamba_ssm's Mamba block defaults: d_state 16, d_conv 4, expand 2,
 * dt_rank "auto" = ceil(d_model / 16); RMSNorm eps 1e-5; tied embeddings;
 * residual kept in fp32 (residual_in_fp32: true in every released config). */
static void mamba1(sf_model_config *c, const char *name, int32_t layers, int32_t d_model,
                   int32_t vocab) {
  memset(c, 0, sizeof *c);
  set_name(c, name);
  c->arch = SF_ARCH_MAMBA1;
  c->n_layers = layers;
  c->d_model = d_model;
  c->vocab_size = vocab;
  c->norm_eps = 1e-5f;
  c->tie_embeddings = 1;
  c->d_inner = 2 * d_model;
  c->d_state = 16;
  c->d_conv = 4;
  c->dt_rank = (d_model + 15) / 16;
  c->residual_in_fp32 = 1;
}

/* mamba_ssm's Mamba2 block defaults: d_state 128, d_conv 4, expand 2,
 * headdim 64, ngroups 1, chunk_size 256, gated RMSNorm (norm_before_gate
 * false); tied embeddings; residual_in_fp32 true in the released configs. */
static void mamba2(sf_model_config *c, const char *name, int32_t layers, int32_t d_model,
                   int32_t vocab, int32_t head_dim, int32_t d_state, int32_t chunk) {
  memset(c, 0, sizeof *c);
  set_name(c, name);
  c->arch = SF_ARCH_MAMBA2;
  c->n_layers = layers;
  c->d_model = d_model;
  c->vocab_size = vocab;
  c->norm_eps = 1e-5f;
  c->tie_embeddings = 1;
  c->d_inner = 2 * d_model;
  c->d_state = d_state;
  c->d_conv = 4;
  c->ssm_head_dim = head_dim;
  c->ssm_heads = c->d_inner / head_dim;
  c->n_groups = 1;
  c->chunk_size = chunk;
  c->residual_in_fp32 = 1;
}

/* GPT-NeoX as configured for Pythia: rotary_pct 0.25, rotary_emb_base
 * 10000, use_parallel_residual true, layer_norm_eps 1e-5, intermediate_size
 * 4 * hidden, untied embed_in / embed_out. */
static void neox(sf_model_config *c, const char *name, int32_t layers, int32_t d_model,
                 int32_t heads, int32_t vocab) {
  memset(c, 0, sizeof *c);
  set_name(c, name);
  c->arch = SF_ARCH_TRANSFORMER;
  c->n_layers = layers;
  c->d_model = d_model;
  c->vocab_size = vocab;
  c->norm_eps = 1e-5f;
  c->tie_embeddings = 0;
  c->n_heads = heads;
  c->n_kv_heads = heads;
  c->head_dim = d_model / heads;
  c->rot_dim = c->head_dim / 4;
  c->rotary_base = 10000.0f;
  c->d_ff = 4 * d_model;
  c->parallel_residual = 1;
}

enum { VOCAB_MAMBA1 = 50280, VOCAB_MAMBA2 = 50288, VOCAB_PYTHIA = 50304, VOCAB_PYTHIA_6_9B = 50432 };

static const char *const preset_names[] = {
    "mamba-130m",  "mamba-370m",  "mamba-790m",  "mamba-1.4b",  "mamba-2.8b",
    "mamba2-130m", "mamba2-370m", "mamba2-780m", "mamba2-1.3b", "mamba2-2.7b",
    "pythia-160m", "pythia-410m", "pythia-1.4b", "pythia-2.8b", "pythia-6.9b",
    "tiny-mamba1", "tiny-mamba2", "tiny-transformer", NULL};

const char *const *sf_model_preset_names(void) { return preset_names; }

const char *sf_arch_name(sf_arch a) {
  switch (a) {
    case SF_ARCH_MAMBA1: return "mamba1";
    case SF_ARCH_MAMBA2: return "mamba2";
    case SF_ARCH_TRANSFORMER: return "transformer";
  }
  return "unknown";
}

sf_status sf_model_preset(const char *name, sf_model_config *cfg, sf_error *err) {
  static const int32_t layers[5] = {24, 48, 48, 48, 64};
  static const int32_t dims[5] = {768, 1024, 1536, 2048, 2560};
  static const int32_t py_layers[5] = {12, 24, 24, 32, 32};
  static const int32_t py_dims[5] = {768, 1024, 2048, 2560, 4096};
  static const int32_t py_heads[5] = {12, 16, 16, 32, 32};
  static const int32_t py_vocab[5] = {VOCAB_PYTHIA, VOCAB_PYTHIA, VOCAB_PYTHIA, VOCAB_PYTHIA,
                                      VOCAB_PYTHIA_6_9B};
  if (!name) return sf_fail(err, SF_ERR_ARG, "model preset: no name given");
  for (int i = 0; i < 5; i++) {
    if (!strcmp(name, preset_names[i])) {
      mamba1(cfg, name, layers[i], dims[i], VOCAB_MAMBA1);
      return SF_OK;
    }
    if (!strcmp(name, preset_names[5 + i])) {
      mamba2(cfg, name, layers[i], dims[i], VOCAB_MAMBA2, 64, 128, 256);
      return SF_OK;
    }
    if (!strcmp(name, preset_names[10 + i])) {
      neox(cfg, name, py_layers[i], py_dims[i], py_heads[i], py_vocab[i]);
      return SF_OK;
    }
  }
  /* Tiny shapes for tests and CI: 2 layers of width 64 with the real
   * vocabularies (so token ids from the real tokenizer are valid). The
   * Mamba-2 one uses chunk 16 so test lengths cross chunk boundaries. */
  if (!strcmp(name, "tiny-mamba1")) {
    mamba1(cfg, name, 2, 64, VOCAB_MAMBA1);
    return SF_OK;
  }
  if (!strcmp(name, "tiny-mamba2")) {
    mamba2(cfg, name, 2, 64, VOCAB_MAMBA2, 16, 16, 16);
    return SF_OK;
  }
  if (!strcmp(name, "tiny-transformer")) {
    neox(cfg, name, 2, 64, 4, VOCAB_PYTHIA);
    return SF_OK;
  }
  char list[512] = "";
  for (const char *const *p = preset_names; *p; p++) {
    if (p != preset_names) strncat(list, ", ", sizeof list - strlen(list) - 1);
    strncat(list, *p, sizeof list - strlen(list) - 1);
  }
  return sf_fail(err, SF_ERR_ARG, "unknown model preset '%s' (known: %s)", name, list);
}

#define NEED(cond, ...)                                              \
  do {                                                               \
    if (!(cond)) return sf_fail(err, SF_ERR_ARG, __VA_ARGS__);       \
  } while (0)

sf_status sf_model_config_validate(const sf_model_config *c, sf_error *err) {
  const char *n = c->name[0] ? c->name : "model";
  NEED(memchr(c->name, '\0', sizeof c->name) != NULL, "model config: name is not terminated");
  NEED(c->arch == SF_ARCH_MAMBA1 || c->arch == SF_ARCH_MAMBA2 || c->arch == SF_ARCH_TRANSFORMER,
       "%s: arch %d is not mamba1, mamba2 or transformer", n, (int)c->arch);
  NEED(c->n_layers > 0, "%s: n_layers must be positive (got %d)", n, c->n_layers);
  NEED(c->d_model > 0, "%s: d_model must be positive (got %d)", n, c->d_model);
  NEED(c->vocab_size > 0, "%s: vocab_size must be positive (got %d)", n, c->vocab_size);
  NEED(isfinite(c->norm_eps) && c->norm_eps > 0, "%s: norm_eps must be positive (got %g)", n,
       (double)c->norm_eps);
  if (c->arch == SF_ARCH_MAMBA1 || c->arch == SF_ARCH_MAMBA2) {
    NEED(c->d_inner > 0, "%s: d_inner must be positive (got %d)", n, c->d_inner);
    NEED(c->d_state > 0, "%s: d_state must be positive (got %d)", n, c->d_state);
    NEED(c->d_conv >= 1, "%s: d_conv must be at least 1 (got %d)", n, c->d_conv);
  }
  if (c->arch == SF_ARCH_MAMBA1) {
    NEED(c->dt_rank > 0, "%s: dt_rank must be positive (got %d)", n, c->dt_rank);
  }
  if (c->arch == SF_ARCH_MAMBA2) {
    NEED(c->ssm_head_dim > 0, "%s: ssm_head_dim must be positive (got %d)", n, c->ssm_head_dim);
    NEED(c->d_inner % c->ssm_head_dim == 0,
         "%s: d_inner (%d) must be a multiple of ssm_head_dim (%d)", n, c->d_inner,
         c->ssm_head_dim);
    NEED(c->ssm_heads == c->d_inner / c->ssm_head_dim,
         "%s: ssm_heads (%d) must equal d_inner / ssm_head_dim (%d)", n, c->ssm_heads,
         c->d_inner / c->ssm_head_dim);
    NEED(c->n_groups > 0, "%s: n_groups must be positive (got %d)", n, c->n_groups);
    NEED(c->ssm_heads % c->n_groups == 0, "%s: ssm_heads (%d) must be a multiple of n_groups (%d)",
         n, c->ssm_heads, c->n_groups);
    NEED(c->chunk_size > 0, "%s: chunk_size must be positive (got %d)", n, c->chunk_size);
  }
  if (c->arch == SF_ARCH_TRANSFORMER) {
    NEED(c->n_heads > 0, "%s: n_heads must be positive (got %d)", n, c->n_heads);
    NEED(c->n_kv_heads > 0, "%s: n_kv_heads must be positive (got %d)", n, c->n_kv_heads);
    NEED(c->n_heads % c->n_kv_heads == 0, "%s: n_heads (%d) must be a multiple of n_kv_heads (%d)",
         n, c->n_heads, c->n_kv_heads);
    NEED(c->head_dim > 0, "%s: head_dim must be positive (got %d)", n, c->head_dim);
    NEED(c->rot_dim >= 0 && c->rot_dim <= c->head_dim && c->rot_dim % 2 == 0,
         "%s: rot_dim (%d) must be even and within head_dim (%d)", n, c->rot_dim, c->head_dim);
    NEED(isfinite(c->rotary_base) && c->rotary_base > 0, "%s: rotary_base must be positive (got %g)",
         n, (double)c->rotary_base);
    NEED(c->d_ff > 0, "%s: d_ff must be positive (got %d)", n, c->d_ff);
  }
  return SF_OK;
}
