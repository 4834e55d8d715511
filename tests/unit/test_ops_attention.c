/* cpu reference ops, attention set: kv_append, tiled prefill attention
 * (online softmax), naive attention, split-KV decode, the log-sum-exp
 * merge (two halves of an attention merged == the whole). Random inputs (seed
 * printed; SF_TEST_SEED replays) through strided views: packed GPT-NeoX qkv
 * [tokens, heads, 3, head_dim], padded caches, padded and varlen batches.
 * Compared with the double reference in tests/ref by ||out - ref|| / ||ref||;
 * outputs are poisoned (NaN where the op must write, a sentinel where it must
 * not) and the unused parts of the KV cache hold NaN, so an unwritten output
 * or a read past the visible keys fails.
 *
 * Tolerances (relative L2): attention outputs 1e-5 against the double
 * reference and between implementations (tiled vs naive, decode vs prefill,
 * chunked vs one-shot); lse 1e-6; kv_append exact. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_table.h"
#include "ref/ref.h"
#include "scanflash/rng.h"
#include "test.h"

#define TOL_ATTN 1e-5
#define TOL_LSE 1e-6
#define SENTINEL 12345.0f

static sf_rng rng;
static sf_op_ctx ctx;
static const sf_ops *ops = &sf_ops_cpu;
static double worst_attn = 0, worst_lse = 0; /* largest errors seen, for the summary */

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  REQUIRE(p);
  return p;
}
static float *fmalloc(int64_t n) { return xmalloc((size_t)n * sizeof(float)); }
static void fill_normal(float *p, int64_t n) {
  for (int64_t i = 0; i < n; i++) p[i] = sf_rng_normal(&rng);
}
static void fill_const(float *p, int64_t n, float v) {
  for (int64_t i = 0; i < n; i++) p[i] = v;
}

typedef struct cmp { double rel, max_abs; int64_t nans; } cmp;

/* got (fp32) against want (double or fp32 via wantf), n dense values. */
static cmp compare(const float *got, const double *want, const float *wantf, int64_t n) {
  cmp c = {0, 0, 0};
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    double g = got[i], e = want ? want[i] : wantf[i];
    if (isnan(g) || isnan(e)) { c.nans++; continue; }
    num += (g - e) * (g - e);
    den += e * e;
    if (fabs(g - e) > c.max_abs) c.max_abs = fabs(g - e);
  }
  c.rel = den > 0 ? sqrt(num / den) : sqrt(num);
  return c;
}

#define CHECK_CMP(what, c, tol, worst)                                                       \
  do {                                                                                       \
    cmp c_ = (c);                                                                            \
    printf("    %-40s rel %.2e  max abs %.2e  (tol %.0e)\n", what, c_.rel, c_.max_abs,     \
           (double)(tol));                                                                   \
    CHECK_MSG(c_.nans == 0, "%s: %lld NaN values (unwritten?)", what, (long long)c_.nans);  \
    CHECK_MSG(c_.rel <= (tol), "%s: rel err %.3e > %.0e", what, c_.rel, (double)(tol));      \
    if (c_.rel > (worst)) (worst) = c_.rel;                                                  \
  } while (0)

#define CHECK_FAILS(call, want, op_name)                                                 \
  do {                                                                                   \
    sf_error e_ = {0};                                                                   \
    sf_status s_ = (call);                                                               \
    CHECK_MSG(s_ == (want), "%s returned %s, want %s", #call, sf_status_name(s_),        \
              sf_status_name(want));                                                     \
    CHECK_MSG(e_.code == s_, "error code not set");                                      \
    CHECK_MSG(strstr(e_.msg, op_name) != NULL, "message '%s' does not name %s", e_.msg, \
              op_name);                                                                  \
    printf("  rejected: %s\n", e_.msg);                                                  \
  } while (0)
/* The call expression passes &e_, the error the macro declares. */

/* ------------------------------------------------------------ a KV cache */
/* Cache [B][cap][Hkv][D] with padded strides, NaN wherever nothing was
 * written, plus a dense shadow copy kd/vd [B][cap][Hkv][D] of what should be
 * in it. */
typedef struct cache {
  int32_t B, Hkv, D;
  int64_t cap;
  sf_kv_cache_view view;
  float *k, *v, *kd, *vd;
  int64_t total;
  unsigned char *written;  /* [B][cap]: positions that hold keys */
} cache;

