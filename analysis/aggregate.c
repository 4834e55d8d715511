/* Aggregation: items -> cells (arch, model, dtype, context, batch, gen).
 * Every item counts in its cell's status counts; ok items give samples:
 * one per timed repeat for the timing metrics (so the median and interval
 * are over repeats and problems), one per repeat for the TPOT percentiles
 * (from its decode steps), one per item for memory. Definitions follow the
 * worker's (worker/runner/runner.h):
 *   TTFT          prefill_s
 *   prefill tok/s prompt tokens / prefill_s
 *   decode tok/s  (generated tokens - batch) / decode_s
 *   e2e tok/s     generated tokens / total_s
 *   J/token       energy_j / generated tokens
 * An ok item without /repeats rows contributes its /items summary instead. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

const rp_metric_info rp_metrics[M_COUNT] = {
    [M_TTFT] = {"ttft_s", "TTFT", "s"},
    [M_PREFILL_TPS] = {"prefill_tok_s", "prefill", "token/s"},
    [M_DECODE_TPS] = {"decode_tok_s", "decode", "token/s"},
    [M_E2E_TPS] = {"e2e_tok_s", "end-to-end", "token/s"},
    [M_TPOT50] = {"tpot_p50_s", "TPOT p50", "s"},
    [M_TPOT90] = {"tpot_p90_s", "TPOT p90", "s"},
    [M_TPOT99] = {"tpot_p99_s", "TPOT p99", "s"},
    [M_PEAK] = {"peak_bytes", "peak memory", "B"},
    [M_CACHE] = {"cache_bytes", "cache (KV + state)", "B"},
    [M_KV] = {"kv_cache_bytes", "KV cache", "B"},
    [M_STATE] = {"state_bytes", "SSM state", "B"},
    [M_WEIGHTS] = {"weights_bytes", "weights", "B"},
    [M_JTOK] = {"j_per_token", "energy per token", "J/token"},
};

static int arch_rank(const char *a) {
  if (!strcmp(a, "mamba1")) return 0;
  if (!strcmp(a, "mamba2")) return 1;
  if (!strcmp(a, "transformer")) return 2;
  return 3;
}

static int cmp_num(double a, double b) { return (a > b) - (a < b); }

static int cmp_key(const rp_cell_key *x, const rp_cell_key *y) {
  int c = arch_rank(x->arch) - arch_rank(y->arch);
  if (c) return c;
  if ((c = strcmp(x->arch, y->arch))) return c;
  if ((c = cmp_num(rp_model_params(x->model), rp_model_params(y->model)))) return c;
  if ((c = strcmp(x->model, y->model))) return c;
  if ((c = strcmp(x->dtype, y->dtype))) return c;
  if ((c = cmp_num(x->batch, y->batch))) return c;
  if ((c = cmp_num(x->gen, y->gen))) return c;
  return cmp_num((double)x->context, (double)y->context);
}

static void key_of(const sf_results_item *r, rp_cell_key *k) {
  memset(k, 0, sizeof *k);
  snprintf(k->arch, sizeof k->arch, "%s", r->item.arch);
  snprintf(k->model, sizeof k->model, "%s", r->item.model);
  snprintf(k->dtype, sizeof k->dtype, "%s", r->item.dtype);
  k->context = r->item.context;
  k->batch = r->item.batch;
  k->gen = r->item.gen;
}

void rp_cell_label(const rp_cell_key *k, char *buf, size_t n) {
  snprintf(buf, n, "%s %s %s ctx %lld batch %d gen %d", k->arch, k->model, k->dtype, (long long)k->context, k->batch,
           k->gen);
}

int rp_cell_main_status(const rp_cell *c) {
  if (c->n_status[SF_STATUS_OK]) return SF_STATUS_OK;
  int best = SF_STATUS_ERROR;
  int64_t most = -1;
  static const int order[] = {SF_STATUS_OOM, SF_STATUS_OOM_PREDICTED, SF_STATUS_TIMEOUT, SF_STATUS_ERROR,
                              SF_STATUS_INTERRUPTED, SF_STATUS_SKIPPED};
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
    if (c->n_status[order[i]] > most) {
      most = c->n_status[order[i]];
      best = order[i];
    }
  return best;
}

int rp_find_cell(const rp_agg *a, const rp_cell_key *k) {
  int lo = 0, hi = a->n_cells;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    int c = cmp_key(&a->cells[mid].k, k);
    if (c == 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

static const rp_set *sort_set; /* qsort context */
static int cmp_item_idx(const void *a, const void *b) {
  const sf_results_item *x = sort_set->items[*(const int64_t *)a].row, *y = sort_set->items[*(const int64_t *)b].row;
  rp_cell_key kx, ky;
  key_of(x, &kx);
  key_of(y, &ky);
  int c = cmp_key(&kx, &ky);
  return c ? c : strcmp(x->item.key, y->item.key);
}

