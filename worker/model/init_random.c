/* Seeded random weights scaled like the originals' initialisation, so a
 * randomly initialised model runs with finite activations through every
 * layer (throughput does not depend on trained values, but NaNs would change
 * timings and break the reference checks).
 *
 * Mamba-1 and Mamba-2 follow mamba_ssm (Mamba / Mamba2 __init__ and
 * MixerModel's _init_weights): embeddings N(0, 0.02); Linear and Conv1d
 * weights keep PyTorch's default kaiming_uniform(a=sqrt(5)), i.e.
 * U(+-1/sqrt(fan_in)) with fan_in = in_features (d_conv for the depthwise
 * conv, whose bias has the same bound); out_proj is further divided by
 * sqrt(n_layers) (rescale_prenorm_residual, one residual per layer);
 * dt_proj weight U(+-dt_rank^-0.5); the dt bias is softplus^-1(dt) for
 * dt = exp(U(log 0.001, log 0.1)) floored at 1e-4; A_log = log(1..d_state)
 * per channel (Mamba-1) or log(U(1, 16)) per head (Mamba-2), stored as
 * A = -exp(A_log); D = 1; norm weights 1.
 * GPT-NeoX follows Hugging Face's GPTNeoXPreTrainedModel._init_weights:
 * Linear weights and embeddings N(0, 0.02), biases 0, LayerNorm 1 and 0.
 *
 * Each block of BLOCK elements of a tensor draws from its own stream
 * (seed, tensor index << 32 | block index), so values depend neither on the
 * order tensors are filled in nor on the number of threads: blocks are drawn
 * in parallel (OpenMP) into a bounded host buffer, converted to the tensor's
 * dtype and uploaded (a 7B model is ~7e9 draws: serial Box-Muller alone
 * would take minutes). The upload entry must have consumed the host buffer
 * when it returns, as cpu's memcpy and CUDA's pageable cudaMemcpy do. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#define SF_OMP_FOR _Pragma("omp parallel for schedule(static)")
#else
#define SF_OMP_FOR
#endif

#include "model/layout.h"
#include "ops/convert.h"
#include "scanflash/rng.h"

/* BLOCK elements per random stream; BLOCKS_PER_BUF blocks (4 Mi elements,
 * 24 MB of host buffers) per upload. */
enum { BLOCK = 1 << 16, BLOCKS_PER_BUF = 64, BUF = BLOCK * BLOCKS_PER_BUF };

typedef enum init_kind {
  INIT_NORMAL,
  INIT_UNIFORM,
  INIT_CONST,
  INIT_DT_BIAS,
  INIT_A_RANGE,
  INIT_A_LOG_N
} init_kind;

typedef struct init_rule {
  init_kind kind;
  float a;      /* NORMAL: std; UNIFORM: bound; CONST: value */
  int64_t cols; /* A_LOG_N: d_state (values -1..-cols along each row) */
} init_rule;

static init_rule rule(init_kind k, float a) {
  init_rule r = {k, a, 0};
  return r;
}

static init_rule mamba_rule(const sf_model_config *c, const sf_tensor_spec *s) {
  float inv_sqrt_d = 1.0f / sqrtf((float)c->d_model), inv_sqrt_di = 1.0f / sqrtf((float)c->d_inner);
  switch (s->role) {
    case SF_ROLE_EMBED: return rule(INIT_NORMAL, 0.02f);
    case SF_ROLE_FINAL_NORM_W:
    case SF_ROLE_NORM_W:
    case SF_ROLE_GATE_NORM_W:
    case SF_ROLE_D: return rule(INIT_CONST, 1.0f);
    case SF_ROLE_LM_HEAD: /* untied: mamba_ssm's bias-free nn.Linear default */
    case SF_ROLE_IN_PROJ_W: return rule(INIT_UNIFORM, inv_sqrt_d);
    case SF_ROLE_CONV_W:
    case SF_ROLE_CONV_B: return rule(INIT_UNIFORM, 1.0f / sqrtf((float)c->d_conv));
    case SF_ROLE_X_PROJ_W: return rule(INIT_UNIFORM, inv_sqrt_di);
    case SF_ROLE_DT_PROJ_W: return rule(INIT_UNIFORM, 1.0f / sqrtf((float)c->dt_rank));
    case SF_ROLE_DT_BIAS: return rule(INIT_DT_BIAS, 0);
    case SF_ROLE_A: {
      if (c->arch == SF_ARCH_MAMBA2) return rule(INIT_A_RANGE, 0);
      init_rule r = {INIT_A_LOG_N, 0, s->shape[1]};
      return r;
    }
    case SF_ROLE_OUT_PROJ_W: return rule(INIT_UNIFORM, inv_sqrt_di / sqrtf((float)c->n_layers));
    default: return rule(INIT_CONST, 0.0f); /* no other roles in Mamba layouts */
  }
}

static init_rule neox_rule(const sf_tensor_spec *s) {
  switch (s->role) {
    case SF_ROLE_EMBED:
    case SF_ROLE_LM_HEAD:
    case SF_ROLE_QKV_W:
    case SF_ROLE_DENSE_W:
    case SF_ROLE_FC_IN_W:
    case SF_ROLE_FC_OUT_W: return rule(INIT_NORMAL, 0.02f);
    case SF_ROLE_LN1_W:
    case SF_ROLE_LN2_W:
    case SF_ROLE_FINAL_NORM_W: return rule(INIT_CONST, 1.0f);
    default: return rule(INIT_CONST, 0.0f); /* biases, LayerNorm biases */
  }
}