static void cache_init(cache *c, int32_t B, int32_t Hkv, int32_t D, int64_t cap) {
  c->B = B; c->Hkv = Hkv; c->D = D; c->cap = cap;
  const int64_t hs = D + 2, ps = Hkv * hs + 1, bs = cap * ps + 3;
  c->total = B * bs;
  c->k = fmalloc(c->total);
  c->v = fmalloc(c->total);
  fill_const(c->k, c->total, NAN);
  fill_const(c->v, c->total, NAN);
  c->kd = fmalloc((int64_t)B * cap * Hkv * D);
  c->vd = fmalloc((int64_t)B * cap * Hkv * D);
  fill_const(c->kd, (int64_t)B * cap * Hkv * D, NAN);
  fill_const(c->vd, (int64_t)B * cap * Hkv * D, NAN);
  c->written = xmalloc((size_t)(B * cap));
  memset(c->written, 0, (size_t)(B * cap));
  c->view = (sf_kv_cache_view){.k = c->k, .v = c->v, .batch_stride = bs, .pos_stride = ps,
                               .head_stride = hs, .max_len = cap};
}
static void cache_free(cache *c) {
  free(c->k); free(c->v); free(c->kd); free(c->vd); free(c->written);
}
static int64_t cache_off(const cache *c, int64_t b, int64_t pos, int64_t h) {
  return b * c->view.batch_stride + pos * c->view.pos_stride + h * c->view.head_stride;
}
static int64_t shadow_off(const cache *c, int64_t b, int64_t pos, int64_t h) {
  return ((b * c->cap + pos) * c->Hkv + h) * c->D;
}
/* Earlier chunks: random keys at positions [0, n) written straight in. */
static void cache_fill_past(cache *c, int32_t b, int64_t n) {
  for (int64_t pos = 0; pos < n; pos++) {
    for (int32_t h = 0; h < c->Hkv; h++)
      for (int32_t d = 0; d < c->D; d++) {
        float kv = sf_rng_normal(&rng), vv = sf_rng_normal(&rng);
        c->k[cache_off(c, b, pos, h) + d] = c->kd[shadow_off(c, b, pos, h) + d] = kv;
        c->v[cache_off(c, b, pos, h) + d] = c->vd[shadow_off(c, b, pos, h) + d] = vv;
      }
    c->written[b * c->cap + pos] = 1;
  }
}
/* Every cache element equals the shadow where written and is NaN elsewhere. */
static int64_t cache_mismatches(const cache *c) {
  int64_t bad = 0;
  float *ek = fmalloc(c->total), *ev = fmalloc(c->total);
  fill_const(ek, c->total, NAN);
  fill_const(ev, c->total, NAN);
  for (int32_t b = 0; b < c->B; b++)
    for (int64_t pos = 0; pos < c->cap; pos++)
      if (c->written[b * c->cap + pos])
        for (int32_t h = 0; h < c->Hkv; h++)
          for (int32_t d = 0; d < c->D; d++) {
            ek[cache_off(c, b, pos, h) + d] = c->kd[shadow_off(c, b, pos, h) + d];
            ev[cache_off(c, b, pos, h) + d] = c->vd[shadow_off(c, b, pos, h) + d];
          }
  for (int64_t i = 0; i < c->total; i++) {
    bad += isnan(ek[i]) ? !isnan(c->k[i]) : ek[i] != c->k[i];
    bad += isnan(ev[i]) ? !isnan(c->v[i]) : ev[i] != c->v[i];
  }
  free(ek);
  free(ev);
  return bad;
}
/* Dense k, v [n][D] of kv head h of sequence b, from the shadow. */
static void gather_kv(const cache *c, int32_t b, int32_t h, int64_t n, float *k, float *v) {
  for (int64_t j = 0; j < n; j++) {
    memcpy(k + j * c->D, c->kd + shadow_off(c, b, j, h), (size_t)c->D * sizeof(float));
    memcpy(v + j * c->D, c->vd + shadow_off(c, b, j, h), (size_t)c->D * sizeof(float));
  }
}

/* ------------------------------------------------------------ prefill problems */
typedef struct prefill_case {
  const char *name;
  int32_t batch;
  int32_t len[4], past[4];
  int varlen;           /* packed starts; else padded with max_len = pad_len */
  int64_t pad_len;
  int32_t H, Hkv, D;
  int causal;
  float scale;          /* 0 = 1/sqrt(D) */
  int packed_qkv;       /* q, k, v from one [tokens, H, 3, D] buffer (H == Hkv) */
  int with_lse;
} prefill_case;

/* The new tokens of a batch: q/k/v views and the sequences. */
typedef struct tokens {
  int64_t T, max_len;
  int64_t start[4];
  int32_t len[4], past[4];
  float *buf_q, *buf_kv;  /* owners */
  const float *q, *k, *v;
  int64_t q_ts, q_hs, kv_ts, kv_hs;
} tokens;

static void tokens_init(tokens *t, const prefill_case *pc) {
  const int32_t B = pc->batch, H = pc->H, Hkv = pc->Hkv, D = pc->D;
  int64_t maxl = 0, off = 0;
  for (int32_t b = 0; b < B; b++) {
    t->len[b] = pc->len[b];
    t->past[b] = pc->past[b];
    if (pc->len[b] > maxl) maxl = pc->len[b];
  }
  t->max_len = pc->varlen ? maxl : pc->pad_len;
  for (int32_t b = 0; b < B; b++) {
    t->start[b] = pc->varlen ? off : b * pc->pad_len;
    off += pc->len[b];
  }
  t->T = pc->varlen ? off : B * pc->pad_len;
  if (pc->packed_qkv) {
    REQUIRE(H == Hkv);
    t->q_ts = t->kv_ts = (int64_t)H * 3 * D + 2;
    t->q_hs = t->kv_hs = 3 * D;
    t->buf_q = fmalloc(t->T * t->q_ts);
    fill_normal(t->buf_q, t->T * t->q_ts);
    t->buf_kv = NULL;
    t->q = t->buf_q;
    t->k = t->buf_q + D;
    t->v = t->buf_q + 2 * D;
  } else {
    t->q_ts = (int64_t)H * (D + 1) + 3;
    t->q_hs = D + 1;
    t->kv_ts = (int64_t)Hkv * D + 5;
    t->kv_hs = D;
    t->buf_q = fmalloc(t->T * t->q_ts);
    t->buf_kv = fmalloc(2 * t->T * t->kv_ts);
    fill_normal(t->buf_q, t->T * t->q_ts);
    fill_normal(t->buf_kv, 2 * t->T * t->kv_ts);
    t->q = t->buf_q;
    t->k = t->buf_kv;
    t->v = t->buf_kv + t->T * t->kv_ts;
  }
}

/* kv_append of tokens [from, from + n[b]) of each sequence at past = past[b]
 * (+ from), and the same into the shadow. */
static sf_status append(cache *c, const tokens *t, int32_t B, const int32_t *from,
                        const int32_t *n, sf_error *err) {
  int64_t start[4];
  int32_t past[4], len[4];
  int64_t maxl = 0;
  for (int32_t b = 0; b < B; b++) {
    start[b] = t->start[b] + from[b];
    past[b] = t->past[b] + from[b];
    len[b] = n[b];
    if (n[b] > maxl) maxl = n[b];
  }
  sf_kv_append_params p = {.dtype = SF_F32, .n_kv_heads = c->Hkv, .head_dim = c->D,
                           .seqs = {.batch = B, .max_len = maxl, .start = start, .len = len},
                           .past_len = past, .k = t->k, .k_token_stride = t->kv_ts,
                           .k_head_stride = t->kv_hs, .v = t->v, .v_token_stride = t->kv_ts,
                           .v_head_stride = t->kv_hs, .cache = c->view};
  sf_status s = ops->kv_append(&ctx, &p, err);
  if (s != SF_OK) return s;
  for (int32_t b = 0; b < B; b++)
    for (int32_t i = 0; i < len[b]; i++) {
      const int64_t tok = start[b] + i, pos = past[b] + i;
      for (int32_t h = 0; h < c->Hkv; h++) {
        memcpy(c->kd + shadow_off(c, b, pos, h), t->k + tok * t->kv_ts + h * t->kv_hs,
               (size_t)c->D * sizeof(float));
        memcpy(c->vd + shadow_off(c, b, pos, h), t->v + tok * t->kv_ts + h * t->kv_hs,
               (size_t)c->D * sizeof(float));
      }
      c->written[b * c->cap + pos] = 1;
    }
  return SF_OK;
}