static int clamp_status(int32_t s) { return s >= 0 && s < RP_NSTATUS ? s : SF_STATUS_ERROR; }

static double pos_or_nan(double v) { return v > 0 && isfinite(v) ? v : NAN; }

/* The samples of one ok item. */
static int add_item_samples(rp_cell *c, const rp_item *it) {
  const sf_results_item *r = it->row;
  const int generate = r->item.kind == SF_ITEM_GENERATE;
  int bad = 0;
  int64_t before = c->samples[M_TTFT].n;
  if (it->n_repeats > 0) {
    for (int64_t k = 0; k < it->n_repeats; k++) {
      const sf_repeat_result *rp = &it->repeats[k];
      double prompt = (double)(rp->prompt_tokens > 0 ? rp->prompt_tokens : r->result.prompt_tokens);
      double gen = (double)(rp->generated_tokens > 0 ? rp->generated_tokens : r->result.generated_tokens);
      double pre = pos_or_nan(rp->prefill_s);
      bad |= rp_vec_push(&c->samples[M_TTFT], pre);
      bad |= rp_vec_push(&c->samples[M_PREFILL_TPS], prompt > 0 ? prompt / pre : NAN);
      if (generate) {
        double dec_tokens = gen - (double)r->item.batch;
        double dec = pos_or_nan(rp->decode_s);
        double tot = pos_or_nan(rp->total_s > 0 ? rp->total_s : rp->prefill_s + rp->decode_s);
        bad |= rp_vec_push(&c->samples[M_DECODE_TPS], dec_tokens > 0 ? dec_tokens / dec : NAN);
        bad |= rp_vec_push(&c->samples[M_E2E_TPS], gen > 0 ? gen / tot : NAN);
        bad |= rp_vec_push(&c->samples[M_JTOK], gen > 0 && isfinite(rp->energy_j) ? rp->energy_j / gen : NAN);
      }
    }
  } else {
    bad |= rp_vec_push(&c->samples[M_TTFT], pos_or_nan(r->result.ttft_s));
    bad |= rp_vec_push(&c->samples[M_PREFILL_TPS], pos_or_nan(r->result.prefill_tok_s));
    if (generate) {
      bad |= rp_vec_push(&c->samples[M_DECODE_TPS], pos_or_nan(r->result.decode_tok_s));
      bad |= rp_vec_push(&c->samples[M_E2E_TPS], pos_or_nan(r->result.e2e_tok_s));
      bad |= rp_vec_push(&c->samples[M_JTOK], isfinite(r->result.j_per_token) ? r->result.j_per_token : NAN);
    }
  }
  /* TPOT percentiles per repeat from the decode steps (sorted by repeat). */
  if (generate && it->n_steps > 0) {
    double *lat = malloc((size_t)it->n_steps * sizeof *lat);
    if (!lat) return -1;
    for (int64_t s = 0; s < it->n_steps;) {
      int64_t e = s, m = 0;
      while (e < it->n_steps && it->steps[e].repeat == it->steps[s].repeat) lat[m++] = it->steps[e++].latency_s;
      bad |= rp_vec_push(&c->samples[M_TPOT50], rp_quantile(lat, m, 0.50));
      bad |= rp_vec_push(&c->samples[M_TPOT90], rp_quantile(lat, m, 0.90));
      bad |= rp_vec_push(&c->samples[M_TPOT99], rp_quantile(lat, m, 0.99));
      s = e;
    }
    free(lat);
  } else if (generate) {
    bad |= rp_vec_push(&c->samples[M_TPOT50], pos_or_nan(r->result.tpot_p50_s));
    bad |= rp_vec_push(&c->samples[M_TPOT90], pos_or_nan(r->result.tpot_p90_s));
    bad |= rp_vec_push(&c->samples[M_TPOT99], pos_or_nan(r->result.tpot_p99_s));
  }
  /* Memory: one sample per item; 0 means "not recorded" (schema). */
  const sf_item_result *res = &r->result;
  if (res->peak_bytes > 0) bad |= rp_vec_push(&c->samples[M_PEAK], (double)res->peak_bytes);
  if (res->kv_cache_bytes + res->state_bytes > 0)
    bad |= rp_vec_push(&c->samples[M_CACHE], (double)(res->kv_cache_bytes + res->state_bytes));
  if (res->kv_cache_bytes > 0) bad |= rp_vec_push(&c->samples[M_KV], (double)res->kv_cache_bytes);
  if (res->state_bytes > 0) bad |= rp_vec_push(&c->samples[M_STATE], (double)res->state_bytes);
  if (res->weights_bytes > 0) bad |= rp_vec_push(&c->samples[M_WEIGHTS], (double)res->weights_bytes);
  int any = 0;
  for (int64_t k = before; k < c->samples[M_TTFT].n; k++) any |= isfinite(c->samples[M_TTFT].v[k]);
  if (!any) c->n_nan++;
  return bad ? -1 : 0;
}

