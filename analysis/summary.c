/* The headline: what the report found, in a few lines (stdout and the top
 * of the report): items by status, the crossover context, the speedups at
 * the largest context measured, the prefill scaling exponents, and the
 * change against a baseline. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

typedef struct buf {
  char *s;
  size_t len, cap;
} buf;

static void addf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(buf *b, const char *fmt, ...) {
  char line[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) n = sizeof line - 1;
  if (b->len + (size_t)n + 1 > b->cap) {
    size_t c = b->cap ? b->cap * 2 : 1024;
    while (c < b->len + (size_t)n + 1) c *= 2;
    char *ns = realloc(b->s, c);
    if (!ns) return;
    b->s = ns;
    b->cap = c;
  }
  memcpy(b->s + b->len, line, (size_t)n + 1);
  b->len += (size_t)n;
}

static void group_label(const rp_report *r, int pair, const char *dtype, int32_t batch, int32_t gen, char *out,
                        size_t n) {
  const rp_pair *p = &r->cmp->pairs[pair];
  char g[32];
  rp_fmt_gen(gen, g, sizeof g);
  int multi = 0;
  for (int i = 1; i < r->agg->n_cells; i++) multi |= strcmp(r->agg->cells[i].k.dtype, r->agg->cells[0].k.dtype) != 0;
  snprintf(out, n, "%s / %s%s%s, batch %d, gen %s", p->mamba_model, p->tf_model, multi ? " " : "", multi ? dtype : "",
           batch, g);
}

char *rp_summary(const rp_report *r, int max_lines) {
  buf b = {0};
  const rp_agg *a = r->agg;
  const rp_cmp *c = r->cmp;
  int64_t total = 0;
  for (int s = 0; s < RP_NSTATUS; s++) total += a->n_status[s];
  addf(&b, "%d file%s read", r->set->n_loaded, r->set->n_loaded == 1 ? "" : "s");
  if (r->set->n_loaded < r->set->n_files) addf(&b, " (%d refused)", r->set->n_files - r->set->n_loaded);
  addf(&b, ", %lld items:", (long long)total);
  int first = 1;
  for (int s = 0; s < RP_NSTATUS; s++)
    if (a->n_status[s]) {
      addf(&b, "%s %lld %s", first ? "" : ",", (long long)a->n_status[s], rp_status_name(s));
      first = 0;
    }
  if (r->set->n_duplicates) addf(&b, " (%lld duplicate keys merged)", (long long)r->set->n_duplicates);
  addf(&b, "\n");

  /* Crossovers: one line per (pair, dtype, batch, gen). */
  if (c->n_cross) {
    addf(&b, "crossover context (Mamba overtakes the Transformer; log-context interpolation):\n");
    int lines = 0, skipped = 0;
    for (int i = 0; i < c->n_cross;) {
      const rp_crossover *x0 = &c->cross[i];
      int e = i + 1;
      while (e < c->n_cross && c->cross[e].pair == x0->pair && c->cross[e].batch == x0->batch &&
             c->cross[e].gen == x0->gen && !strcmp(c->cross[e].dtype, x0->dtype))
        e++;
      /* the headline: each pair's first group (smallest batch, first
       * generation length); the rest are in the report */
      const int first_of_pair = i == 0 || c->cross[i - 1].pair != x0->pair;
      if (!first_of_pair || lines >= max_lines) {
        skipped++;
        i = e;
        continue;
      }
      char lab[200];
      group_label(r, x0->pair, x0->dtype, x0->batch, x0->gen, lab, sizeof lab);
      addf(&b, "  %s:", lab);
      for (int j = i; j < e; j++) {
        char v[200];
        rp_fmt_crossover(&c->cross[j], v, sizeof v);
        addf(&b, "%s %s %s", j > i ? " ·" : "", rp_cmp_names[c->cross[j].metric], v);
      }
      addf(&b, "\n");
      lines++;
      i = e;
    }
    if (skipped) addf(&b, "  (+%d more batch sizes / generation lengths in report.md)\n", skipped);
  } else {
    addf(&b, "crossover context: no Mamba / Transformer pairs measured at a common context\n");
  }

  /* Speedups at the largest context with a ratio. */
  if (c->n_speedups) {
    addf(&b, "speedup at the largest context (Mamba ÷ Transformer throughput, median [95%% CI]):\n");
    int lines = 0, skipped = 0;
    for (int i = 0; i < c->n_speedups;) {
      const rp_speedup *s0 = &c->speedups[i];
      int e = i + 1;
      while (e < c->n_speedups && c->speedups[e].pair == s0->pair && c->speedups[e].batch == s0->batch &&
             c->speedups[e].gen == s0->gen && !strcmp(c->speedups[e].dtype, s0->dtype))
        e++;
      int best = -1;
      for (int j = i; j < e; j++) {
        int any = 0;
        for (int k = 0; k < RP_NCMP; k++) any |= c->speedups[j].r[k].n > 0;
        if (any) best = j;
      }
      if (best < 0) {
        i = e;
        continue;
      }
      const int first_of_pair = i == 0 || c->speedups[i - 1].pair != s0->pair;
      if (!first_of_pair || lines >= max_lines) {
        skipped++;
        i = e;
        continue;
      }
      const rp_speedup *s = &c->speedups[best];
      char lab[200], ctx[32];
      group_label(r, s->pair, s->dtype, s->batch, s->gen, lab, sizeof lab);
      rp_fmt_context(s->context, ctx, sizeof ctx);
      addf(&b, "  %s @ %s:", lab, ctx);
      int n = 0;
      for (int k = 0; k < RP_NCMP; k++) {
        if (!s->r[k].n) continue;
        char v[128];
        rp_fmt_stat(&s->r[k], "x", v, sizeof v);
        addf(&b, "%s %s %s", n++ ? " ·" : "", rp_cmp_names[k], v);
      }
      /* A larger context where only Mamba ran. */
      for (int j = best + 1; j < e; j++) {
        const rp_cell *tc = &r->agg->cells[c->speedups[j].tcell], *mc = &r->agg->cells[c->speedups[j].mcell];
        int ts = rp_cell_main_status(tc);
        if (mc->n_status[SF_STATUS_OK] && ts != SF_STATUS_OK) {
          rp_fmt_context(c->speedups[j].context, ctx, sizeof ctx);
          addf(&b, " (Transformer %s at %s)", rp_status_name(ts), ctx);
          break;
        }
      }
      addf(&b, "\n");
      lines++;
      i = e;
    }
    if (skipped) addf(&b, "  (+%d more batch sizes / generation lengths in report.md)\n", skipped);
  }

  if (c->n_scaling) {
    addf(&b, "prefill time ∝ context^k (log-log least squares, 95%% CI):\n");
    int shown = 0, skipped = 0;
    for (int i = 0; i < c->n_scaling; i++) {
      const rp_scaling *s = &c->scaling[i];
      /* each model's smallest batch (the rows are sorted by batch) */
      const int head = i == 0 || strcmp(c->scaling[i - 1].model, s->model) || strcmp(c->scaling[i - 1].arch, s->arch) ||
                       strcmp(c->scaling[i - 1].dtype, s->dtype);
      if (!head || shown >= 2 * max_lines) {
        skipped++;
        continue;
      }
      char k[96], lo[32], hi[32];
      rp_fmt_exponent(&s->fit, k, sizeof k);
      rp_fmt_context(s->lmin, lo, sizeof lo);
      rp_fmt_context(s->lmax, hi, sizeof hi);
      addf(&b, "  %-11s %s batch %d: k = %s over %s–%s (%d contexts)\n", s->arch, s->model, s->batch,
           s->have_fit ? k : "–", lo, hi, s->n);
      shown++;
    }
    if (skipped) addf(&b, "  (+%d more batch sizes in report.md)\n", skipped);
  }

  if (c->have_baseline) {
    int v[RP_NCMP][3] = {{0}};
    int changed = 0;
    for (int i = 0; i < c->n_base; i++) {
      for (int k = 0; k < RP_NCMP; k++)
        if (c->base[i].r[k].n) v[k][c->base[i].verdict[k] + 1]++;
      changed += c->base[i].status_change[0] != '\0';
    }
    addf(&b, "against the baseline (cells whose 95%% CI excludes 1):");
    for (int k = 0; k < RP_NCMP; k++)
      addf(&b, "%s %s %d faster, %d slower, %d unchanged", k ? " ·" : "", rp_cmp_names[k], v[k][2], v[k][0], v[k][1]);
    if (changed) addf(&b, " · %d status changes", changed);
    int kf = 0, ks = 0;
    for (int i = 0; i < c->n_bkern; i++) {
      kf += c->bkern[i].verdict > 0;
      ks += c->bkern[i].verdict < 0;
    }
    if (c->n_bkern) addf(&b, " · kernels %d faster, %d slower of %d", kf, ks, c->n_bkern);
    addf(&b, "\n");
  }
  if (!b.s) return strdup("");
  return b.s;
}
