/* Comparisons across cells: Mamba / Transformer throughput ratios and the
 * crossover context, prefill scaling exponents, the largest batch that
 * fits, and the change against a baseline run. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

const char *const rp_cmp_names[RP_NCMP] = {"prefill", "decode", "e2e"};
const rp_metric rp_cmp_metric[RP_NCMP] = {M_PREFILL_TPS, M_DECODE_TPS, M_E2E_TPS};

static int is_mamba(const char *arch) { return !strncmp(arch, "mamba", 5); }
static int is_tf(const char *arch) { return !strcmp(arch, "transformer"); }

double rp_model_params(const char *model) {
  const char *dash = strrchr(model, '-');
  const char *p = dash ? dash + 1 : model;
  if (!isdigit((unsigned char)*p)) return 0;
  char *end;
  double v = strtod(p, &end);
  if (end == p || end[0] == '\0' || end[1] != '\0') return 0;
  switch (tolower((unsigned char)*end)) {
    case 'k': return v * 1e3;
    case 'm': return v * 1e6;
    case 'b': return v * 1e9;
    case 't': return v * 1e12;
    default: return 0;
  }
}

static double cell_size(const rp_cell *c) {
  double p = rp_model_params(c->k.model);
  return p > 0 ? p : c->weights_b;
}

static int grow(void **p, int *cap, int n, size_t elem) {
  if (n < *cap) return 0;
  int c = *cap ? *cap * 2 : 16;
  void *np = realloc(*p, (size_t)c * elem);
  if (!np) return -1;
  *p = np;
  *cap = c;
  return 0;
}

/* Pairs each Mamba model with the Transformer model nearest in size (log
 * ratio of parameter counts from the preset names, else of weights bytes). */
static sf_status make_pairs(const rp_agg *a, rp_cmp *c, sf_error *err) {
  int cap = 0;
  for (int i = 0; i < a->n_cells; i++) {
    const rp_cell *m = &a->cells[i];
    if (!is_mamba(m->k.arch)) continue;
    if (i > 0 && !strcmp(a->cells[i - 1].k.arch, m->k.arch) && !strcmp(a->cells[i - 1].k.model, m->k.model)) continue;
    const double ms = cell_size(m);
    int best = -1;
    double best_d = INFINITY;
    for (int j = 0; j < a->n_cells; j++) {
      const rp_cell *t = &a->cells[j];
      if (!is_tf(t->k.arch)) continue;
      const double ts = cell_size(t);
      double d = ms > 0 && ts > 0 ? fabs(log(ms / ts)) : 1e300;
      if (best < 0 || d < best_d) {
        best = j;
        best_d = d;
      }
    }
    if (best < 0) continue;
    if (grow((void **)&c->pairs, &cap, c->n_pairs, sizeof *c->pairs))
      return sf_fail(err, SF_ERR_NOMEM, "out of memory");
    rp_pair *p = &c->pairs[c->n_pairs++];
    memset(p, 0, sizeof *p);
    snprintf(p->mamba_arch, sizeof p->mamba_arch, "%s", m->k.arch);
    snprintf(p->mamba_model, sizeof p->mamba_model, "%s", m->k.model);
    snprintf(p->tf_model, sizeof p->tf_model, "%s", a->cells[best].k.model);
  }
  return SF_OK;
}