static int cmp_pair_pos(const void *a, const void *b) {
  const double *x = a, *y = b;
  return (x[0] > y[0]) - (x[0] < y[0]);
}

/* Decode latency vs position: equal-width position bins over the cell's
 * steps. */
static int build_curve(const rp_set *s, const rp_cell *c, int cell, int nbins, rp_decode_curve *out) {
  memset(out, 0, sizeof *out);
  out->cell = cell;
  int64_t n = 0;
  for (int64_t i = 0; i < c->n_items; i++) {
    const rp_item *it = &s->items[c->items[i]];
    if (it->row->result.status == SF_STATUS_OK) n += it->n_steps;
  }
  if (n == 0) return 0;
  double *pl = malloc((size_t)n * 2 * sizeof *pl); /* (position, latency) pairs */
  if (!pl) return -1;
  int64_t m = 0;
  for (int64_t i = 0; i < c->n_items; i++) {
    const rp_item *it = &s->items[c->items[i]];
    if (it->row->result.status != SF_STATUS_OK) continue;
    for (int64_t k = 0; k < it->n_steps; k++) {
      if (!isfinite(it->steps[k].latency_s) || it->steps[k].latency_s <= 0) continue;
      pl[2 * m] = (double)it->steps[k].position;
      pl[2 * m + 1] = it->steps[k].latency_s;
      m++;
    }
  }
  if (m == 0) {
    free(pl);
    return 0;
  }
  qsort(pl, (size_t)m, 2 * sizeof *pl, cmp_pair_pos);
  const int64_t pmin = (int64_t)pl[0], pmax = (int64_t)pl[2 * (m - 1)];
  const int64_t span = pmax - pmin + 1;
  int nb = nbins > 0 ? nbins : 16;
  if (span < nb) nb = (int)span;
  out->bins = calloc((size_t)nb, sizeof *out->bins);
  double *lat = malloc((size_t)m * sizeof *lat), *pos = malloc((size_t)m * sizeof *pos);
  if (!out->bins || !lat || !pos) {
    free(out->bins);
    out->bins = NULL;
    free(lat);
    free(pos);
    free(pl);
    return -1;
  }
  int64_t k = 0;
  for (int b = 0; b < nb; b++) {
    int64_t k0 = k, cnt = 0;
    while (k < m && ((int64_t)pl[2 * k] - pmin) * nb / span == b) {
      pos[cnt] = pl[2 * k];
      lat[cnt] = pl[2 * k + 1];
      cnt++;
      k++;
    }
    if (!cnt) continue;
    rp_bin *bin = &out->bins[out->n_bins++];
    bin->pos_lo = (int64_t)pl[2 * k0];
    bin->pos_hi = (int64_t)pl[2 * (k - 1)];
    bin->pos_mid = rp_median(pos, cnt);
    bin->n = cnt;
    bin->med = rp_median(lat, cnt);
    bin->p10 = rp_quantile(lat, cnt, 0.10);
    bin->p90 = rp_quantile(lat, cnt, 0.90);
  }
  free(lat);
  free(pos);
  free(pl);
  return 0;
}

