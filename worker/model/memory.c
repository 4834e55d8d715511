/* Memory a run needs, for planning (largest batch that fits) and OOM
 * prediction before anything is allocated. All terms in bytes, int64 (a 1M-
 * token KV cache of a 7B model is hundreds of GiB).
 *
 * Notation: B batch, S = context + gen (positions per sequence), c prefill
 * chunk tokens per sequence (chunk_tokens, capped at the context; the whole
 * context when chunk_tokens <= 0), T = B * c tokens per forward call, ds
 * dtype size, rs = 4 the residual stream's size (the engine keeps it in f32
 * on every backend), L layers,
 * d d_model, di d_inner, N d_state, G n_groups, H heads, P head dim.
 *
 * weights     exact: sum over the tensor layout (A, D, dt biases f32, the
 *             rest ds; tied embeddings once).
 * cache       Transformer: K and V, 2 * L * B * S * n_kv_heads * head_dim * ds.
 *             Mamba-1: L * B * (di * N * 4 [fp32 SSM state]
 *                               + di * (d_conv - 1) * ds [conv state]).
 *             Mamba-2: L * B * (H * P * N * 4 + conv_dim * (d_conv - 1) * ds),
 *             conv_dim = di + 2 * G * N.
 * activations the buffers of one forward call over T tokens, summed as if
 *             all were live at once (one set, reused from layer to layer):
 *             every call: residual T*d*rs, normed input T*d*ds, token ids and
 *               positions T*8;
 *             Mamba-1: in_proj out (x, z) T*2di, conv out T*di, x_proj out
 *               T*(dt_rank + 2N), dt_proj out T*di, scan out T*di (all ds);
 *             Mamba-2: in_proj out (z, xBC, dt) T*(2di + 2GN + H), conv out
 *               T*(di + 2GN), SSD out T*di, gated-norm out T*di (all ds);
 *             Transformer: second LayerNorm out T*d (parallel residual),
 *               qkv T*(H + 2*n_kv)*P, attention out T*H*P, MLP hidden T*d_ff
 *               (all ds). Decode steps (T = B) need less than any prefill
 *               chunk, so this bounds them too.
 * workspace   logits of the last token per sequence B*vocab*4 plus its
 *             last hidden row B*d*rs, and per family:
 *             Transformer: max(prefill log-sum-exp T*H*4, split-KV decode
 *               partials B*H*splits*(P + 1)*4), splits = min(128,
 *               ceil(S / 256)), the most the engine asks the decode op for;
 *             Mamba-2: SSD chunk states B*nc*H*P*N*4 and the per-chunk dt
 *               and cumulative dA, 2*B*H*nc*chunk_size*4, nc = ceil(c /
 *               chunk_size); at most 1 GiB + 64 MiB for 16-bit dtypes (the
 *               cuda backend's chunked SSD runs long inputs in windows of
 *               chunks whose workspace stays under 1 GiB);
 *             Mamba-1: nothing more (the chunked scan carries its state in
 *               the cache's SSM state).
 * total       the sum. */
#include <stdlib.h>
#include <string.h>

#include "model/layout.h"

enum { DECODE_SPLIT_KEYS = 256, DECODE_MAX_SPLITS = 128 };

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static int64_t weights_bytes(const sf_model_config *cfg, sf_dtype dtype) {
  sf_tensor_spec *specs;
  int32_t n;
  if (sf_model_layout(cfg, dtype, &specs, &n, NULL) != SF_OK) return 0;
  int64_t total = 0;
  for (int32_t i = 0; i < n; i++) total += sf_tensor_spec_bytes(&specs[i]);
  free(specs);
  return total;
}

int64_t sf_model_estimate_cp_prefill(const sf_model_config *cfg, sf_dtype dtype, int32_t batch,
                                     int64_t context, int k) {
  if (cfg->arch != SF_ARCH_TRANSFORMER || k <= 1 || batch <= 0 || context <= 0) return 0;
  const int64_t B = batch, H = cfg->n_heads, KV = cfg->n_kv_heads, P = cfg->head_dim;
  const int64_t ds = (int64_t)sf_dtype_size(dtype);
  /* A rank's share: two zigzag blocks of ceil(L / 2k) tokens at most. */
  const int64_t local = 2 * ceil_div(context, 2 * (int64_t)k), rows = B * local;
  int64_t bytes = 2 * (2 * B * local * KV * P * ds) + rows * H * P * ds + 2 * rows * H * 4;
  if (dtype != SF_F32 && k > 2) bytes += rows * H * P * 4 + rows * H * 4;
  return bytes;
}

void sf_model_estimate_memory(const sf_model_config *cfg, sf_dtype dtype, int32_t batch, int64_t context,
                              int64_t gen, int64_t chunk_tokens, sf_memory_estimate *out) {
  memset(out, 0, sizeof *out);
  if (sf_model_config_validate(cfg, NULL) != SF_OK || batch <= 0) return;
  if (context < 0) context = 0;
  if (gen < 0) gen = 0;
  const int64_t B = batch, S = context + gen, L = cfg->n_layers, d = cfg->d_model;
  const int64_t ds = (int64_t)sf_dtype_size(dtype), rs = 4;
  const int64_t ctx1 = context > 0 ? context : 1;
  const int64_t c = chunk_tokens > 0 && chunk_tokens < ctx1 ? chunk_tokens : ctx1;
  const int64_t T = B * c;

  out->weights = weights_bytes(cfg, dtype);

  int64_t act = T * (d * rs + d * ds + 8);
  int64_t ws = B * ((int64_t)cfg->vocab_size * 4 + d * rs);
  switch (cfg->arch) {
    case SF_ARCH_TRANSFORMER: {
      const int64_t H = cfg->n_heads, KV = cfg->n_kv_heads, P = cfg->head_dim;
      out->cache = 2 * L * B * S * KV * P * ds;
      act += T * ds * (d + (H + 2 * KV) * P + H * P + cfg->d_ff);
      int64_t splits = ceil_div(S > 0 ? S : 1, DECODE_SPLIT_KEYS);
      if (splits > DECODE_MAX_SPLITS) splits = DECODE_MAX_SPLITS;
      int64_t prefill = T * H * 4, decode = B * H * splits * (P + 1) * 4;
      ws += prefill > decode ? prefill : decode;
      break;
    }
    case SF_ARCH_MAMBA1: {
      const int64_t di = cfg->d_inner, N = cfg->d_state;
      out->cache = L * B * (di * N * 4 + di * (cfg->d_conv - 1) * ds);
      act += T * ds * (2 * di + di + (cfg->dt_rank + 2 * N) + di + di);
      break;
    }
    case SF_ARCH_MAMBA2: {
      const int64_t di = cfg->d_inner, N = cfg->d_state, GN = (int64_t)cfg->n_groups * N;
      const int64_t H = cfg->ssm_heads, P = cfg->ssm_head_dim, conv_dim = di + 2 * GN;
      out->cache = L * B * (H * P * N * 4 + conv_dim * (cfg->d_conv - 1) * ds);
      act += T * ds * ((2 * di + 2 * GN + H) + conv_dim + di + di);
      const int64_t nc = ceil_div(c, cfg->chunk_size);
      int64_t ssd = B * nc * H * P * N * 4 + 2 * B * H * nc * cfg->chunk_size * 4;
      const int64_t window_cap = ((int64_t)1 << 30) + ((int64_t)64 << 20);
      if (dtype != SF_F32 && ssd > window_cap) ssd = window_cap;
      ws += ssd;
      break;
    }
  }
  out->activations = act;
  out->workspace = ws;
  out->total = out->weights + out->cache + out->activations + out->workspace;
}