static sf_status make_speedups(const rp_agg *a, const rp_options *o, rp_cmp *c, sf_error *err) {
  int cap = 0;
  for (int p = 0; p < c->n_pairs; p++) {
    const rp_pair *pr = &c->pairs[p];
    for (int i = 0; i < a->n_cells; i++) {
      const rp_cell *m = &a->cells[i];
      if (strcmp(m->k.arch, pr->mamba_arch) || strcmp(m->k.model, pr->mamba_model)) continue;
      rp_cell_key tk = m->k;
      snprintf(tk.arch, sizeof tk.arch, "transformer");
      snprintf(tk.model, sizeof tk.model, "%s", pr->tf_model);
      int j = rp_find_cell(a, &tk);
      if (j < 0) continue;
      if (grow((void **)&c->speedups, &cap, c->n_speedups, sizeof *c->speedups))
        return sf_fail(err, SF_ERR_NOMEM, "out of memory");
      rp_speedup *s = &c->speedups[c->n_speedups++];
      memset(s, 0, sizeof *s);
      s->pair = p;
      snprintf(s->dtype, sizeof s->dtype, "%s", m->k.dtype);
      s->context = m->k.context;
      s->batch = m->k.batch;
      s->gen = m->k.gen;
      s->mcell = i;
      s->tcell = j;
      char label[200];
      rp_cell_label(&m->k, label, sizeof label);
      for (int k = 0; k < RP_NCMP; k++) {
        const rp_vec *x = &m->samples[rp_cmp_metric[k]], *y = &a->cells[j].samples[rp_cmp_metric[k]];
        s->r[k] = rp_bootstrap_ratio(x->v, x->n, y->v, y->n, o->bootstrap,
                                     rp_hash(rp_cmp_names[k], rp_hash(pr->tf_model, rp_hash(label, 0))) ^ o->seed);
      }
    }
  }
  return SF_OK;
}

static int is_oom(int st) { return st == SF_STATUS_OOM || st == SF_STATUS_OOM_PREDICTED; }

static sf_status make_crossovers(const rp_agg *a, rp_cmp *c, sf_error *err) {
  int cap = 0;
  for (int i = 0; i < c->n_speedups;) {
    const rp_speedup *s0 = &c->speedups[i];
    int e = i + 1;
    while (e < c->n_speedups && c->speedups[e].pair == s0->pair && !strcmp(c->speedups[e].dtype, s0->dtype) &&
           c->speedups[e].batch == s0->batch && c->speedups[e].gen == s0->gen)
      e++;
    for (int k = 0; k < RP_NCMP; k++) {
      /* Prefill items (gen 0) have no decode or e2e throughput. */
      if (s0->gen == 0 && k != RP_CMP_PREFILL) continue;
      if (grow((void **)&c->cross, &cap, c->n_cross, sizeof *c->cross)) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
      rp_crossover *x = &c->cross[c->n_cross++];
      memset(x, 0, sizeof *x);
      x->pair = s0->pair;
      snprintf(x->dtype, sizeof x->dtype, "%s", s0->dtype);
      x->batch = s0->batch;
      x->gen = s0->gen;
      x->metric = k;
      x->context = NAN;
      x->last_ratio = NAN;
      double prev_r = NAN;
      int64_t prev_l = 0, crossings = 0;
      for (int j = i; j < e; j++) { /* contexts ascend within the group */
        const rp_speedup *s = &c->speedups[j];
        const rp_cell *mc = &a->cells[s->mcell], *tc = &a->cells[s->tcell];
        if (s->context <= 0) continue;
        if (!x->tf_oom_from && mc->n_status[SF_STATUS_OK] && !tc->n_status[SF_STATUS_OK] &&
            is_oom(rp_cell_main_status(tc)))
          x->tf_oom_from = s->context;
        const double r = s->r[k].med;
        if (!(r > 0) || !isfinite(r)) continue;
        if (x->n_points == 0) {
          x->lmin = s->context;
          if (r >= 1) x->found = 2;
        } else if ((prev_r < 1) != (r < 1)) {
          crossings++;
          if (prev_r < 1 && r >= 1 && x->found == 0) {
            const double l1 = log((double)prev_l), l2 = log((double)s->context);
            const double f = (0 - log(prev_r)) / (log(r) - log(prev_r));
            x->context = exp(l1 + f * (l2 - l1));
            x->found = 1;
          }
        }
        x->n_points++;
        x->lmax = s->context;
        x->last_ratio = r;
        prev_r = r;
        prev_l = s->context;
      }
      x->multiple = crossings > 1 || (x->found == 2 && crossings > 0);
    }
    i = e;
  }
  return SF_OK;
}

typedef struct ctx_samples {
  int64_t context;
  const rp_vec *v;
} ctx_samples;

