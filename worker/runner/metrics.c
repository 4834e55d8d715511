/* Statistics over repeats and decode steps, and the /items metrics of an ok
 * item (definitions in runner.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runner/runner_internal.h"

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double sf_stat_quantile(const double *x, int64_t n, double q) {
  if (n <= 0 || !x) return NAN;
  double *s = malloc((size_t)n * sizeof *s);
  if (!s) return NAN;
  memcpy(s, x, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, cmp_double);
  q = q < 0 ? 0 : q > 1 ? 1 : q;
  const double h = q * (double)(n - 1);
  const int64_t lo = (int64_t)floor(h);
  const int64_t hi = lo + 1 < n ? lo + 1 : lo;
  const double v = s[lo] + (h - (double)lo) * (s[hi] - s[lo]);
  free(s);
  return v;
}

double sf_stat_median(const double *x, int64_t n) { return sf_stat_quantile(x, n, 0.5); }

double sf_stat_cv(const double *x, int64_t n) {
  if (n <= 0 || !x) return NAN;
  if (n == 1) return 0;
  double mean = 0;
  for (int64_t i = 0; i < n; i++) mean += x[i];
  mean /= (double)n;
  double ss = 0;
  for (int64_t i = 0; i < n; i++) ss += (x[i] - mean) * (x[i] - mean);
  return mean > 0 ? sqrt(ss / (double)(n - 1)) / mean : NAN;
}

/* a / b, NaN unless both are positive and finite. */
static double rate(double a, double b) { return a > 0 && b > 0 && isfinite(b) ? a / b : NAN; }

void rn_metrics(const sf_runner *r, const sf_work_item *item, const sf_runner_batch *in, sf_item_result *res) {
  const int64_t n = r->n_repeats;
  double *v = malloc((size_t)(n > 0 ? n : 1) * 3 * sizeof *v);
  double *lat = malloc((size_t)(r->n_steps > 0 ? r->n_steps : 1) * sizeof *lat);
  if (!v || !lat) { /* metrics stay NaN: the raw rows still carry the numbers */
    free(v);
    free(lat);
    return;
  }
  double *pre = v, *dec = v + n, *tot = v + 2 * n;
  for (int64_t i = 0; i < n; i++) {
    pre[i] = r->repeats[i].prefill_s;
    dec[i] = r->repeats[i].decode_s;
    tot[i] = r->repeats[i].total_s;
  }
  int64_t decode_tokens = 0;
  if (item->kind == SF_ITEM_GENERATE)
    for (int32_t b = 0; b < in->batch; b++) decode_tokens += in->gen[b] - 1;

  double *energy = malloc((size_t)(n > 0 ? n : 1) * sizeof *energy);
  if (energy) {
    for (int64_t i = 0; i < n; i++) energy[i] = r->repeats[i].energy_j;
    res->energy_j = sf_stat_median(energy, n); /* NaN propagates: no NVML, no energy */
    const double tokens = (double)(res->prompt_tokens + res->generated_tokens);
    res->j_per_token = tokens > 0 && isfinite(res->energy_j) ? res->energy_j / tokens : NAN;
    free(energy);
  }
  res->ttft_s = sf_stat_median(pre, n);
  res->prefill_tok_s = rate((double)res->prompt_tokens, res->ttft_s);
  res->prefill_cv = sf_stat_cv(pre, n);
  if (item->kind == SF_ITEM_GENERATE) {
    res->decode_tok_s = rate((double)decode_tokens, sf_stat_median(dec, n));
    res->e2e_tok_s = rate((double)res->generated_tokens, sf_stat_median(tot, n));
    for (int64_t i = 0; i < r->n_steps; i++) lat[i] = r->steps[i].latency_s;
    res->tpot_p50_s = sf_stat_quantile(lat, r->n_steps, 0.50);
    res->tpot_p90_s = sf_stat_quantile(lat, r->n_steps, 0.90);
    res->tpot_p99_s = sf_stat_quantile(lat, r->n_steps, 0.99);
  }
  free(v);
  free(lat);
}
