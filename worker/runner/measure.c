/* The measuring loop of one item: a session for its batch, then warm-ups and
 * timed repeats, each a prefill (chunk by chunk, check points between
 * chunks) and decode steps timed one by one (check points between steps).
 * See runner.h for what each number means. With a context-parallel group
 * (t) every engine call is collective, and the check points are where the
 * members agree (their own statuses since the last one, then whether to
 * stop), so they all leave at the same place. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parallel/transport_api.h"
#include "runner/runner_internal.h"

typedef enum { AT_START, AT_CHUNK, AT_STEP } rn_at;

typedef struct rn_run {
  sf_runner *r;
  sf_transport *t;            /* the item's group, or NULL */
  const sf_work_item *item;
  const sf_runner_batch *in;
  const sf_ops *ops;
  sf_session *s;
  int32_t B, gmax;            /* gmax: the most tokens a sequence generates (0: prefill item) */
  int64_t n_chunks;
  sf_batch_input *chunks;     /* [n_chunks] varlen inputs, one per engine call */
  int32_t *chunk_ids, *chunk_lens;
  int32_t *tok;               /* [B] the tokens chosen last */
  double t0, deadline;
  int warmup, run, runs;      /* what is running, for the stop message */
  int injected;               /* runs past the point of SCANFLASH_FAIL_ITEM=KEY@G */
  rn_stop *stop;
} rn_run;

static void stop_at(rn_run *x, sf_item_status status, rn_at at, int64_t i, int64_t n) {
  char where[96], sub[64];
  if (x->warmup) snprintf(where, sizeof where, "warm-up %d of %d", x->run + 1, x->runs);
  else snprintf(where, sizeof where, "repeat %d of %d", x->run + 1, x->runs);
  if (at == AT_CHUNK) snprintf(sub, sizeof sub, ", before prefill chunk %lld of %lld", (long long)i + 1, (long long)n);
  else if (at == AT_STEP) snprintf(sub, sizeof sub, ", before decode step %lld of %lld", (long long)i + 1, (long long)n);
  else sub[0] = '\0';
  x->stop->status = status;
  if (status == SF_STATUS_TIMEOUT)
    snprintf(x->stop->message, sizeof x->stop->message, "timed out after %.1f s (item timeout %g s) in %s%s",
             sf_engine_now() - x->t0, x->item->timeout_s, where, sub);
  else
    snprintf(x->stop->message, sizeof x->stop->message,
             "interrupted in %s%s (a signal, or the driver stopping the sweep); --resume runs it again", where, sub);
}

/* This rank's own reason to stop now: 2 interrupted (the poll), 1 the
 * deadline, 0 none. */
static int stop_reason(rn_run *x) {
  if (x->r->cfg.poll && x->r->cfg.poll(x->r->cfg.poll_user)) return 2;
  if (x->deadline > 0 && sf_engine_now() > x->deadline) return 1;
  return 0;
}

/* A check point: non-zero when the item must stop here, with *rc (an error:
 * return it) or *x->stop (SF_OK in *rc) saying why. *rc is this rank's
 * status since the last check point. In a group it is agreed first (every
 * member then returns the lowest failed member's), then the stop is voted. */
static int checkpoint(rn_run *x, rn_at at, int64_t i, int64_t n, sf_status *rc, sf_error *err) {
  int why = 0;
  if (x->t) {
    *rc = x->t->agree(x->t, *rc, err);
    if (*rc != SF_OK) return 1;
    if ((*rc = x->t->max_int(x->t, stop_reason(x), &why, err)) != SF_OK) return 1;
  } else {
    if (*rc != SF_OK) return 1;
    why = stop_reason(x);
  }
  if (!why) return 0;
  stop_at(x, why == 2 ? SF_STATUS_INTERRUPTED : SF_STATUS_TIMEOUT, at, i, n);
  return 1;
}

/* Testing aid (SCANFLASH_FAIL_ITEM=KEY@G): this rank's failure after the
 * first run's prefill, which the group must carry to every member. */
static sf_status inject(const rn_run *x, sf_error *err) {
  const sf_runner *r = x->r;
  if (!r->fail_key || r->fail_member < 0 || strcmp(r->fail_key, x->item->key) ||
      r->fail_member != (x->t ? x->t->rank : 0))
    return SF_OK;
  return sf_fail(err, SF_ERR_INTERNAL, "injected failure on group rank %d (SCANFLASH_FAIL_ITEM)", r->fail_member);
}

/* The prompt as the engine calls that feed it: one call when the prompt fits
 * one chunk, else chunk c carries tokens [c*T, (c+1)*T) of every sequence,
 * packed (prepared before any clock starts). */