static int cmp_ctx(const void *a, const void *b) {
  const ctx_samples *x = a, *y = b;
  return (x->context > y->context) - (x->context < y->context);
}

/* Prefill time vs context per (arch, model, dtype, batch), pooling the
 * generation lengths (prefill does not depend on them). */
static sf_status make_scaling(const rp_agg *a, rp_cmp *c, sf_error *err) {
  int cap = 0;
  ctx_samples *cs = malloc((size_t)(a->n_cells ? a->n_cells : 1) * sizeof *cs);
  if (!cs) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  /* Cells are sorted by arch, model, dtype, batch, gen, context: a group is
   * a run of equal (arch, model, dtype, batch). */
  for (int i = 0; i < a->n_cells;) {
    const rp_cell_key *k0 = &a->cells[i].k;
    int e = i + 1;
    while (e < a->n_cells && !strcmp(a->cells[e].k.arch, k0->arch) && !strcmp(a->cells[e].k.model, k0->model) &&
           !strcmp(a->cells[e].k.dtype, k0->dtype) && a->cells[e].k.batch == k0->batch)
      e++;
    int n = 0;
    for (int j = i; j < e; j++)
      if (a->cells[j].k.context > 0 && a->cells[j].st[M_TTFT].n > 0) {
        cs[n].context = a->cells[j].k.context;
        cs[n].v = &a->cells[j].samples[M_TTFT];
        n++;
      }
    qsort(cs, (size_t)n, sizeof *cs, cmp_ctx);
    int64_t *ctx = malloc((size_t)(n ? n : 1) * sizeof *ctx);
    double *t = malloc((size_t)(n ? n : 1) * sizeof *t);
    rp_vec pool = {0};
    if (!ctx || !t) {
      free(ctx);
      free(t);
      free(cs);
      return sf_fail(err, SF_ERR_NOMEM, "out of memory");
    }
    int np = 0;
    for (int j = 0; j < n;) {
      int f = j;
      pool.n = 0;
      while (f < n && cs[f].context == cs[j].context) {
        for (int64_t q = 0; q < cs[f].v->n; q++) rp_vec_push(&pool, cs[f].v->v[q]);
        f++;
      }
      double med = rp_median(pool.v, pool.n);
      if (med > 0) {
        ctx[np] = cs[j].context;
        t[np] = med;
        np++;
      }
      j = f;
    }
    rp_vec_free(&pool);
    if (np >= 2) {
      if (grow((void **)&c->scaling, &cap, c->n_scaling, sizeof *c->scaling)) {
        free(ctx);
        free(t);
        free(cs);
        return sf_fail(err, SF_ERR_NOMEM, "out of memory");
      }
      rp_scaling *sc = &c->scaling[c->n_scaling++];
      memset(sc, 0, sizeof *sc);
      snprintf(sc->arch, sizeof sc->arch, "%s", k0->arch);
      snprintf(sc->model, sizeof sc->model, "%s", k0->model);
      snprintf(sc->dtype, sizeof sc->dtype, "%s", k0->dtype);
      sc->batch = k0->batch;
      sc->n = np;
      sc->lmin = ctx[0];
      sc->lmax = ctx[np - 1];
      sc->ctx = ctx;
      sc->t = t;
      double *x = malloc((size_t)np * sizeof *x);
      if (x) {
        for (int j = 0; j < np; j++) x[j] = (double)ctx[j];
        sc->have_fit = rp_fit_loglog(x, t, np, &sc->fit) == 0;
        const int h = np / 2;
        if (np - h >= 3 && h > 0) sc->have_upper = rp_fit_loglog(x + h, t + h, np - h, &sc->upper) == 0;
        free(x);
      }
    } else {
      free(ctx);
      free(t);
    }
    i = e;
  }
  free(cs);
  return SF_OK;
}

static int arch_rank(const char *a) {
  if (!strcmp(a, "mamba1")) return 0;
  if (!strcmp(a, "mamba2")) return 1;
  if (!strcmp(a, "transformer")) return 2;
  return 3;
}

static int cmp_num(double a, double b) { return (a > b) - (a < b); }

