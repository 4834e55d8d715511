/* Context-parallel sessions of the engine on the cpu backend over MPI (run
 * under mpirun with k ranks): tiny-transformer (and its GQA variant with 2
 * kv heads for 4 query heads), tiny-mamba1 and tiny-mamba2 with random
 * weights, the same on every rank. Each rank also runs a one-rank session
 * of the same batch as the reference. Per case:
 *   - the prefill's last logits and every decode step's logits equal the
 *     reference's (relative L2, fp32), and are the same to the bit on every
 *     rank of the group;
 *   - greedy tokens equal the reference's at every step;
 *   - a reset session runs the batch again to the same logits;
 * over batches with lengths not divisible by 2k, a prompt shorter than 2k
 * (ranks with empty shares) and several sequences of different lengths.
 * Then the failure protocol: an op of one rank fails in the middle of a
 * prefill, then of a decode step; every rank returns an error from that
 * same call (none hangs), the others naming the failed rank, and a new
 * session works afterwards. Misuse gives the same error everywhere. */
#include "cp_test_util.h"
#include "engine/engine.h"
#include "model/model.h"

typedef struct mcase {
  const char *name, *preset;
  int32_t kv_heads;            /* > 0: override (GQA) */
} mcase;

static const mcase cases[] = {
    {"tiny-transformer", "tiny-transformer", 0},
    {"tiny-transformer-gqa", "tiny-transformer", 2},
    {"tiny-mamba1", "tiny-mamba1", 0},
    {"tiny-mamba2", "tiny-mamba2", 0},
};

enum { MAX_B = 3 };

typedef struct shape {
  int32_t batch;
  int32_t lens[MAX_B];
  int32_t gen;                 /* tokens generated: 1 from the prefill, gen - 1 decode steps */
} shape;

static const shape shapes[] = {
    {2, {37, 20}, 5},          /* not divisible by 2k */
    {1, {5}, 4},               /* shorter than 2k for k = 4: ranks with empty shares */
    {3, {64, 3, 17}, 3},       /* three lengths, one below k */
};

/* Rank fail_rank's norm fails at its fail_at-th call from now (0-based);
 * -1: never. */
static int fail_rank = -1;
static int64_t fail_at = -1;
static sf_status failing_norm(sf_op_ctx *ctx, const sf_norm_params *p, sf_error *err) {
  if (fail_at >= 0 && fail_at-- == 0) return sf_fail(err, SF_ERR_DEVICE, "injected norm failure");
  return sf_ops_cpu.norm(ctx, p, err);
}
static sf_ops failing_ops;

static void build(cp_env *e, const mcase *mc, sf_model *m) {
  sf_error err;
  sf_model_config cfg;
  REQUIRE(sf_model_preset(mc->preset, &cfg, &err) == SF_OK);
  if (mc->kv_heads > 0) cfg.n_kv_heads = mc->kv_heads;
  if (sf_model_init_random(&cfg, &e->ctx, 1234, m, &err) != SF_OK) {
    fprintf(stderr, "rank %d: %s\n", e->rank, err.msg);
    REQUIRE(0);
  }
}

/* One run of a session over the prompt: logits [gen][B*V] and tokens [gen][B]. */
static int run_session(cp_env *e, sf_session *s, const sf_batch_input *in, int32_t B, int32_t V, int32_t gen,
                       float *logits, int32_t *toks, const char *what) {
  sf_error err;
  if (!cp_ok(e, sf_session_prefill(s, in, logits, NULL, &err), &err, what)) return 0;
  if (!cp_ok(e, sf_session_sample(s, toks, &err), &err, what)) return 0;
  for (int32_t i = 1; i < gen; i++) {
    if (!cp_ok(e, sf_session_decode(s, toks + (i - 1) * B, logits + (int64_t)i * B * V, &err), &err, what))
      return 0;
    if (!cp_ok(e, sf_session_sample(s, toks + i * B, &err), &err, what)) return 0;
  }
  return 1;
}

