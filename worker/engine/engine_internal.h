/* Engine internals shared by its files: the session layout and the
 * description of one forward pass over a set of tokens. */
#ifndef SCANFLASH_ENGINE_INTERNAL_H
#define SCANFLASH_ENGINE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "parallel/cp_mamba.h"
#include "parallel/cp_scratch.h"

enum { SF_SESSION_MAX_ALLOCS = 32 };

/* Scratch buffers (each [rows, width] in act dtype); widths per family:
 *   Mamba-1      B0 xz [2*d_inner], B1 xc [d_inner], B2 x_dbl [dt_rank + 2*d_state],
 *                B3 delta [d_inner], B4 y [d_inner]
 *   Mamba-2      B0 zxbcdt [2*d_inner + 2*ng*d_state + heads], B1 xBC [conv_dim],
 *                B2 y [d_inner]
 *   Transformer  B0 ln2 out [d_model], B1 qkv [(heads + 2*kv_heads) * head_dim],
 *                B2 attention out [heads * head_dim], B3 mlp [d_ff] */
enum { SF_NBUF = 5 };

struct sf_session {
  const sf_model *model;
  sf_op_ctx *ctx;
  const sf_ops *ops;
  sf_dtype dt;              /* activations (the backend's act dtype) */
  size_t esz;
  sf_dtype rdt;             /* the residual stream: f32 always (mamba_ssm's
                               residual_in_fp32; the GEMMs add into it in f32) */
  size_t rsz;
  int x_f32;                /* rdt is f32 while dt is not: norms read an f32 x */
  int32_t batch, vocab, d_model;
  int64_t max_len, chunk_tokens, max_rows; /* max_rows = batch * chunk_tokens */

  int64_t *len;             /* host [batch]: tokens consumed */

  /* inference state: one allocation each, layer l at l * per-layer size */
  void *conv_state;         /* Mamba: [L][batch, conv_dim, d_conv-1] */
  float *ssm_state;         /* Mamba: [L][batch, ...] f32 */
  void *k_cache, *v_cache;  /* Transformer: [L][batch, max_len, kv_heads, head_dim] */
  int64_t conv_layer_elems, ssm_layer_elems, kv_layer_elems;
  int64_t conv_dim;         /* channels of the conv (d_inner or conv_dim) */
  int64_t state_bytes;

  /* small backend arrays: the batch description of the current pass */
  int32_t *d_ids;           /* [max_rows] */
  int32_t *d_pos;           /* [max_rows] absolute positions */
  int64_t *d_start;         /* [batch] */
  int32_t *d_seqlen;        /* [batch] */
  int32_t *d_past;          /* [batch] tokens before this pass */
  int32_t *d_cache_len;     /* [batch] decode: past + 1 */
  int64_t *d_dec_start;     /* [batch] = b (decode tokens as sequences of one) */
  int32_t *d_dec_len;       /* [batch] = 1 */
  int32_t *d_gather;        /* [batch] rows ending a sequence in this chunk */
  int32_t *d_sampled;       /* [batch] */

  /* scratch */
  void *x;                  /* [max_rows, d_model] residual stream (rdt) */
  void *h;                  /* [max_rows, d_model] normed */
  void *buf[SF_NBUF];
  int64_t buf_width[SF_NBUF];
  void *last_h;             /* [batch, d_model] gathered last rows (rdt) */
  float *logits;            /* [batch, vocab] f32: last prefill / decode logits */
  int head_pending;         /* prefill left last_h without its lm head: logits is stale
                               until sf_session_sample (or a caller of logits) runs it */
  float *logits_all;        /* [max_rows, vocab] f32, allocated on first use */
  int64_t scratch_bytes;

  /* host staging for a pass */
  int32_t *h_ids, *h_pos;   /* [max_rows] */
  int64_t *h_start;         /* [batch] */
  int32_t *h_seqlen, *h_past, *h_gather, *h_gather_b; /* [batch] */
  int32_t *h_cache_len;     /* [batch] */
  int64_t *h_inoff;         /* [batch] where each sequence's ids start in the input */

  /* Decode steps as a backend graph (where the backend has graphs): the
   * first step runs eagerly (sizing every op workspace), the second is
   * captured, every later one replays it. */
  int graphs;               /* allowed (sf_session_set_graphs) */
  int fused;                /* sf_fusion bits in use (sf_engine_fusions) */
  int persistent_refused;   /* the backend's mamba1_decode said unsupported: ops from then on */
  int persistent_ran;       /* the last decode step ran through mamba1_decode */
  int eager_steps;          /* decode steps run without the graph so far */
  void *decode_graph;
  void *graph_workspace;    /* ctx->workspace when it was captured */