/* The cells' order with batch last: (arch, model, dtype, gen, context, batch). */
static const rp_agg *sort_agg;
static int cmp_mb(const void *pa, const void *pb) {
  const rp_cell_key *x = &sort_agg->cells[*(const int *)pa].k, *y = &sort_agg->cells[*(const int *)pb].k;
  int c;
  if ((c = arch_rank(x->arch) - arch_rank(y->arch))) return c;
  if ((c = strcmp(x->arch, y->arch))) return c;
  if ((c = cmp_num(rp_model_params(x->model), rp_model_params(y->model)))) return c;
  if ((c = strcmp(x->model, y->model))) return c;
  if ((c = strcmp(x->dtype, y->dtype))) return c;
  if ((c = cmp_num(x->gen, y->gen))) return c;
  if ((c = cmp_num((double)x->context, (double)y->context))) return c;
  return cmp_num(x->batch, y->batch);
}

static sf_status make_maxbatch(const rp_agg *a, rp_cmp *c, sf_error *err) {
  int *idx = malloc((size_t)(a->n_cells ? a->n_cells : 1) * sizeof *idx);
  c->maxb = calloc((size_t)(a->n_cells ? a->n_cells : 1), sizeof *c->maxb);
  if (!idx || !c->maxb) {
    free(idx);
    return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  }
  for (int i = 0; i < a->n_cells; i++) idx[i] = i;
  sort_agg = a;
  qsort(idx, (size_t)a->n_cells, sizeof *idx, cmp_mb);
  for (int i = 0; i < a->n_cells;) {
    const rp_cell_key *k0 = &a->cells[idx[i]].k;
    int e = i + 1;
    while (e < a->n_cells) {
      const rp_cell_key *k = &a->cells[idx[e]].k;
      if (strcmp(k->arch, k0->arch) || strcmp(k->model, k0->model) || strcmp(k->dtype, k0->dtype) ||
          k->gen != k0->gen || k->context != k0->context)
        break;
      e++;
    }
    rp_maxbatch *mb = &c->maxb[c->n_maxb++];
    memset(mb, 0, sizeof *mb);
    snprintf(mb->arch, sizeof mb->arch, "%s", k0->arch);
    snprintf(mb->model, sizeof mb->model, "%s", k0->model);
    snprintf(mb->dtype, sizeof mb->dtype, "%s", k0->dtype);
    mb->context = k0->context;
    mb->gen = k0->gen;
    size_t len = 0;
    for (int j = i; j < e; j++) {
      const rp_cell *cell = &a->cells[idx[j]];
      const int64_t oom = cell->n_status[SF_STATUS_OOM], pred = cell->n_status[SF_STATUS_OOM_PREDICTED];
      const int64_t ok = cell->n_status[SF_STATUS_OK];
      const char *what = oom ? "OOM" : pred ? "OOM (predicted)" : ok ? "ok" : rp_status_name(rp_cell_main_status(cell));
      if (ok && oom + pred) what = "ok/OOM";
      if (len < sizeof mb->tried)
        len += (size_t)snprintf(mb->tried + len, sizeof mb->tried - len, "%s%d %s", j > i ? ", " : "", cell->k.batch,
                                what);
      if (ok && !(oom + pred) && cell->k.batch > mb->largest_ok) mb->largest_ok = cell->k.batch;
      if ((oom + pred) && (!mb->smallest_oom || cell->k.batch < mb->smallest_oom)) {
        mb->smallest_oom = cell->k.batch;
        mb->oom_predicted = oom == 0;
      }
    }
    i = e;
  }
  free(idx);
  return SF_OK;
}

static int kern_same(const rp_kernel_row *x, const rp_kernel_row *y) {
  return !strcmp(x->op, y->op) && !strcmp(x->impl, y->impl) && !strcmp(x->dtype, y->dtype) && x->batch == y->batch &&
         x->heads == y->heads && x->head_dim == y->head_dim && x->d_state == y->d_state && x->dim == y->dim &&
         x->seqlen == y->seqlen;
}