static sf_status plan_chunks(rn_run *x, int64_t max_prompt, int64_t T, sf_error *err) {
  const int32_t B = x->B;
  x->n_chunks = (max_prompt + T - 1) / T;
  x->chunks = calloc((size_t)x->n_chunks, sizeof *x->chunks);
  if (!x->chunks) return sf_fail(err, SF_ERR_NOMEM, "runner: out of host memory for the prefill chunks");
  if (x->n_chunks == 1) {
    x->chunks[0] = (sf_batch_input){.layout = SF_BATCH_VARLEN, .ids = x->in->ids, .lens = x->in->lens};
    return SF_OK;
  }
  int64_t total = 0;
  for (int32_t b = 0; b < B; b++) total += x->in->lens[b];
  x->chunk_ids = malloc((size_t)total * sizeof *x->chunk_ids);
  x->chunk_lens = malloc((size_t)(x->n_chunks * B) * sizeof *x->chunk_lens);
  if (!x->chunk_ids || !x->chunk_lens)
    return sf_fail(err, SF_ERR_NOMEM, "runner: out of host memory for the prefill chunks");
  int64_t w = 0;
  for (int64_t c = 0; c < x->n_chunks; c++) {
    int32_t *lens = x->chunk_lens + c * B;
    x->chunks[c] = (sf_batch_input){.layout = SF_BATCH_VARLEN, .ids = x->chunk_ids + w, .lens = lens};
    int64_t in_off = 0;
    for (int32_t b = 0; b < B; b++) {
      int64_t n = x->in->lens[b] - c * T;
      n = n < 0 ? 0 : n > T ? T : n;
      lens[b] = (int32_t)n;
      if (n > 0) memcpy(x->chunk_ids + w, x->in->ids + in_off + c * T, (size_t)n * sizeof(int32_t));
      w += n;
      in_off += x->in->lens[b];
    }
  }
  return SF_OK;
}

static int64_t longest(const rn_run *x) {
  int64_t m = 0;
  for (int32_t b = 0; b < x->B; b++) {
    const int64_t l = sf_session_length(x->s, b);
    if (l > m) m = l;
  }
  return m;
}

/* One run of the item (a warm-up when !timed). Stops at a check point leave
 * x->stop set and return SF_OK. Engine calls agree their statuses across a
 * group themselves (their failures return at once); this rank's own steps
 * (syncs, records) fail into rc, which the next check point agrees, and the
 * run ends with an agreement too (a check point of its own). */
static sf_status one_run(rn_run *x, int timed, sf_error *err) {
  sf_runner *r = x->r;
  SF_TRY(sf_session_reset(x->s, err));
  sf_status rc = x->ops->sync(&r->ctx, err);
  if (checkpoint(x, AT_START, 0, 0, &rc, err)) return rc;
  const double e0 = sf_nvml_energy_j(r->nvml);
  const double t0 = sf_engine_now();
  for (int64_t c = 0; c < x->n_chunks; c++) {
    if (c > 0 && checkpoint(x, AT_CHUNK, c, x->n_chunks, &rc, err)) return rc;
    SF_TRY(sf_session_prefill(x->s, &x->chunks[c], NULL, NULL, err));
  }
  SF_TRY(sf_session_sample(x->s, x->tok, err));
  rc = x->ops->sync(&r->ctx, err);
  const double prefill_s = sf_engine_now() - t0;
  if (rc == SF_OK && !x->injected++) rc = inject(x, err);

  double decode_s = 0;
  const int64_t steps = x->gmax > 0 ? x->gmax - 1 : 0;
  for (int64_t i = 0; i < steps; i++) {
    if (checkpoint(x, AT_STEP, i, steps, &rc, err)) return rc;
    const int64_t pos = longest(x);
    const double ts = sf_engine_now();
    SF_TRY(sf_session_decode(x->s, x->tok, NULL, err));
    SF_TRY(sf_session_sample(x->s, x->tok, err));
    rc = x->ops->sync(&r->ctx, err);
    const double lat = sf_engine_now() - ts;
    decode_s += lat;
    if (timed && rc == SF_OK) {
      sf_step_result st = {.repeat = x->run, .step = (int32_t)i, .position = pos, .latency_s = lat};
      rc = rn_push_step(r, &st, err);
    }
  }
  if (timed && rc == SF_OK) {
    sf_repeat_result rep = {.repeat = x->run, .prefill_s = prefill_s, .decode_s = decode_s,
                            .total_s = prefill_s + decode_s,
                            .energy_j = sf_nvml_energy_j(r->nvml) - e0};
    for (int32_t b = 0; b < x->B; b++) {
      rep.prompt_tokens += x->in->lens[b];
      if (x->gmax > 0) rep.generated_tokens += x->in->gen[b];
    }
    rc = rn_push_repeat(r, &rep, err);
  }
  return x->t ? x->t->agree(x->t, rc, err) : rc;
}