static int kern_cfg_cmp(const sf_kernel_result *x, const sf_kernel_result *y) {
  int c;
  if ((c = strcmp(x->op, y->op))) return c;
  if ((c = strcmp(x->impl, y->impl))) return c;
  if ((c = strcmp(x->dtype, y->dtype))) return c;
  if ((c = cmp_num(x->batch, y->batch))) return c;
  if ((c = cmp_num(x->heads, y->heads))) return c;
  if ((c = cmp_num(x->head_dim, y->head_dim))) return c;
  if ((c = cmp_num(x->d_state, y->d_state))) return c;
  if ((c = cmp_num((double)x->dim, (double)y->dim))) return c;
  return cmp_num((double)x->seqlen, (double)y->seqlen);
}

static int cmp_kern_ptr(const void *a, const void *b) {
  return kern_cfg_cmp(*(const sf_kernel_result *const *)a, *(const sf_kernel_result *const *)b);
}

static sf_status aggregate_kernels(const rp_set *s, rp_agg *a, sf_error *err) {
  int64_t n = 0;
  for (int64_t i = 0; i < s->n_items; i++) n += s->items[i].n_kernels;
  if (!n) return SF_OK;
  const sf_kernel_result **rows = malloc((size_t)n * sizeof *rows);
  a->kernels = calloc((size_t)n, sizeof *a->kernels);
  double *v = malloc((size_t)n * 8 * sizeof *v);
  if (!rows || !a->kernels || !v) {
    free(rows);
    free(v);
    return sf_fail(err, SF_ERR_NOMEM, "out of memory (%lld kernel rows)", (long long)n);
  }
  int64_t m = 0;
  for (int64_t i = 0; i < s->n_items; i++)
    for (int64_t k = 0; k < s->items[i].n_kernels; k++) rows[m++] = &s->items[i].kernels[k];
  qsort(rows, (size_t)m, sizeof *rows, cmp_kern_ptr);
  for (int64_t i = 0; i < m;) {
    int64_t e = i + 1;
    while (e < m && !kern_cfg_cmp(rows[i], rows[e])) e++;
    const int64_t cnt = e - i;
    rp_kernel_row *kr = &a->kernels[a->n_kernels++];
    const sf_kernel_result *r0 = rows[i];
    snprintf(kr->op, sizeof kr->op, "%s", r0->op);
    snprintf(kr->impl, sizeof kr->impl, "%s", r0->impl);
    snprintf(kr->dtype, sizeof kr->dtype, "%s", r0->dtype);
    kr->batch = r0->batch;
    kr->heads = r0->heads;
    kr->head_dim = r0->head_dim;
    kr->d_state = r0->d_state;
    kr->seqlen = r0->seqlen;
    kr->dim = r0->dim;
    kr->n = cnt;
    double *f[8];
    for (int j = 0; j < 8; j++) f[j] = v + (size_t)j * (size_t)cnt;
    kr->max_rel_err = NAN;
    for (int64_t j = 0; j < cnt; j++) {
      const sf_kernel_result *r = rows[i + j];
      f[0][j] = r->median_s;
      f[1][j] = r->p10_s;
      f[2][j] = r->p90_s;
      f[3][j] = r->tflops;
      f[4][j] = r->gbps;
      f[5][j] = r->pct_flops_roof;
      f[6][j] = r->pct_bw_roof;
      if (r->n_wrong > kr->n_wrong) kr->n_wrong = r->n_wrong;
      if (isfinite(r->max_rel_err) && !(r->max_rel_err <= kr->max_rel_err)) kr->max_rel_err = r->max_rel_err;
    }
    kr->median_s = rp_median(f[0], cnt);
    kr->p10_s = rp_median(f[1], cnt);
    kr->p90_s = rp_median(f[2], cnt);
    kr->tflops = rp_median(f[3], cnt);
    kr->gbps = rp_median(f[4], cnt);
    kr->pct_flops = rp_median(f[5], cnt);
    kr->pct_bw = rp_median(f[6], cnt);
    i = e;
  }
  free(rows);
  free(v);
  return SF_OK;
}