/* Output buffers [T][H][D] with padded strides: SENTINEL everywhere, NaN
 * where the op must write; got[] gathers the written part densely. */
typedef struct outbuf {
  int64_t ts, hs, total, lse_ts, lse_total;
  float *o, *lse;
} outbuf;

static void outbuf_init(outbuf *ob, const tokens *t, int32_t B, int32_t H, int32_t D) {
  ob->hs = D + 3;
  ob->ts = (int64_t)H * ob->hs + 1;
  ob->total = t->T * ob->ts;
  ob->lse_ts = H + 2;
  ob->lse_total = t->T * ob->lse_ts;
  ob->o = fmalloc(ob->total);
  ob->lse = fmalloc(ob->lse_total);
  fill_const(ob->o, ob->total, SENTINEL);
  fill_const(ob->lse, ob->lse_total, SENTINEL);
  for (int32_t b = 0; b < B; b++)
    for (int32_t i = 0; i < t->len[b]; i++)
      for (int32_t h = 0; h < H; h++) {
        const int64_t tok = t->start[b] + i;
        fill_const(ob->o + tok * ob->ts + h * ob->hs, D, NAN);
        ob->lse[tok * ob->lse_ts + h] = NAN;
      }
}
static void outbuf_free(outbuf *ob) { free(ob->o); free(ob->lse); }

/* Dense [valid tokens][H][D] and [valid tokens][H]; counts changed sentinels. */
static int64_t outbuf_gather(const outbuf *ob, const tokens *t, int32_t B, int32_t H, int32_t D,
                             float *o, float *lse, int with_lse) {
  int64_t n = 0;
  unsigned char *valid = xmalloc((size_t)ob->total), *lvalid = xmalloc((size_t)ob->lse_total);
  memset(valid, 0, (size_t)ob->total);
  memset(lvalid, 0, (size_t)ob->lse_total);
  for (int32_t b = 0; b < B; b++)
    for (int32_t i = 0; i < t->len[b]; i++, n++) {
      const int64_t tok = t->start[b] + i;
      for (int32_t h = 0; h < H; h++) {
        const int64_t base = tok * ob->ts + h * ob->hs;
        memcpy(o + (n * H + h) * D, ob->o + base, (size_t)D * sizeof(float));
        memset(valid + base, 1, (size_t)D);
        lse[n * H + h] = ob->lse[tok * ob->lse_ts + h];
        lvalid[tok * ob->lse_ts + h] = with_lse;
      }
    }
  int64_t changed = 0;
  for (int64_t i = 0; i < ob->total; i++) changed += !valid[i] && ob->o[i] != SENTINEL;
  for (int64_t i = 0; i < ob->lse_total; i++)
    changed += !lvalid[i] && !(ob->lse[i] == SENTINEL || (!with_lse && isnan(ob->lse[i])));
  free(valid);
  free(lvalid);
  return changed;
}

typedef sf_status (*attn_fn)(sf_op_ctx *, const sf_attention_params *, sf_error *);

static sf_attention_params attn_params(const prefill_case *pc, const tokens *t, const cache *c,
                                       outbuf *ob, const int64_t *start, const int32_t *len,
                                       const int32_t *past, int64_t max_len, int32_t bq,
                                       int32_t bk) {
  sf_attention_params p = {
      .dtype = SF_F32, .n_heads = pc->H, .n_kv_heads = pc->Hkv, .head_dim = pc->D,
      .scale = pc->scale ? pc->scale : 1.0f / sqrtf((float)pc->D), .causal = pc->causal,
      .seqs = {.batch = pc->batch, .max_len = max_len, .start = start, .len = len},
      .past_len = past, .q = t->q, .q_token_stride = t->q_ts, .q_head_stride = t->q_hs,
      .cache = c->view, .out = ob->o, .out_token_stride = ob->ts, .out_head_stride = ob->hs,
      .lse = pc->with_lse ? ob->lse : NULL, .lse_token_stride = ob->lse_ts,
      .block_q = bq, .block_k = bk};
  return p;
}

/* Double reference for every valid (token, head): dense [n][H][D] and [n][H]. */
static int64_t reference(const prefill_case *pc, const tokens *t, const cache *c, double *ro,
                         double *rl) {
  const int32_t H = pc->H, D = pc->D, group = pc->H / pc->Hkv;
  const double scale = pc->scale ? pc->scale : 1.0f / sqrtf((float)pc->D);
  float *k = fmalloc(c->cap * D), *v = fmalloc(c->cap * D);
  int64_t n = 0;
  for (int32_t b = 0; b < pc->batch; b++)
    for (int32_t i = 0; i < t->len[b]; i++, n++)
      for (int32_t h = 0; h < H; h++) {
        const int64_t n_keys = pc->causal ? t->past[b] + i + 1 : t->past[b] + t->len[b];
        gather_kv(c, b, h / group, n_keys, k, v);
        const float *q = t->q + (t->start[b] + i) * t->q_ts + h * t->q_hs;
        ref_attention_query(q, k, v, n_keys, D, scale, ro + (n * H + h) * D, rl + n * H + h);
      }
  free(k);
  free(v);
  return n;
}