/* The largest prefill chunk per sequence whose state, activations and op
 * workspace (the memory model's estimate) fit in what the backend has free
 * now (the weights are already in), keeping a reserve for what the estimate
 * does not see (cuBLAS, the CUDA context, fragmentation): the whole prompt
 * when it fits, else halved down to 256 tokens. When even that does not fit
 * the session's allocation fails and the item is recorded as oom. */
static sf_status chunk_for_memory(rn_run *x, int64_t max_prompt, int64_t *T, sf_error *err) {
  const sf_model_config *c = &x->r->model.cfg;
  int64_t free_b = 0, total_b = 0;
  if (!x->ops->mem_info || x->ops->mem_info(&x->r->ctx, &free_b, &total_b, err) != SF_OK) return SF_OK;
  const int64_t reserve = ((int64_t)512 << 20) + total_b / 50;
  const int64_t budget = free_b - reserve;
  const int64_t gen = x->gmax > 0 ? x->gmax : 0;
  int64_t t = max_prompt;
  for (;;) {
    sf_memory_estimate e;
    sf_model_estimate_memory(c, x->ops->act_dtype, x->B, max_prompt, gen, t, &e);
    if (e.cache + e.activations + e.workspace <= budget || t <= 256) break;
    t = (t / 2 + 255) / 256 * 256;
  }
  *T = t < max_prompt ? t : max_prompt;
  return SF_OK;
}

static sf_status measure(rn_run *x, rn_memory *mem, sf_error *err) {
  const sf_work_item *item = x->item;
  int64_t max_prompt = 0;
  for (int32_t b = 0; b < x->B; b++) {
    if (x->in->lens[b] > max_prompt) max_prompt = x->in->lens[b];
    if (item->kind == SF_ITEM_GENERATE && x->in->gen[b] > x->gmax) x->gmax = x->in->gen[b];
  }
  /* The last generated token is never fed back. */
  const int64_t max_len = max_prompt + (x->gmax > 0 ? x->gmax - 1 : 0);
  /* A group takes the prompt in one pass, each rank its share. */
  int64_t T = item->prefill_chunk > 0 && item->prefill_chunk < max_prompt && !x->t ? item->prefill_chunk : max_prompt;
  sf_status rc = SF_OK;
  if (item->prefill_chunk <= 0 && !x->t) rc = chunk_for_memory(x, max_prompt, &T, err);
  if (rc == SF_OK && !(x->tok = calloc((size_t)x->B, sizeof *x->tok)))
    rc = sf_fail(err, SF_ERR_NOMEM, "runner: out of host memory");
  if (rc == SF_OK) rc = plan_chunks(x, max_prompt, T, err);
  if (rc == SF_OK)
    rc = x->t ? sf_session_create_parallel(&x->r->model, x->B, max_len, x->t, &x->s, err)
              : sf_session_create(&x->r->model, x->B, max_len, T, &x->s, err);
  /* Every member has its session, or none goes on. */
  if (x->t) rc = x->t->agree(x->t, rc, err);
  SF_TRY(rc);
  sf_session_set_graphs(x->s, !x->r->cfg.no_graphs);
  mem->state_bytes = sf_session_state_bytes(x->s);
  mem->chunk_tokens = x->t ? sf_session_chunk_tokens(x->s) : T;
  mem->n_chunks = x->n_chunks;

  x->warmup = 1;
  x->runs = item->warmup;
  for (x->run = 0; x->run < item->warmup && x->stop->status == SF_STATUS_OK; x->run++) SF_TRY(one_run(x, 0, err));
  x->warmup = 0;
  x->runs = item->repeats;
  for (x->run = 0; x->run < item->repeats && x->stop->status == SF_STATUS_OK; x->run++) SF_TRY(one_run(x, 1, err));
  mem->scratch_bytes = sf_session_scratch_bytes(x->s);
  mem->graphs = sf_session_graphs_active(x->s);
  mem->persistent = sf_session_persistent_active(x->s);
  return SF_OK;
}

sf_status rn_measure(sf_runner *r, sf_transport *t, const sf_work_item *item, const sf_runner_batch *in,
                     double deadline, rn_stop *stop, rn_memory *mem, sf_error *err) {
  rn_run x = {.r = r, .t = t, .item = item, .in = in, .ops = r->ctx.ops, .B = in->batch,
              .t0 = sf_engine_now(), .deadline = deadline, .stop = stop};
  stop->status = SF_STATUS_OK;
  stop->message[0] = '\0';
  if (item->repeats < 1) return sf_fail(err, SF_ERR_ARG, "runner: item %s has %d repeats", item->key, item->repeats);
  sf_status rc = measure(&x, mem, err);
  sf_session_free(x.s);
  free(x.tok);
  free(x.chunks);
  free(x.chunk_ids);
  free(x.chunk_lens);
  return rc;
}