  /* Context parallel (sf_session_create_parallel, parallel.c): the group,
   * NULL for a one-rank session. */
  sf_transport *cp;
  sf_cp_scratch cp_scratch[2]; /* the attention's buffers, kept over a prefill pass's layers [0]
                                  and over decode steps [1] */
  int cp_rank, cp_k;
  int64_t cache_cap;        /* KV positions per sequence in this rank's cache (max_len alone) */
  int64_t *cp_prompt;       /* host [batch]: each sequence's prompt length (global) */
  int64_t *cp_kv;           /* host [batch]: tokens this rank's KV cache holds */
  int32_t *cp_owner;        /* host [batch]: the rank holding each sequence's last prompt token */
  int32_t *d_cp_dec_len;    /* [batch] decode: 1 where this rank stores the token's K/V, else 0 */
  void *cp_rows;            /* [k * batch, d_model] (rdt): every rank's last rows, all-gathered */
  /* A failure of one rank inside a context-parallel pass: the rank skips its
   * remaining ops but keeps calling the pass's collectives (so no peer waits
   * for it) and the pass ends with t->agree; cp_shared: the failure came
   * back from a collective, so every rank has it already. */
  sf_status cp_st;
  int cp_shared;

  /* Backend memory: one arena for everything sized at creation, plus the
   * allocations made later (all-token logits). */
  void *allocs[SF_SESSION_MAX_ALLOCS];
  int n_allocs;
};

/* Decode-step fusions: each folds a small kernel into a neighbour, since a
 * decode step at batch 1 is a chain of dependent kernels each costing about
 * two microseconds on an H100 however little it moves (bench/notes-decode.md).
 * All on by default; SCANFLASH_UNFUSED turns some off (fusions.c). */
typedef enum sf_fusion {
  SF_FUSE_DT_PROJ = 1,      /* Mamba-1: dt_proj inside the selective state update */
  SF_FUSE_CONV = 2,         /* Mamba: the conv update in in_proj's epilogue */
  SF_FUSE_NORM_PAIR = 4,    /* Pythia: both LayerNorms of x in one call */
  SF_FUSE_ROTARY_PAIR = 8,  /* Pythia: rotary of q and k in one call */
  SF_FUSE_PERSISTENT = 16,  /* Mamba-1, batch 1: every layer in one op (sf_ops mamba1_decode,
                               where the backend has it and takes the shape) */
  SF_FUSE_ALL = 31
} sf_fusion;
sf_status sf_engine_fusions(int *mask, sf_error *err);
#define SF_FUSED(s, bit) (((s)->fused & (bit)) != 0)

/* One forward pass: rows token-major rows in the scratch (the GEMMs' m).
 * decode: one token per sequence, row b = sequence b (update ops);
 * else a prefill chunk described by seqs (start/len in backend memory). */
typedef struct sf_pass {
  int decode;
  int64_t rows;
  sf_seqs seqs;             /* prefill */
  int has_initial_state;    /* prefill: some sequence had tokens before */
} sf_pass;

/* A layer's steps run while st is SF_OK (st starts as s->cp_st): after a
 * failure the rest are skipped, and in a context-parallel pass the layer
 * still makes its collective calls (see cp_st). OP adds `what` as context. */
#define SF_LAYER_STEP(st, expr)                  \
  do {                                           \
    if ((st) == SF_OK) (st) = (expr);            \
  } while (0)
#define SF_LAYER_OP(st, expr, ...)                                          \
  do {                                                                      \
    if ((st) == SF_OK && (expr) != SF_OK) (st) = sf_fail_context(err, __VA_ARGS__); \
  } while (0)

/* Context parallel (parallel.c). Prefill and decode of a session with a
 * group (called by sf_session_prefill / sf_session_decode). */
sf_status sf_engine_cp_prefill(sf_session *s, const sf_batch_input *in, float *last_logits,
                               float *all_logits, sf_error *err);
sf_status sf_engine_cp_decode(sf_session *s, const int32_t *ids, float *logits, sf_error *err);
/* The end of a collective call: rc agreed over the group (nothing for a
 * one-rank session, or when rc came back from a collective already). */
