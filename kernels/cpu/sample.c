/* Next-token selection from fp32 logits, reference.
 *
 * Greedy (top_k <= 1 or temperature <= 0): argmax, lowest id on ties.
 * Top-k: the k = min(top_k, vocab) largest logits (ties broken towards the
 * lower id) in descending order, probabilities softmax(logit / temperature)
 * over them, and one inverse-CDF draw u in [0, 1) from a counter-based
 * stream, so a run replays exactly and rows/steps never share draws:
 *   sf_rng_seed_stream(&s, seed, step); key = sf_rng_next(&s);
 *   sf_rng_seed_stream(&r, key, row);   u = sf_rng_uniform(&r);
 * The token is the first (in that order) whose running sum of unnormalised
 * weights exceeds u * total (the last one if rounding leaves none).
 * NaN logits rank below every number (they are never chosen while a number
 * is present). */
#include <math.h>
#include <stdlib.h>

#include "cpu_ops.h"
#include "scanflash/rng.h"

typedef struct cand {
  float v;
  int32_t id;
} cand;

/* Strict order "a ranks above b": larger logit first, NaN last, lower id on ties. */
static inline int ranks_above(cand a, cand b) {
  const int an = isnan(a.v), bn = isnan(b.v);
  if (an != bn) return bn;
  if (!an && a.v != b.v) return a.v > b.v;
  return a.id < b.id;
}

/* Min-heap on rank (root = worst kept candidate). */
static void sift_down(cand *h, int32_t n, int32_t i) {
  for (;;) {
    int32_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && ranks_above(h[m], h[l])) m = l;
    if (r < n && ranks_above(h[m], h[r])) m = r;
    if (m == i) return;
    cand t = h[i]; h[i] = h[m]; h[m] = t;
    i = m;
  }
}

static int32_t argmax_row(const float *l, int32_t vocab) {
  cand best = {l[0], 0};
  for (int32_t i = 1; i < vocab; i++) {
    cand c = {l[i], i};
    if (ranks_above(c, best)) best = c;
  }
  return best.id;
}

static int32_t topk_row(const float *l, int32_t vocab, int32_t k, float temperature, uint64_t seed,
                        uint64_t step, uint64_t row, cand *h) {
  for (int32_t i = 0; i < k; i++) h[i] = (cand){l[i], i};
  for (int32_t i = k / 2 - 1; i >= 0; i--) sift_down(h, k, i);
  for (int32_t i = k; i < vocab; i++) {
    cand c = {l[i], i};
    if (ranks_above(c, h[0])) {
      h[0] = c;
      sift_down(h, k, 0);
    }
  }
  /* Heap sort: repeatedly move the worst to the end -> h[0..k) best first. */
  for (int32_t n = k - 1; n > 0; n--) {
    cand t = h[0]; h[0] = h[n]; h[n] = t;
    sift_down(h, n, 0);
  }

  sf_rng s, r;
  sf_rng_seed_stream(&s, seed, step);
  uint64_t key = sf_rng_next(&s);
  sf_rng_seed_stream(&r, key, row);
  const double u = (double)sf_rng_uniform(&r);

  const double top = (double)h[0].v;
  if (!isfinite(top)) return h[0].id; /* +inf or all -inf/NaN: no distribution to draw from */
  double total = 0.0;
  for (int32_t i = 0; i < k; i++)
    total += isnan(h[i].v) ? 0.0 : exp(((double)h[i].v - top) / (double)temperature);
  const double target = u * total;
  double run = 0.0;
  for (int32_t i = 0; i < k; i++) {
    run += isnan(h[i].v) ? 0.0 : exp(((double)h[i].v - top) / (double)temperature);
    if (run > target) return h[i].id;
  }
  return h[0].id; /* unreachable unless rounding: run == total > target for u < 1 */
}

SF_CPU_OP(sample, sf_sample_params) {
  (void)ctx;
  if (p->batch < 0 || p->vocab <= 0)
    return sf_fail(err, SF_ERR_ARG, "sample: need batch >= 0 and vocab > 0, got %d, %d",
                   (int)p->batch, (int)p->vocab);
  if (p->logits_row_stride < p->vocab)
    return sf_fail(err, SF_ERR_ARG, "sample: logits row stride %lld must be >= vocab = %d",
                   (long long)p->logits_row_stride, (int)p->vocab);
  if (isnan(p->temperature) || isinf(p->temperature))
    return sf_fail(err, SF_ERR_ARG, "sample: temperature %g must be finite", (double)p->temperature);
  if (p->batch == 0) return SF_OK;
  if (!p->logits || !p->out_ids)
    return sf_fail(err, SF_ERR_ARG, "sample: logits and out_ids must be non-NULL");

  const int greedy = p->top_k <= 1 || p->temperature <= 0.0f;
  const int32_t k = p->top_k < p->vocab ? p->top_k : p->vocab;
  cand *heap = NULL;
  if (!greedy) {
    heap = malloc((size_t)p->batch * (size_t)k * sizeof *heap);
    if (!heap)
      return sf_fail(err, SF_ERR_NOMEM, "sample: cannot allocate %d x %d candidates",
                     (int)p->batch, (int)k);
  }
#pragma omp parallel for schedule(dynamic, 1) if (p->batch > 1 && (int64_t)p->batch * p->vocab > 65536)
  for (int32_t b = 0; b < p->batch; b++) {
    const float *l = p->logits + (int64_t)b * p->logits_row_stride;
    p->out_ids[b] = greedy ? argmax_row(l, p->vocab)
                           : topk_row(l, p->vocab, k, p->temperature, p->seed, p->step,
                                      (uint64_t)b, heap + (int64_t)b * k);
  }
  free(heap);
  return SF_OK;
}