/* softplus^-1(dt) for dt = exp(U(log dt_min, log dt_max)) floored at 1e-4,
 * as mamba_ssm initialises dt_proj.bias / dt_bias (dt_min 0.001, dt_max 0.1,
 * dt_init_floor 1e-4). */
static float dt_bias_draw(sf_rng *rng) {
  const double lo = log(0.001), hi = log(0.1);
  double dt = exp(lo + (hi - lo) * (double)sf_rng_uniform(rng));
  if (dt < 1e-4) dt = 1e-4;
  return (float)(dt + log(-expm1(-dt)));
}

/* Box-Muller keeping both outputs of each pair (sf_rng_normal keeps one:
 * twice the transcendental calls per value). */
static void normal_pair(sf_rng *rng, float *a, float *b) {
  double u1 = ((double)(sf_rng_next(rng) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
  double u2 = (double)(sf_rng_next(rng) >> 11) * 0x1.0p-53;
  double r = sqrt(-2.0 * log(u1)), t = 6.283185307179586 * u2;
  *a = (float)(r * cos(t));
  *b = (float)(r * sin(t));
}

static void fill(const init_rule *r, sf_rng *rng, float *buf, int64_t first, int64_t n) {
  if (r->kind == INIT_NORMAL) {
    int64_t k = 0;
    for (; k + 1 < n; k += 2) {
      normal_pair(rng, &buf[k], &buf[k + 1]);
      buf[k] *= r->a;
      buf[k + 1] *= r->a;
    }
    if (k < n) {
      float spare;
      normal_pair(rng, &buf[k], &spare);
      buf[k] *= r->a;
    }
    return;
  }
  for (int64_t k = 0; k < n; k++) {
    float v = 0.0f;
    switch (r->kind) {
      case INIT_NORMAL: break; /* above */
      case INIT_UNIFORM: v = r->a * (2.0f * sf_rng_uniform(rng) - 1.0f); break;
      case INIT_CONST: v = r->a; break;
      case INIT_DT_BIAS: v = dt_bias_draw(rng); break;
      /* A = -exp(log(U(1, 16))) = -U(1, 16) (Mamba2's A_init_range). */
      case INIT_A_RANGE: v = -(1.0f + 15.0f * sf_rng_uniform(rng)); break;
      /* A[c, n] = -exp(log(n + 1)) = -(n + 1) (Mamba's S4D-real init). */
      case INIT_A_LOG_N: v = -(float)((first + k) % r->cols + 1); break;
    }
    buf[k] = v;
  }
}

static sf_status init_tensor(const sf_model *m, const sf_tensor_spec *s, sf_tensor *t, uint64_t seed,
                             uint64_t index, float *f32buf, void *cvtbuf, sf_error *err) {
  const init_rule r = m->cfg.arch == SF_ARCH_TRANSFORMER ? neox_rule(s) : mamba_rule(&m->cfg, s);
  const int64_t numel = sf_tensor_numel(t);
  const size_t esize = sf_dtype_size(t->dtype);
  for (int64_t off = 0; off < numel; off += BUF) {
    const int64_t n = numel - off < BUF ? numel - off : BUF;
    const int64_t blocks = (n + BLOCK - 1) / BLOCK;
    SF_OMP_FOR
    for (int64_t b = 0; b < blocks; b++) {
      const int64_t first = b * BLOCK, len = n - first < BLOCK ? n - first : BLOCK;
      sf_rng rng;
      sf_rng_seed_stream(&rng, seed, index << 32 | (uint64_t)((off + first) / BLOCK));
      fill(&r, &rng, f32buf + first, off + first, len);
      if (t->dtype != SF_F32)
        sf_convert((char *)cvtbuf + (size_t)first * esize, t->dtype, f32buf + first, SF_F32, len);
    }
    const void *src = t->dtype == SF_F32 ? (const void *)f32buf : cvtbuf;
    sf_status rc =
        m->ctx->ops->upload(m->ctx, (char *)t->data + (size_t)off * esize, src, (size_t)n * esize, err);
    if (rc != SF_OK) return sf_fail_context(err, "%s: uploading %s", m->cfg.name, t->name);
  }
  return SF_OK;
}

sf_status sf_model_init_random(const sf_model_config *cfg, sf_op_ctx *ctx, uint64_t seed, sf_model *out,
                               sf_error *err) {
  SF_TRY(sf_model_alloc(cfg, ctx, out, err));
  sf_tensor_spec *specs = NULL;
  int32_t n = 0;
  float *f32buf = malloc((size_t)BUF * sizeof(float));
  uint16_t *cvtbuf = malloc((size_t)BUF * sizeof(uint16_t));
  sf_status rc = SF_OK;
  if (!f32buf || !cvtbuf) rc = sf_fail(err, SF_ERR_NOMEM, "%s: out of host memory for init", cfg->name);
  if (rc == SF_OK) rc = sf_model_layout(cfg, ctx->ops->act_dtype, &specs, &n, err);
  for (int32_t i = 0; rc == SF_OK && i < n; i++)
    rc = init_tensor(out, &specs[i], &out->tensors[i], seed, (uint64_t)i, f32buf, cvtbuf, err);
  if (rc == SF_OK && ctx->ops->sync) rc = ctx->ops->sync(ctx, err);
  free(specs);
  free(f32buf);
  free(cvtbuf);
  if (rc != SF_OK) sf_model_free(out);
  return rc;
}