sf_status rp_aggregate(const rp_set *s, const rp_options *o, rp_agg *a, sf_error *err) {
  memset(a, 0, sizeof *a);
  int64_t *idx = malloc((size_t)(s->n_items ? s->n_items : 1) * sizeof *idx);
  a->kernel_items = malloc((size_t)(s->n_items ? s->n_items : 1) * sizeof *a->kernel_items);
  if (!idx || !a->kernel_items) {
    free(idx);
    return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  }
  int64_t n = 0;
  int odd_status = 0;
  for (int64_t i = 0; i < s->n_items; i++) {
    const sf_results_item *r = s->items[i].row;
    int st = clamp_status(r->result.status);
    odd_status |= st != r->result.status;
    a->n_status[st]++;
    if (r->item.kind == SF_ITEM_KERNELS) {
      a->n_kernel_items++;
      if (st != SF_STATUS_OK) a->kernel_items[a->n_kernel_items_bad++] = i;
      continue;
    }
    idx[n++] = i;
  }
  if (odd_status) rp_note("items with an unknown status are counted as error");
  sort_set = s;
  qsort(idx, (size_t)n, sizeof *idx, cmp_item_idx);
  a->cells = calloc((size_t)(n ? n : 1), sizeof *a->cells);
  if (!a->cells) {
    free(idx);
    return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  }
  sf_status rc = SF_OK;
  int64_t nan_items = 0;
  for (int64_t i = 0; i < n && rc == SF_OK;) {
    rp_cell_key k;
    key_of(s->items[idx[i]].row, &k);
    int64_t e = i + 1;
    for (; e < n; e++) {
      rp_cell_key k2;
      key_of(s->items[idx[e]].row, &k2);
      if (cmp_key(&k, &k2)) break;
    }
    rp_cell *c = &a->cells[a->n_cells++];
    c->k = k;
    c->n_items = e - i;
    c->items = malloc((size_t)c->n_items * sizeof *c->items);
    if (!c->items) {
      rc = sf_fail(err, SF_ERR_NOMEM, "out of memory");
      break;
    }
    for (int64_t j = i; j < e; j++) {
      const rp_item *it = &s->items[idx[j]];
      c->items[j - i] = idx[j];
      int st = clamp_status(it->row->result.status);
      c->n_status[st]++;
      double est = (double)(it->row->result.est_bytes > 0 ? it->row->result.est_bytes : it->row->item.est_bytes);
      if (est > c->est_bytes) c->est_bytes = est;
      if (it->row->result.weights_bytes > 0) c->weights_b = (double)it->row->result.weights_bytes;
      if (st == SF_STATUS_OK && add_item_samples(c, it)) rc = sf_fail(err, SF_ERR_NOMEM, "out of memory");
    }
    nan_items += c->n_nan;
    char label[200];
    rp_cell_label(&c->k, label, sizeof label);
    for (int m = 0; m < M_COUNT; m++)
      c->st[m] = rp_bootstrap_median(c->samples[m].v, c->samples[m].n, o->bootstrap,
                                     rp_hash(rp_metrics[m].name, rp_hash(label, 0)) ^ o->seed);
    if (c->st[M_JTOK].n) a->have_energy = 1;
    i = e;
  }
  free(idx);
  if (rc != SF_OK) return rc;
  if (nan_items) rp_note("%lld ok items have no finite timing (NaN or missing values); shown as missing", (long long)nan_items);

  a->curves = calloc((size_t)(a->n_cells ? a->n_cells : 1), sizeof *a->curves);
  if (!a->curves) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  for (int i = 0; i < a->n_cells; i++) {
    rp_decode_curve cv;
    if (build_curve(s, &a->cells[i], i, o->bins, &cv)) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
    if (cv.n_bins) a->curves[a->n_curves++] = cv;
    else free(cv.bins);
  }
  return aggregate_kernels(s, a, err);
}

void rp_agg_free(rp_agg *a) {
  for (int i = 0; i < a->n_cells; i++) {
    free(a->cells[i].items);
    for (int m = 0; m < M_COUNT; m++) rp_vec_free(&a->cells[i].samples[m]);
  }
  free(a->cells);
  for (int i = 0; i < a->n_curves; i++) free(a->curves[i].bins);
  free(a->curves);
  free(a->kernels);
  free(a->kernel_items);
  memset(a, 0, sizeof *a);
}