static sf_status make_baseline(const rp_agg *a, const rp_agg *b, const rp_options *o, rp_cmp *c, sf_error *err) {
  c->have_baseline = 1;
  c->base = calloc((size_t)(a->n_cells + b->n_cells + 1), sizeof *c->base);
  c->bkern = calloc((size_t)(a->n_kernels + 1), sizeof *c->bkern);
  if (!c->base || !c->bkern) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  for (int i = 0; i < a->n_cells; i++) {
    rp_base_row *r = &c->base[c->n_base++];
    r->cell = i;
    r->bcell = rp_find_cell(b, &a->cells[i].k);
    for (int k = 0; k < RP_NCMP; k++) r->r[k].med = r->r[k].lo = r->r[k].hi = NAN;
    if (r->bcell < 0) continue;
    const rp_cell *x = &a->cells[i], *y = &b->cells[r->bcell];
    char label[200];
    rp_cell_label(&x->k, label, sizeof label);
    for (int k = 0; k < RP_NCMP; k++) {
      const rp_vec *vx = &x->samples[rp_cmp_metric[k]], *vy = &y->samples[rp_cmp_metric[k]];
      r->r[k] = rp_bootstrap_ratio(vx->v, vx->n, vy->v, vy->n, o->bootstrap,
                                   rp_hash(rp_cmp_names[k], rp_hash("baseline", rp_hash(label, 0))) ^ o->seed);
      if (r->r[k].n && r->r[k].lo > 1) r->verdict[k] = 1;
      else if (r->r[k].n && r->r[k].hi < 1) r->verdict[k] = -1;
    }
    int sx = rp_cell_main_status(x), sy = rp_cell_main_status(y);
    if (sx != sy) snprintf(r->status_change, sizeof r->status_change, "%s -> %s", rp_status_name(sy), rp_status_name(sx));
  }
  for (int j = 0; j < b->n_cells; j++) {
    if (rp_find_cell(a, &b->cells[j].k) >= 0) continue;
    rp_base_row *r = &c->base[c->n_base++];
    r->cell = -1;
    r->bcell = j;
    for (int k = 0; k < RP_NCMP; k++) r->r[k].med = r->r[k].lo = r->r[k].hi = NAN;
    snprintf(r->status_change, sizeof r->status_change, "only in the baseline");
  }
  for (int i = 0; i < a->n_kernels; i++)
    for (int j = 0; j < b->n_kernels; j++) {
      if (!kern_same(&a->kernels[i], &b->kernels[j])) continue;
      rp_base_kernel *bk = &c->bkern[c->n_bkern++];
      bk->cur = i;
      bk->base = j;
      const rp_kernel_row *x = &a->kernels[i], *y = &b->kernels[j];
      bk->speedup = x->median_s > 0 ? y->median_s / x->median_s : NAN;
      if (x->p90_s > 0 && y->p10_s > 0 && x->p90_s < y->p10_s) bk->verdict = 1;
      else if (x->p10_s > 0 && y->p90_s > 0 && x->p10_s > y->p90_s) bk->verdict = -1;
      break;
    }
  return SF_OK;
}

sf_status rp_compare(const rp_agg *a, const rp_agg *baseline, const rp_options *o, rp_cmp *c, sf_error *err) {
  memset(c, 0, sizeof *c);
  SF_TRY(make_pairs(a, c, err));
  SF_TRY(make_speedups(a, o, c, err));
  SF_TRY(make_crossovers(a, c, err));
  SF_TRY(make_scaling(a, c, err));
  SF_TRY(make_maxbatch(a, c, err));
  if (baseline) SF_TRY(make_baseline(a, baseline, o, c, err));
  return SF_OK;
}

void rp_cmp_free(rp_cmp *c) {
  free(c->pairs);
  free(c->speedups);
  free(c->cross);
  for (int i = 0; i < c->n_scaling; i++) {
    free(c->scaling[i].ctx);
    free(c->scaling[i].t);
  }
  free(c->scaling);
  free(c->maxb);
  free(c->base);
  free(c->bkern);
  memset(c, 0, sizeof *c);
}