sf_status sf_engine_cp_end(sf_session *s, sf_status rc, sf_error *err);
/* st after a layer's collective call returned rc. shared: the collective
 * agrees its status itself (ring attention, decode attention), so its
 * failure is every rank's and ends the pass at once (s->cp_shared; the
 * layer returns); else (Mamba's state hand-overs) the failure is this
 * rank's, which keeps up. st keeps this rank's own earlier failure; the
 * collective wrote into err only when st was SF_OK (pass it a scratch
 * error otherwise). */
sf_status sf_engine_cp_after(sf_session *s, sf_status st, sf_status rc, int shared, sf_error *err,
                             const char *what);

/* The prefill's input checks (prefill.c): lens, ids, room; fills s->h_inoff
 * and *max_new (the longest sequence's new tokens). */
sf_status sf_engine_check_input(sf_session *s, const sf_batch_input *in, int64_t *max_new,
                                sf_error *err);

/* Backend allocation tracked by the session (freed with it). */
sf_status sf_session_alloc(sf_session *s, size_t bytes, void **ptr, sf_error *err);

/* The per-family layer forwards over s->x (the residual stream, updated in
 * place) for the rows of pass. */
sf_status sf_mamba1_layer_forward(sf_session *s, const sf_pass *pass, int32_t layer, sf_error *err);
/* A Mamba-1 decode pass at batch 1 through the backend's whole-step op
 * (SF_FUSE_PERSISTENT): *done = 1 when it ran every layer; 0 when it does
 * not apply (the caller runs the layers op by op). */
sf_status sf_mamba1_decode_layers(sf_session *s, const sf_pass *pass, int *done, sf_error *err);
sf_status sf_mamba2_layer_forward(sf_session *s, const sf_pass *pass, int32_t layer, sf_error *err);
sf_status sf_transformer_layer_forward(sf_session *s, const sf_pass *pass, int32_t layer,
                                       sf_error *err);

/* The whole model over pass: embedding of s->d_ids into s->x, then every layer. */
sf_status sf_forward_body(sf_session *s, const sf_pass *pass, sf_error *err);
/* Final norm and lm head: rows of src ([rows, d_model], row stride d_model)
 * into f32 logits [rows, vocab]; the normed rows go to s->h (src is kept). */
sf_status sf_forward_head(sf_session *s, void *src, int64_t rows, float *logits, sf_error *err);

/* c[m, n] = a[m, k] . w^T + bias in the session's dtype, or, with residual,
 * c += ... where c is the residual stream (rdt); errors get `what` as
 * context. w is [n, k] with row stride k. */
sf_status sf_engine_gemm(sf_session *s, int64_t m, int64_t n, int64_t k, const void *a, int64_t lda,
                         const sf_tensor *w, const sf_tensor *bias, void *c, int64_t ldc,
                         int residual, const char *what, sf_error *err);
/* The same in two steps, for a caller that adds an epilogue. */
sf_gemm_params sf_engine_gemm_params(sf_session *s, int64_t m, int64_t n, int64_t k, const void *a, int64_t lda,
                                     const sf_tensor *w, const sf_tensor *bias, void *c, int64_t ldc, int residual);
sf_status sf_engine_run_gemm(sf_session *s, const sf_gemm_params *g, const char *what, sf_error *err);

/* A norm of the residual stream's rows (rdt) into out (dt). */
sf_norm_params sf_engine_norm_of_x(const sf_session *s, sf_norm_kind kind, const void *x, int64_t rows,
                                   const sf_tensor *w, const sf_tensor *b, void *out);

/* Element offset helpers. */
static inline void *sf_elem(void *base, int64_t i, size_t esz) {
  return (char *)base + (size_t)i * esz;
}
/* A Mamba layer's states in the session (conv state in the activation
 * dtype, SSM state f32): what its conv and scan carry from chunk to chunk,
 * and what a context-parallel prefill passes from rank to rank. */
static inline sf_cp_mamba_state sf_engine_mamba_states(const sf_session *s, int32_t layer) {
  return (sf_cp_mamba_state){.conv = sf_elem(s->conv_state, layer * s->conv_layer_elems, s->esz),
                             .conv_bytes = (size_t)s->conv_layer_elems * s->esz,
                             .ssm = s->ssm_state + layer * s->ssm_layer_elems,
                             .ssm_bytes = (size_t)s->ssm_layer_elems * sizeof(float)};
}
static inline const void *sf_celem(const void *base, int64_t i, size_t esz) {
  return (const char *)base + (size_t)i * esz;
}

/* Runs the lm head a prefill left pending, so s->logits is current. */
sf_status sf_session_logits_ready(sf_session *s, sf_error *err);

#endif
