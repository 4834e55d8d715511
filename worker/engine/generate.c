/* Greedy generation: prefill, then one decode step per new token, timing the
 * two phases separately on a monotonic clock with the backend synced before
 * each clock read. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_internal.h"

double sf_engine_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static sf_status report_logits(sf_session *s, const sf_generate_opts *o, float *host, int64_t row,
                               sf_error *err) {
  if (!o->on_logits) return SF_OK;
  SF_TRY(sf_session_logits_ready(s, err));
  SF_TRY(s->ops->download(s->ctx, host, s->logits,
                          (size_t)s->batch * (size_t)s->vocab * sizeof(float), err));
  return o->on_logits(o->user, row, host, s->batch, s->vocab, err);
}

static sf_status run(sf_session *s, const sf_batch_input *prompt, const sf_generate_opts *o,
                     int32_t *out_ids, int32_t *out_n, sf_generate_stats *st, int32_t *tok,
                     unsigned char *done, float *host_logits, sf_error *err) {
  const int32_t B = s->batch, G = o->max_new_tokens;
  SF_TRY(s->ops->sync(s->ctx, err));
  const double t0 = sf_engine_now();
  SF_TRY(sf_session_prefill(s, prompt, NULL, NULL, err));
  if (G > 0) SF_TRY(sf_session_sample(s, tok, err));
  SF_TRY(report_logits(s, o, host_logits, 0, err));
  SF_TRY(s->ops->sync(s->ctx, err));
  const double t1 = sf_engine_now();

  int32_t live = 0;
  for (int32_t b = 0; b < B; b++) {
    out_n[b] = 0;
    if (G == 0) continue;
    out_ids[(int64_t)b * G] = tok[b];
    out_n[b] = 1;
    done[b] = o->eos_id >= 0 && tok[b] == o->eos_id;
    live += !done[b];
  }
  int64_t steps = 0;
  for (int32_t i = 1; i < G && live > 0; i++) {
    SF_TRY(sf_session_decode(s, tok, NULL, err));
    SF_TRY(sf_session_sample(s, tok, err));
    steps++;
    SF_TRY(report_logits(s, o, host_logits, i, err));
    for (int32_t b = 0; b < B; b++) {
      if (done[b]) continue;
      out_ids[(int64_t)b * G + i] = tok[b];
      out_n[b]++;
      if (o->eos_id >= 0 && tok[b] == o->eos_id) {
        done[b] = 1;
        live--;
      }
    }
  }
  SF_TRY(s->ops->sync(s->ctx, err));
  const double t2 = sf_engine_now();
  if (st) {
    st->prefill_s = t1 - t0;
    st->decode_s = t2 - t1;
    st->decode_steps = steps;
    st->decode_tokens = steps * B;
  }
  return SF_OK;
}

sf_status sf_generate(sf_session *s, const sf_batch_input *prompt, const sf_generate_opts *o,
                      int32_t *out_ids, int32_t *out_n, sf_generate_stats *st, sf_error *err) {
  if (!prompt || !prompt->lens || !o || !out_n || (o->max_new_tokens > 0 && !out_ids))
    return sf_fail(err, SF_ERR_ARG, "generate: prompt, options and outputs are required");
  if (o->max_new_tokens < 0)
    return sf_fail(err, SF_ERR_ARG, "generate: max_new_tokens %d must be >= 0", (int)o->max_new_tokens);
  int64_t total = 0;
  for (int32_t b = 0; b < s->batch; b++) {
    if (s->len[b] != 0)
      return sf_fail(err, SF_ERR_ARG, "generate: the session is not fresh (reset it first)");
    const int64_t n = prompt->lens[b];
    if (n < 1) return sf_fail(err, SF_ERR_ARG, "generate: sequence %d has an empty prompt", (int)b);
    /* The last generated token is never fed back. */
    const int64_t need = n + (o->max_new_tokens > 0 ? o->max_new_tokens - 1 : 0);
    if (need > s->max_len)
      return sf_fail(err, SF_ERR_ARG,
                     "generate: sequence %d needs %lld positions (prompt %lld + %d new - 1), "
                     "the session has %lld",
                     (int)b, (long long)need, (long long)n, (int)o->max_new_tokens,
                     (long long)s->max_len);
    total += n;
  }
  int32_t *tok = calloc((size_t)s->batch, sizeof *tok);
  unsigned char *done = calloc((size_t)s->batch, 1);
  float *host = o->on_logits ? malloc((size_t)s->batch * (size_t)s->vocab * sizeof(float)) : NULL;
  sf_status rc;
  if (!tok || !done || (o->on_logits && !host)) {
    rc = sf_fail(err, SF_ERR_NOMEM, "generate: out of host memory");
  } else {
    rc = run(s, prompt, o, out_ids, out_n, st, tok, done, host, err);
    if (rc == SF_OK && st) st->prompt_tokens = total;
  }
  free(tok);
  free(done);
  free(host);
  return rc;
}