static void run_prefill_case(const prefill_case *pc, int32_t bq, int32_t bk) {
  printf("  %s (blocks %d x %d)\n", pc->name, bq, bk);
  const int32_t B = pc->batch, H = pc->H, D = pc->D;
  tokens t;
  tokens_init(&t, pc);
  int64_t cap = 0;
  for (int32_t b = 0; b < B; b++)
    if (t.past[b] + t.len[b] > cap) cap = t.past[b] + t.len[b];
  cap += 3; /* room the ops must not touch */
  cache c;
  cache_init(&c, B, pc->Hkv, D, cap);
  for (int32_t b = 0; b < B; b++) cache_fill_past(&c, b, t.past[b]);
  sf_error err = {0};
  int32_t zero[4] = {0};
  CHECK_MSG(append(&c, &t, B, zero, t.len, &err) == SF_OK, "kv_append: %s", err.msg);
  CHECK_EQ_I64(cache_mismatches(&c), 0);

  int64_t nv = 0;
  for (int32_t b = 0; b < B; b++) nv += t.len[b];
  double *ro = xmalloc((size_t)(nv * H * D) * sizeof(double));
  double *rl = xmalloc((size_t)(nv * H) * sizeof(double));
  reference(pc, &t, &c, ro, rl);

  float *got[2], *got_lse[2];
  const char *names[2] = {"tiled", "naive"};
  attn_fn fns[2] = {ops->attention, ops->attention_naive};
  for (int f = 0; f < 2; f++) {
    outbuf ob;
    outbuf_init(&ob, &t, B, H, D);
    sf_attention_params p = attn_params(pc, &t, &c, &ob, t.start, t.len, t.past, t.max_len, bq, bk);
    CHECK_MSG(fns[f](&ctx, &p, &err) == SF_OK, "%s: %s", names[f], err.msg);
    got[f] = fmalloc(nv * H * D);
    got_lse[f] = fmalloc(nv * H);
    CHECK_EQ_I64(outbuf_gather(&ob, &t, B, H, D, got[f], got_lse[f], pc->with_lse), 0);
    char what[64];
    snprintf(what, sizeof what, "%s vs double reference", names[f]);
    CHECK_CMP(what, compare(got[f], ro, NULL, nv * H * D), TOL_ATTN, worst_attn);
    if (pc->with_lse) {
      snprintf(what, sizeof what, "%s lse vs reference", names[f]);
      CHECK_CMP(what, compare(got_lse[f], rl, NULL, nv * H), TOL_LSE, worst_lse);
    }
    outbuf_free(&ob);
  }
  CHECK_CMP("tiled vs naive", compare(got[0], NULL, got[1], nv * H * D), TOL_ATTN, worst_attn);
  CHECK_EQ_I64(cache_mismatches(&c), 0); /* attention reads, never writes, the cache */
  for (int f = 0; f < 2; f++) { free(got[f]); free(got_lse[f]); }
  free(ro); free(rl);
  cache_free(&c);
  free(t.buf_q); free(t.buf_kv);
}