/* The same bits on every rank: rank 0's buffer against this one's. */
static int same_everywhere(cp_env *e, const float *x, int64_t n) {
  float *r0 = FALLOC(n);
  if (e->rank == 0) memcpy(r0, x, (size_t)n * sizeof(float));
  MPI_Bcast(r0, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
  const int same = !memcmp(r0, x, (size_t)n * sizeof(float));
  free(r0);
  return same;
}

static void test_shape(cp_env *e, const mcase *mc, sf_model *m, const shape *sh) {
  sf_error err;
  const int32_t B = sh->batch, V = m->cfg.vocab_size, G = sh->gen;
  int64_t total = 0, longest = 0;
  for (int32_t b = 0; b < B; b++) total += sh->lens[b], longest = sh->lens[b] > longest ? sh->lens[b] : longest;
  int32_t *ids = xmalloc((size_t)total * sizeof *ids);
  for (int64_t i = 0; i < total; i++) ids[i] = (int32_t)sf_rng_below(&e->rng, (uint64_t)V);
  const sf_batch_input in = {.layout = SF_BATCH_VARLEN, .ids = ids, .lens = sh->lens};
  const int64_t max_len = longest + G - 1;
  const int64_t n = (int64_t)G * B * V;
  float *want = FALLOC(n), *got = FALLOC(n);
  int32_t *want_tok = xmalloc((size_t)G * B * sizeof(int32_t)), *got_tok = xmalloc((size_t)G * B * sizeof(int32_t));

  sf_session *ref = NULL, *cp = NULL;
  REQUIRE(sf_session_create(m, B, max_len, 0, &ref, &err) == SF_OK);
  sf_session_set_graphs(ref, 0);
  const int ok_ref = run_session(e, ref, &in, B, V, G, want, want_tok, "one-rank session");
  sf_session_free(ref);
  char what[192];
  int w = snprintf(what, sizeof what, "%s: batch %d, lens", mc->name, (int)B);
  for (int32_t b = 0; b < B; b++) w += snprintf(what + w, sizeof what - (size_t)w, " %d", (int)sh->lens[b]);
  snprintf(what + w, sizeof what - (size_t)w, ", %d tokens", (int)G);
  if (!cp_ok(e, sf_session_create_parallel(m, B, max_len, e->t, &cp, &err), &err, "create_parallel") || !ok_ref)
    goto out;
  CHECK(sf_session_transport(cp) == e->t);
  for (int pass = 0; pass < 2; pass++) {
    fill_nan(got, n);
    if (pass == 1 && !cp_ok(e, sf_session_reset(cp, &err), &err, "reset")) break;
    if (!run_session(e, cp, &in, B, V, G, got, got_tok, what)) break;
    for (int32_t i = 0; i < G; i++) {
      char wl[256];
      snprintf(wl, sizeof wl, "%s: %s logits%s", what, i == 0 ? "prefill" : "decode step", pass ? " (after reset)" : "");
      if (i > 0) snprintf(wl + strlen(wl), sizeof wl - strlen(wl), " %d", (int)i);
      CHECK_CLOSE(e, wl, rel_err(got + (int64_t)i * B * V, want + (int64_t)i * B * V, (int64_t)B * V));
    }
    CHECK_MSG(same_everywhere(e, got, n), "rank %d/%d: %s: logits differ between ranks", e->rank, e->k, what);
    CHECK_MSG(!memcmp(got_tok, want_tok, (size_t)G * B * sizeof(int32_t)),
              "rank %d/%d: %s: greedy tokens differ from the one-rank session", e->rank, e->k, what);
    CHECK_EQ_I64(sf_session_length(cp, 0), sh->lens[0] + G - 1);
  }
  /* Misuse, the same on every rank: a second prefill on a used session. */
  {
    const sf_status rc = sf_session_prefill(cp, &in, NULL, NULL, &err);
    CHECK_MSG(rc == SF_ERR_UNSUPPORTED && strstr(err.msg, "fresh"), "rank %d: second prefill: %s", e->rank, err.msg);
  }
out:
  sf_session_free(cp);
  free(ids), free(want), free(got), free(want_tok), free(got_tok);
}

/* Rank `who`'s norm fails mid-prefill (its second norm call: in layer 0 or
 * 1, after or before the state hand-overs and the ring) or mid-decode:
 * every rank returns an error from that call. */
static void test_failure(cp_env *e, const mcase *mc, sf_model *m, int in_decode, int who) {
  sf_error err;
  const int32_t B = 2, lens[2] = {23, 9}, V = m->cfg.vocab_size;
  int32_t ids[32], tok[2];
  for (int i = 0; i < 32; i++) ids[i] = (int32_t)sf_rng_below(&e->rng, (uint64_t)V);
  const sf_batch_input in = {.layout = SF_BATCH_VARLEN, .ids = ids, .lens = lens};
  const sf_ops *saved = e->ctx.ops;
  fail_rank = who;
  if (e->rank == fail_rank) {
    failing_ops = sf_ops_cpu;
    failing_ops.norm = failing_norm;
    e->ctx.ops = &failing_ops;
  }
  sf_session *s = NULL;
  REQUIRE(sf_session_create_parallel(m, B, 40, e->t, &s, &err) == SF_OK);
  fail_at = in_decode ? -1 : 1;
  sf_status rc = sf_session_prefill(s, &in, NULL, NULL, &err);
  if (in_decode) {
    CHECK_MSG(rc == SF_OK, "rank %d: prefill before the decode failure: %s", e->rank, err.msg);
    rc = sf_session_sample(s, tok, &err);
    CHECK(rc == SF_OK);
    rc = sf_session_decode(s, tok, NULL, &err);
    CHECK_MSG(rc == SF_OK, "rank %d: first decode step: %s", e->rank, err.msg);
    fail_at = 2; /* within the next step */
    rc = sf_session_decode(s, tok, NULL, &err);
  }
  char what[128];
  snprintf(what, sizeof what, "%s: a failure of rank %d in %s", mc->name, fail_rank, in_decode ? "decode" : "prefill");
  CHECK_MSG(rc != SF_OK, "rank %d: %s: the call succeeded", e->rank, what);
  if (e->rank == fail_rank)
    CHECK_MSG(strstr(err.msg, "injected norm failure") != NULL, "rank %d: %s: '%s'", e->rank, what, err.msg);
  else
    CHECK_MSG(strstr(err.msg, "failed") != NULL, "rank %d: %s: '%s'", e->rank, what, err.msg);
  sf_session_free(s);
  fail_at = -1;
  e->ctx.ops = saved;
  /* Nothing left in flight: a new session runs. */
  REQUIRE(sf_session_create_parallel(m, B, 40, e->t, &s, &err) == SF_OK);
  cp_ok(e, sf_session_prefill(s, &in, NULL, NULL, &err), &err, "prefill after a failure");
  cp_ok(e, sf_session_sample(s, tok, &err), &err, "sample after a failure");
  sf_session_free(s);
}

int main(int argc, char **argv) {
  cp_env e;
  cp_init(&e, &argc, &argv);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    sf_model m;
    build(&e, &cases[c], &m);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) test_shape(&e, &cases[c], &m, &shapes[i]);
    /* The model's ctx pointer is e.ctx: the failing op table goes in there. */
    for (int in_decode = 0; in_decode < 2; in_decode++) {
      test_failure(&e, &cases[c], &m, in_decode, e.k - 1);
      test_failure(&e, &cases[c], &m, in_decode, 0);
    }
    sf_model_free(&m);
    if (e.rank == 0) printf("%s: done\n", cases[c].name);
  }
  return cp_finish(&e);
}