static void test_prefill(void) {
  printf("prefill attention\n");
  const prefill_case cases[] = {
      {.name = "padded B=2 MHA 4 heads D=64 causal, packed qkv, past 0/13", .batch = 2,
       .len = {37, 70}, .past = {0, 13}, .pad_len = 80, .H = 4, .Hkv = 4, .D = 64, .causal = 1,
       .packed_qkv = 1, .with_lse = 1},
      {.name = "varlen B=3 GQA 8/2 D=128 causal", .batch = 3, .len = {5, 33, 1},
       .past = {0, 7, 40}, .varlen = 1, .H = 8, .Hkv = 2, .D = 128, .causal = 1, .with_lse = 1},
      {.name = "varlen B=2 GQA 8/1 D=64 non-causal", .batch = 2, .len = {19, 50}, .past = {3, 0},
       .varlen = 1, .H = 8, .Hkv = 1, .D = 64, .causal = 0, .with_lse = 1},
      {.name = "padded B=1 MHA 3 heads D=24 causal L=150 past 70, no lse", .batch = 1,
       .len = {150}, .past = {70}, .pad_len = 150, .H = 3, .Hkv = 3, .D = 24, .causal = 1,
       .packed_qkv = 1},
      {.name = "varlen B=2 GQA 2/1 D=37 causal", .batch = 2, .len = {9, 4}, .past = {2, 0},
       .varlen = 1, .H = 2, .Hkv = 1, .D = 37, .causal = 1, .with_lse = 1},
      {.name = "varlen B=3 GQA 8/2 D=64 causal, sharp (scale 1)", .batch = 3, .len = {40, 1, 66},
       .past = {0, 90, 5}, .varlen = 1, .H = 8, .Hkv = 2, .D = 64, .causal = 1, .scale = 1.0f,
       .with_lse = 1},
      {.name = "padded B=3 with an empty sequence, GQA 4/2 D=64", .batch = 3, .len = {0, 12, 30},
       .past = {4, 0, 9}, .pad_len = 32, .H = 4, .Hkv = 2, .D = 64, .causal = 1, .with_lse = 1},
  };
  const int32_t blocks[][2] = {{16, 32}, {0, 0}, {8, 16}, {0, 0}, {1, 1}, {64, 16}, {5, 7}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    run_prefill_case(&cases[i], blocks[i][0], blocks[i][1]);
  run_prefill_case(&cases[4], 1000, 3); /* a query block larger than any sequence */
  run_prefill_case(&cases[1], 3, 1000);
}

/* ------------------------------------------------------------ chunked prefill */
/* Two calls with past_len (chunk 1 then chunk 2, kv_append before each) give
 * what one call over the whole prompt gives. */
static void test_chunked(void) {
  printf("chunked prefill == one-shot\n");
  const prefill_case pc = {.name = "chunked", .batch = 2, .len = {45, 30}, .past = {0, 0},
                           .pad_len = 48, .H = 4, .Hkv = 2, .D = 64, .causal = 1, .with_lse = 1};
  const int32_t B = 2, H = pc.H, D = pc.D;
  const int32_t c1[2] = {20, 11}, c2[2] = {25, 19};
  tokens t;
  tokens_init(&t, &pc);
  attn_fn fns[2] = {ops->attention, ops->attention_naive};
  const char *names[2] = {"tiled", "naive"};
  int64_t nv = 75;
  for (int f = 0; f < 2; f++) {
    sf_error err = {0};
    cache one, two;
    cache_init(&one, B, pc.Hkv, D, 50);
    cache_init(&two, B, pc.Hkv, D, 50);
    int32_t zero[2] = {0, 0};
    CHECK(append(&one, &t, B, zero, t.len, &err) == SF_OK);
    outbuf a, b;
    outbuf_init(&a, &t, B, H, D);
    outbuf_init(&b, &t, B, H, D);
    sf_attention_params p = attn_params(&pc, &t, &one, &a, t.start, t.len, t.past, t.max_len, 16, 16);
    CHECK_MSG(fns[f](&ctx, &p, &err) == SF_OK, "one-shot: %s", err.msg);

    /* chunk 1: tokens [0, c1), past 0 */
    CHECK(append(&two, &t, B, zero, c1, &err) == SF_OK);
    p = attn_params(&pc, &t, &two, &b, t.start, c1, zero, 20, 16, 16);
    CHECK_MSG(fns[f](&ctx, &p, &err) == SF_OK, "chunk 1: %s", err.msg);
    /* chunk 2: tokens [c1, len), past c1 */
    CHECK(append(&two, &t, B, c1, c2, &err) == SF_OK);
    const int64_t start2[2] = {t.start[0] + c1[0], t.start[1] + c1[1]};
    p = attn_params(&pc, &t, &two, &b, start2, c2, c1, 25, 16, 16);
    CHECK_MSG(fns[f](&ctx, &p, &err) == SF_OK, "chunk 2: %s", err.msg);
    CHECK_EQ_I64(cache_mismatches(&two), 0);

    float *oa = fmalloc(nv * H * D), *ob = fmalloc(nv * H * D), *la = fmalloc(nv * H),
          *lb = fmalloc(nv * H);
    CHECK_EQ_I64(outbuf_gather(&a, &t, B, H, D, oa, la, 1), 0);
    CHECK_EQ_I64(outbuf_gather(&b, &t, B, H, D, ob, lb, 1), 0);
    char what[64];
    snprintf(what, sizeof what, "%s: chunked vs one-shot out", names[f]);
    CHECK_CMP(what, compare(ob, NULL, oa, nv * H * D), TOL_ATTN, worst_attn);
    snprintf(what, sizeof what, "%s: chunked vs one-shot lse", names[f]);
    CHECK_CMP(what, compare(lb, NULL, la, nv * H), TOL_LSE, worst_lse);
    int64_t bit_diff = 0;
    for (int64_t i = 0; i < nv * H * D; i++) bit_diff += oa[i] != ob[i];
    printf("    %s: %lld of %lld outputs differ bitwise\n", names[f], (long long)bit_diff,
           (long long)(nv * H * D));
    free(oa); free(ob); free(la); free(lb);
    outbuf_free(&a); outbuf_free(&b);
    cache_free(&one); cache_free(&two);
  }
  free(t.buf_q);
  free(t.buf_kv);
}

/* ------------------------------------------------------------ decode */
typedef struct decode_case {
  const char *name;
  int32_t batch, cache_len[4], H, Hkv, D;
} decode_case;

static void run_decode_case(const decode_case *dc) {
  printf("  %s\n", dc->name);
  const int32_t B = dc->batch, H = dc->H, Hkv = dc->Hkv, D = dc->D, group = H / Hkv;
  int64_t cap = 0;
  for (int32_t b = 0; b < B; b++)
    if (dc->cache_len[b] > cap) cap = dc->cache_len[b];
  cap += 2;
  cache c;
  cache_init(&c, B, Hkv, D, cap);
  for (int32_t b = 0; b < B; b++) cache_fill_past(&c, b, dc->cache_len[b]);
  const int64_t qbs = (int64_t)H * (D + 1) + 2, qhs = D + 1;
  float *q = fmalloc(B * qbs);
  fill_normal(q, B * qbs);
  const float scale = 1.0f / sqrtf((float)D);

  double *ro = xmalloc((size_t)(B * H * D) * sizeof(double));
  double *rlse = xmalloc((size_t)(B * H) * sizeof(double));
  float *k = fmalloc(cap * D), *v = fmalloc(cap * D);
  for (int32_t b = 0; b < B; b++)
    for (int32_t h = 0; h < H; h++) {
      gather_kv(&c, b, h / group, dc->cache_len[b], k, v);
      ref_attention_query(q + b * qbs + h * qhs, k, v, dc->cache_len[b], D, scale,
                          ro + (b * H + h) * D, rlse + b * H + h);
    }
  free(k);
  free(v);

  /* Full (prefill) attention of the same queries: len 1 at past = cache_len - 1. */
  const int64_t obs = (int64_t)H * (D + 3) + 1, ohs = D + 3;
  float *full = fmalloc(B * obs), *dense_full = fmalloc(B * H * D), *dense = fmalloc(B * H * D);
  fill_const(full, B * obs, NAN);
  int64_t start[4];
  int32_t one[4], past[4];
  for (int32_t b = 0; b < B; b++) { start[b] = b; one[b] = 1; past[b] = dc->cache_len[b] - 1; }
  sf_attention_params ap = {.dtype = SF_F32, .n_heads = H, .n_kv_heads = Hkv, .head_dim = D,
                            .scale = scale, .causal = 1,
                            .seqs = {.batch = B, .max_len = 1, .start = start, .len = one},
                            .past_len = past, .q = q, .q_token_stride = qbs, .q_head_stride = qhs,
                            .cache = c.view, .out = full, .out_token_stride = obs,
                            .out_head_stride = ohs};
  sf_error err = {0};
  CHECK_MSG(ops->attention(&ctx, &ap, &err) == SF_OK, "attention: %s", err.msg);
  for (int32_t b = 0; b < B; b++)
    for (int32_t h = 0; h < H; h++)
      memcpy(dense_full + (b * H + h) * D, full + b * obs + h * ohs, (size_t)D * sizeof(float));

  const int32_t splits[] = {0, 1, 3, 7, 1000};
  float *out = fmalloc(B * obs);
  const int64_t lbs = H + 1; /* lse rows padded: the pad must stay untouched */
  float *lse = fmalloc(B * lbs);
  for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
    fill_const(out, B * obs, SENTINEL);
    fill_const(lse, B * lbs, SENTINEL);
    for (int32_t b = 0; b < B; b++) fill_const(lse + b * lbs, H, NAN);
    for (int32_t b = 0; b < B; b++)
      for (int32_t h = 0; h < H; h++) fill_const(out + b * obs + h * ohs, D, NAN);
    sf_attention_decode_params p = {.dtype = SF_F32, .batch = B, .n_heads = H, .n_kv_heads = Hkv,
                                    .head_dim = D, .scale = scale, .q = q, .q_batch_stride = qbs,
                                    .q_head_stride = qhs, .cache = c.view,
                                    .cache_len = dc->cache_len, .num_splits = splits[s],
                                    .out = out, .out_batch_stride = obs, .out_head_stride = ohs,
                                    .lse = lse, .lse_batch_stride = lbs};
    CHECK_MSG(ops->attention_decode(&ctx, &p, &err) == SF_OK, "decode: %s", err.msg);
    double lse_worst = 0;
    for (int32_t b = 0; b < B; b++) {
      CHECK(lse[b * lbs + H] == SENTINEL);
      for (int32_t h = 0; h < H; h++) {
        const double d = fabs((double)lse[b * lbs + h] - rlse[b * H + h]) / fmax(1.0, fabs(rlse[b * H + h]));
        lse_worst = isnan(d) ? INFINITY : fmax(lse_worst, d);
      }
    }
    CHECK_MSG(lse_worst <= 1e-6, "decode lse (num_splits %d): rel err %g > 1e-6", splits[s], lse_worst);
    int64_t changed = 0;
    for (int32_t b = 0; b < B; b++) {
      for (int32_t h = 0; h < H; h++) {
        memcpy(dense + (b * H + h) * D, out + b * obs + h * ohs, (size_t)D * sizeof(float));
        for (int64_t i = D; i < ohs; i++) changed += out[b * obs + h * ohs + i] != SENTINEL;
      }
      for (int64_t i = (int64_t)H * ohs; i < obs; i++) changed += out[b * obs + i] != SENTINEL;
    }
    CHECK_EQ_I64(changed, 0);
    char what[64];
    snprintf(what, sizeof what, "num_splits %d vs double reference", splits[s]);
    CHECK_CMP(what, compare(dense, ro, NULL, B * H * D), TOL_ATTN, worst_attn);
    snprintf(what, sizeof what, "num_splits %d vs full attention", splits[s]);
    CHECK_CMP(what, compare(dense, NULL, dense_full, B * H * D), TOL_ATTN, worst_attn);
  }
  CHECK_EQ_I64(cache_mismatches(&c), 0);
  free(out); free(lse); free(rlse); free(full); free(dense_full); free(dense); free(q); free(ro);
  cache_free(&c);
}

static void test_decode(void) {
  printf("split-KV decode\n");
  const decode_case cases[] = {
      {"B=3 GQA 8/2 D=64, cache_len 1/100/300", 3, {1, 100, 300}, 8, 2, 64},
      {"B=2 GQA 8/1 D=128, cache_len 513/77", 2, {513, 77}, 8, 1, 128},
      {"B=1 MHA 3 heads D=24, cache_len 5", 1, {5}, 3, 3, 24},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_decode_case(&cases[i]);
}

/* ------------------------------------------------------------ errors */
static void test_errors(void) {
  printf("errors\n");
  float buf[4096];
  fill_const(buf, 4096, 0.5f);
  int64_t start[2] = {0, 4};
  int32_t len[2] = {4, 3}, past[2] = {0, 2};
  sf_kv_cache_view cv = {.k = buf, .v = buf + 2048, .batch_stride = 512, .pos_stride = 64,
                         .head_stride = 16, .max_len = 8};
  sf_attention_params a = {.dtype = SF_F32, .n_heads = 8, .n_kv_heads = 4, .head_dim = 16,
                           .scale = 0.25f, .causal = 1,
                           .seqs = {.batch = 2, .max_len = 4, .start = start, .len = len},
                           .past_len = past, .q = buf, .q_token_stride = 128,
                           .q_head_stride = 16, .cache = cv, .out = buf + 1024,
                           .out_token_stride = 128, .out_head_stride = 16};
  attn_fn fns[2] = {ops->attention, ops->attention_naive};
  const char *names[2] = {"attention", "attention_naive"};
  for (int f = 0; f < 2; f++) {
    sf_attention_params p = a;
    sf_error e0 = {0};
    CHECK_MSG(fns[f](&ctx, &p, &e0) == SF_OK, "%s valid call: %s", names[f], e0.msg);
    p.n_kv_heads = 3;
    CHECK_FAILS(fns[f](&ctx, &p, &e_), SF_ERR_ARG, names[f]);   /* 8 % 3 */
    p = a;
    p.block_q = -1;
    CHECK_FAILS(fns[f](&ctx, &p, &e_), SF_ERR_ARG, names[f]);
    p = a;
    p.block_k = -64;
    CHECK_FAILS(fns[f](&ctx, &p, &e_), SF_ERR_ARG, names[f]);
    p = a;
    p.cache.max_len = 4;  /* sequence 1 needs positions [0, 5) */
    CHECK_FAILS(fns[f](&ctx, &p, &e_), SF_ERR_ARG, names[f]);   /* past + len > max_len */
    p = a;
    p.seqs.max_len = 3;
    CHECK_FAILS(fns[f](&ctx, &p, &e_), SF_ERR_ARG, names[f]);   /* len > max_len */
    p = a;
    p.head_dim = 0;
    CHECK_FAILS(fns[f](&ctx, &p, &e_), SF_ERR_ARG, names[f]);
    p = a;
    p.scale = NAN;
    CHECK_FAILS(fns[f](&ctx, &p, &e_), SF_ERR_ARG, names[f]);
    p = a;
    p.lse = buf + 3000;
    p.lse_token_stride = 7;
    CHECK_FAILS(fns[f](&ctx, &p, &e_), SF_ERR_ARG, names[f]);   /* lse stride < n_heads */
    p = a;
    int32_t neg[2] = {0, -1};
    p.past_len = neg;
    CHECK_FAILS(fns[f](&ctx, &p, &e_), SF_ERR_ARG, names[f]);
    p = a;
    p.dtype = SF_BF16;
    CHECK_FAILS(fns[f](&ctx, &p, &e_), SF_ERR_UNSUPPORTED, names[f]);
  }

  /* kv_append past max_len: rejected, cache untouched. */
  {
    float ck[2 * 8 * 4], cvv[2 * 8 * 4], kin[16], snap[64];
    fill_const(ck, 64, 1.0f);
    fill_const(cvv, 64, 1.0f);
    fill_const(kin, 16, 7.0f);
    memcpy(snap, ck, sizeof snap);
    int64_t st[2] = {0, 2};
    int32_t ln[2] = {2, 2}, ps[2] = {0, 7};
    sf_kv_append_params p = {.dtype = SF_F32, .n_kv_heads = 1, .head_dim = 4,
                             .seqs = {.batch = 2, .max_len = 2, .start = st, .len = ln},
                             .past_len = ps, .k = kin, .k_token_stride = 4, .k_head_stride = 4,
                             .v = kin, .v_token_stride = 4, .v_head_stride = 4,
                             .cache = {.k = ck, .v = cvv, .batch_stride = 32, .pos_stride = 4,
                                       .head_stride = 4, .max_len = 8}};
    CHECK_FAILS(ops->kv_append(&ctx, &p, &e_), SF_ERR_ARG, "kv_append");
    CHECK(memcmp(snap, ck, sizeof snap) == 0 && memcmp(snap, cvv, sizeof snap) == 0);
    ps[1] = 6;
    sf_error e0 = {0};
    CHECK_MSG(ops->kv_append(&ctx, &p, &e0) == SF_OK, "kv_append at the edge: %s", e0.msg);
    CHECK(ck[32 + 7 * 4] == 7.0f && ck[32 + 8 * 4 - 1] == 7.0f);
    ps[0] = -1;
    CHECK_FAILS(ops->kv_append(&ctx, &p, &e_), SF_ERR_ARG, "kv_append");
    ps[0] = 0;
    ln[0] = 3;
    CHECK_FAILS(ops->kv_append(&ctx, &p, &e_), SF_ERR_ARG, "kv_append");  /* len > max_len */
    ln[0] = 2;
    p.n_kv_heads = 0;
    CHECK_FAILS(ops->kv_append(&ctx, &p, &e_), SF_ERR_ARG, "kv_append");
    p.n_kv_heads = 1;
    p.dtype = SF_F16;
    CHECK_FAILS(ops->kv_append(&ctx, &p, &e_), SF_ERR_UNSUPPORTED, "kv_append");
  }

  /* decode */
  {
    int32_t cl[2] = {3, 8};
    sf_attention_decode_params d = {.dtype = SF_F32, .batch = 2, .n_heads = 8, .n_kv_heads = 4,
                                    .head_dim = 16, .scale = 0.25f, .q = buf,
                                    .q_batch_stride = 128, .q_head_stride = 16, .cache = cv,
                                    .cache_len = cl, .num_splits = 3, .out = buf + 1024,
                                    .out_batch_stride = 128, .out_head_stride = 16};
    sf_error e0 = {0};
    CHECK_MSG(ops->attention_decode(&ctx, &d, &e0) == SF_OK, "decode valid call: %s", e0.msg);
    sf_attention_decode_params p = d;
    p.n_kv_heads = 3;
    CHECK_FAILS(ops->attention_decode(&ctx, &p, &e_), SF_ERR_ARG, "attention_decode");
    p = d;
    p.num_splits = -2;
    CHECK_FAILS(ops->attention_decode(&ctx, &p, &e_), SF_ERR_ARG, "attention_decode");
    p = d;
    cl[0] = 0;
    CHECK_FAILS(ops->attention_decode(&ctx, &p, &e_), SF_ERR_ARG, "attention_decode");
    cl[0] = 9;  /* > cache max_len 8 */
    CHECK_FAILS(ops->attention_decode(&ctx, &p, &e_), SF_ERR_ARG, "attention_decode");
    cl[0] = 3;
    p.dtype = SF_BF16;
    CHECK_FAILS(ops->attention_decode(&ctx, &p, &e_), SF_ERR_UNSUPPORTED, "attention_decode");
  }
}

/* ------------------------------------------------------------ attention_merge */
/* Two attentions of the same queries over the keys [0, S) and [S, keys[b])
 * (non-causal prefill, past_len = keys - queries; the second through a
 * cache view starting at position S), merged, equal the attention over
 * [0, keys[b]): output and lse. Padded batch of three (rows past len[b]
 * must stay untouched), GQA, strided output and lse; then the -inf rules
 * and the argument checks. */
static void test_merge(void) {
  printf("attention_merge\n");
  enum { B = 3, H = 4, HKV = 2, D = 24, S = 8, PAD = 6, CAP = 24 };
  const int32_t len[B] = {3, 1, 5}, keys[B] = {20, 9, 13};
  const int64_t start[B] = {0, PAD, 2 * PAD}, rows = B * PAD;
  const int64_t qts = H * D + 5, ots = H * (D + 3) + 1, ohs = D + 3, lts = H + 2;
  const int64_t ps = HKV * D, bs = CAP * ps;
  float *q = fmalloc(rows * qts), *k = fmalloc(B * bs), *v = fmalloc(B * bs);
  float *whole = fmalloc(rows * ots), *acc = fmalloc(rows * ots), *part = fmalloc(rows * ots);
  float *wl = fmalloc(rows * lts), *al = fmalloc(rows * lts), *pl = fmalloc(rows * lts);
  fill_normal(q, rows * qts);
  fill_normal(k, B * bs);
  fill_normal(v, B * bs);
  fill_const(whole, rows * ots, SENTINEL);
  fill_const(acc, rows * ots, SENTINEL);
  fill_const(part, rows * ots, SENTINEL);
  fill_const(wl, rows * lts, SENTINEL);
  fill_const(al, rows * lts, SENTINEL);
  fill_const(pl, rows * lts, SENTINEL);
  int32_t past_whole[B], past_a[B], past_b[B];
  for (int b = 0; b < B; b++) {
    past_whole[b] = keys[b] - len[b];
    past_a[b] = S - len[b];
    past_b[b] = keys[b] - S - len[b];
  }
  sf_attention_params a = {.dtype = SF_F32, .n_heads = H, .n_kv_heads = HKV, .head_dim = D,
                           .scale = 1.0f / sqrtf((float)D), .causal = 0,
                           .seqs = {.batch = B, .max_len = PAD, .start = start, .len = len},
                           .past_len = past_whole, .q = q, .q_token_stride = qts, .q_head_stride = D,
                           .cache = {.k = k, .v = v, .batch_stride = bs, .pos_stride = ps, .head_stride = D,
                                     .max_len = CAP},
                           .out = whole, .out_token_stride = ots, .out_head_stride = ohs,
                           .lse = wl, .lse_token_stride = lts};
  sf_error err = {0};
  CHECK_MSG(ops->attention(&ctx, &a, &err) == SF_OK, "whole: %s", err.msg);
  a.past_len = past_a, a.out = acc, a.lse = al;
  CHECK_MSG(ops->attention(&ctx, &a, &err) == SF_OK, "keys [0, S): %s", err.msg);
  a.past_len = past_b, a.out = part, a.lse = pl;
  a.cache.k = k + S * ps, a.cache.v = v + S * ps, a.cache.max_len = CAP - S;
  CHECK_MSG(ops->attention(&ctx, &a, &err) == SF_OK, "keys [S, keys): %s", err.msg);

  const sf_attention_merge_params mp = {
      .dtype = SF_F32, .out_dtype = SF_F32, .n_heads = H, .head_dim = D, .seqs = a.seqs, .out = acc,
      .out_token_stride = ots, .out_head_stride = ohs, .lse = al, .lse_token_stride = lts, .part = part,
      .part_token_stride = ots, .part_head_stride = ohs, .part_lse = pl, .part_lse_token_stride = lts};
  CHECK_MSG(ops->attention_merge(&ctx, &mp, &err) == SF_OK, "merge: %s", err.msg);
  /* Compared over the rows of seqs (dense copies); everything else must
   * still hold the sentinel on both sides. */
  {
    float *go = fmalloc(rows * H * D), *wo = fmalloc(rows * H * D), *gl = fmalloc(rows * H), *wlse = fmalloc(rows * H);
    int64_t n = 0, nl = 0;
    for (int b = 0; b < B; b++)
      for (int64_t i = 0; i < len[b]; i++)
        for (int h = 0; h < H; h++) {
          const int64_t r = start[b] + i;
          gl[nl] = al[r * lts + h], wlse[nl++] = wl[r * lts + h];
          for (int d = 0; d < D; d++) go[n] = acc[r * ots + h * ohs + d], wo[n++] = whole[r * ots + h * ohs + d];
        }
    CHECK_CMP("two halves merged == whole (out)", compare(go, NULL, wo, n), TOL_ATTN, worst_attn);
    CHECK_CMP("two halves merged == whole (lse)", compare(gl, NULL, wlse, nl), TOL_LSE, worst_lse);
    free(go), free(wo), free(gl), free(wlse);
  }
  int64_t moved = 0;
  for (int64_t i = 0; i < rows * ots; i++) moved += (whole[i] == SENTINEL) != (acc[i] == SENTINEL);
  for (int64_t i = 0; i < rows * lts; i++) moved += (wl[i] == SENTINEL) != (al[i] == SENTINEL);
  CHECK_MSG(moved == 0, "%lld elements outside the rows written or left unwritten", (long long)moved);

  /* The -inf rules, per (row, head): an empty accumulator (garbage NaN
   * output) takes the part bit for bit; an empty part changes nothing. */
  {
    const int64_t r0 = start[0], r2 = start[2] + 4;  /* rows of sequences 0 and 2 */
    memcpy(acc, whole, (size_t)(rows * ots) * sizeof(float));
    memcpy(al, wl, (size_t)(rows * lts) * sizeof(float));
    float *o_empty = acc + r0 * ots + 1 * ohs, *o_kept = acc + r2 * ots + 3 * ohs;
    fill_const(o_empty, D, NAN);
    al[r0 * lts + 1] = -INFINITY;
    pl[r2 * lts + 3] = -INFINITY;
    float *want_kept = fmalloc(D);
    memcpy(want_kept, o_kept, D * sizeof(float));
    const float lse_kept = al[r2 * lts + 3];
    CHECK_MSG(ops->attention_merge(&ctx, &mp, &err) == SF_OK, "merge: %s", err.msg);
    CHECK_MSG(!memcmp(o_empty, part + r0 * ots + 1 * ohs, D * sizeof(float)) &&
                  al[r0 * lts + 1] == pl[r0 * lts + 1],
              "an accumulator with lse -inf does not take the part as it is");
    CHECK_MSG(!memcmp(o_kept, want_kept, D * sizeof(float)) && al[r2 * lts + 3] == lse_kept,
              "a part with lse -inf changed the accumulator");
    /* Both -inf: nothing happens (the output stays what it was, NaN here). */
    pl[r0 * lts + 2] = -INFINITY;
    al[r0 * lts + 2] = -INFINITY;
    fill_const(acc + r0 * ots + 2 * ohs, D, NAN);
    CHECK_MSG(ops->attention_merge(&ctx, &mp, &err) == SF_OK, "merge: %s", err.msg);
    CHECK_MSG(al[r0 * lts + 2] == -INFINITY && isnan(acc[r0 * ots + 2 * ohs]), "two empty rows made something");
    printf("    -inf rules hold\n");
    free(want_kept);
  }

  /* Argument checks. */
  {
    sf_attention_merge_params p = mp;
    p.dtype = SF_BF16;
    CHECK_FAILS(ops->attention_merge(&ctx, &p, &e_), SF_ERR_UNSUPPORTED, "attention_merge");
    p = mp;
    p.out_dtype = SF_F16;
    CHECK_FAILS(ops->attention_merge(&ctx, &p, &e_), SF_ERR_UNSUPPORTED, "attention_merge");
    p = mp;
    p.head_dim = 0;
    CHECK_FAILS(ops->attention_merge(&ctx, &p, &e_), SF_ERR_ARG, "attention_merge");
    p = mp;
    p.part_lse = NULL;
    CHECK_FAILS(ops->attention_merge(&ctx, &p, &e_), SF_ERR_ARG, "attention_merge");
    p = mp;
    p.seqs.max_len = 2; /* < len[2] */
    CHECK_FAILS(ops->attention_merge(&ctx, &p, &e_), SF_ERR_ARG, "attention_merge");
    p = mp;
    p.seqs.batch = 0;
    p.out = NULL;
    sf_error e0 = {0};
    CHECK_MSG(ops->attention_merge(&ctx, &p, &e0) == SF_OK, "an empty batch is a no-op: %s", e0.msg);
  }
  free(q), free(k), free(v), free(whole), free(acc), free(part), free(wl), free(al), free(pl);
}

int main(void) {
  uint64_t seed = sf_test_seed();
  sf_rng_seed(&rng, seed);
  sf_error err = {0};
  REQUIRE(sf_cpu_ctx_init(&ctx, 0, &err) == SF_OK);
  test_prefill();
  test_chunked();
  test_decode();
  test_errors();
  test_merge();
  printf("largest relative errors: attention %.2e (tol %.0e), lse %.2e (tol %.0e)\n", worst_attn,
         TOL_ATTN, worst_lse, TOL_LSE);
  sf_cpu_ctx_destroy(&ctx);
  return sf_test_finish("test_ops_attention");
}
