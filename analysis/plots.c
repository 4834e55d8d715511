/* Plots: the data of each figure (built from the aggregates), written as a
 * self-contained gnuplot script (inline data blocks) and rendered by
 * gnuplot, run as a child process, into PNG (pngcairo, else png) and SVG.
 * Without gnuplot every plot is skipped with the reason; the scripts are
 * still written so the plots can be made later. SCANFLASH_GNUPLOT names
 * the gnuplot binary (default: gnuplot on PATH). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report.h"

/* ---- building the plots ---- */

static int multi_dtype(const rp_agg *a) {
  for (int i = 1; i < a->n_cells; i++)
    if (strcmp(a->cells[i].k.dtype, a->cells[0].k.dtype)) return 1;
  return 0;
}

/* A line's title inside a plot of one batch size: model [dtype] [gen]. */
static void group_title(const rp_agg *a, const rp_cell_key *k, int with_gen, char *buf, size_t n) {
  char g[32] = "";
  if (with_gen) {
    if (k->gen == SF_GEN_CANONICAL) snprintf(g, sizeof g, " gen canonical");
    else if (k->gen > 0) snprintf(g, sizeof g, " gen %d", k->gen);
  }
  snprintf(buf, n, "%s%s%s%s", k->model, multi_dtype(a) ? " " : "", multi_dtype(a) ? k->dtype : "", g);
}

enum { MAX_BATCH_PLOTS = 8 };

/* The batch sizes of the cells, ascending (at most MAX_BATCH_PLOTS; *more
 * set when there are others). */
static int batch_sizes(const rp_agg *a, int32_t *out, int *more) {
  int n = 0;
  *more = 0;
  for (int i = 0; i < a->n_cells; i++) {
    const int32_t b = a->cells[i].k.batch;
    int seen = 0, pos = n;
    for (int j = 0; j < n; j++) {
      seen |= out[j] == b;
      if (out[j] > b && pos == n) pos = j;
    }
    if (seen) continue;
    if (n == MAX_BATCH_PLOTS) {
      if (b < out[n - 1]) { /* keep the smallest */
        for (int j = n - 1; j > pos; j--) out[j] = out[j - 1];
        out[pos] = b;
      }
      *more = 1;
      continue;
    }
    for (int j = n; j > pos; j--) out[j] = out[j - 1];
    out[pos] = b;
    n++;
  }
  return n;
}

static void note_more_batches(rp_report *r, int more, const char *what) {
  if (more)
    rp_doc_para(&r->doc, "%s plots are drawn for the %d smallest batch sizes; the tables and CSVs have every one.", what,
                MAX_BATCH_PLOTS);
}

/* A run of cells with equal (arch, model, dtype, batch, gen): a line. */
static int group_end(const rp_agg *a, int i) {
  const rp_cell_key *k0 = &a->cells[i].k;
  int e = i + 1;
  while (e < a->n_cells) {
    const rp_cell_key *k = &a->cells[e].k;
    if (strcmp(k->arch, k0->arch) || strcmp(k->model, k0->model) || strcmp(k->dtype, k0->dtype) ||
        k->batch != k0->batch || k->gen != k0->gen)
      break;
    e++;
  }
  return e;
}

static int mark_style(int status) {
  switch (status) {
    case SF_STATUS_OOM: return RP_S_POINTS_OOM;
    case SF_STATUS_OOM_PREDICTED: return RP_S_POINTS_PRED;
    case SF_STATUS_OK: return -1;
    default: return RP_S_POINTS_FAIL;
  }
}

/* A metric of the cells against context, one line per group, with marks
 * for cells that have no ok item at the bottom of the plot (or at y_of_mark
 * when that gives a positive value: the memory estimate). */
static void cells_vs_context(rp_report *r, rp_plot *p, rp_metric m, double scale, int skip_prefill_only, int32_t batch,
                             double (*y_of_mark)(const rp_cell *)) {
  const rp_agg *a = r->agg;
  double ymin = INFINITY;
  for (int i = 0; i < a->n_cells; i++) {
    const rp_cell *c = &a->cells[i];
    if (c->k.context <= 0 || (skip_prefill_only && c->k.gen == 0) || c->k.batch != batch) continue;
    if (c->st[m].n && c->st[m].med > 0) ymin = fmin(ymin, (isfinite(c->st[m].lo) && c->st[m].lo > 0 ? c->st[m].lo : c->st[m].med) * scale);
  }
  const double ybottom = isfinite(ymin) ? ymin * 0.5 : 1;
  int color = 0;
  for (int i = 0; i < a->n_cells;) {
    const int e = group_end(a, i);
    const rp_cell_key *k0 = &a->cells[i].k;
    if ((skip_prefill_only && k0->gen == 0) || k0->batch != batch) {
      i = e;
      continue;
    }
    int any = 0;
    for (int j = i; j < e; j++) any |= a->cells[j].k.context > 0;
    if (!any) {
      i = e;
      continue;
    }
    color++;
    char title[160];
    group_title(a, k0, 1, title, sizeof title);
    rp_series *line = rp_plot_series(p, title, RP_S_LINE_ERR);
    if (line) line->color = color;
    rp_series *marks[3] = {0};
    for (int j = i; j < e; j++) {
      const rp_cell *c = &a->cells[j];
      if (c->k.context <= 0) continue;
      if (c->st[m].n && c->st[m].med > 0) {
        rp_series_add(line, (double)c->k.context, c->st[m].med * scale, c->st[m].lo * scale, c->st[m].hi * scale);
        continue;
      }
      int st = mark_style(rp_cell_main_status(c));
      if (st < 0) continue;
      rp_series **ms = &marks[st - RP_S_POINTS_OOM];
      if (!*ms && (*ms = rp_plot_series(p, "", st))) (*ms)->color = color;
      double y = y_of_mark ? y_of_mark(c) * scale : 0;
      rp_series_add(*ms, (double)c->k.context, y > 0 ? y : ybottom, NAN, NAN);
    }
    i = e;
  }
}

static void axis_ctx(rp_plot *p) {
  snprintf(p->xlabel, sizeof p->xlabel, "context (tokens per sequence)");
  p->logx = p->logy = 1;
  p->xctx = 1;
}

static int has_context_cells(const rp_agg *a, rp_metric m, int generate_only, int32_t batch) {
  for (int i = 0; i < a->n_cells; i++) {
    const rp_cell *c = &a->cells[i];
    if (c->k.context > 0 && c->k.batch == batch && (!generate_only || c->k.gen != 0) &&
        (c->st[m].n || !c->n_status[SF_STATUS_OK]))
      return 1;
  }
  return 0;
}

/* One plot per batch size of a metric of the cells against context. */
static void per_batch(rp_report *r, const char *stem, const char *title, const char *ylabel, rp_metric m, double scale,
                      int generate_only, double (*y_of_mark)(const rp_cell *)) {
  int32_t batches[MAX_BATCH_PLOTS];
  int more;
  const int nb = batch_sizes(r->agg, batches, &more);
  int made = 0;
  for (int i = 0; i < nb; i++) {
    if (!has_context_cells(r->agg, m, generate_only, batches[i])) continue;
    char name[64], t[240];
    snprintf(name, sizeof name, "%s_b%d", stem, batches[i]);
    snprintf(t, sizeof t, "%s, batch %d", title, batches[i]);
    rp_plot *p = rp_doc_plot(&r->doc, name, t);
    if (!p) return;
    axis_ctx(p);
    snprintf(p->ylabel, sizeof p->ylabel, "%s", ylabel);
    cells_vs_context(r, p, m, scale, generate_only, batches[i], y_of_mark);
    made++;
  }
  if (made) note_more_batches(r, more, title);
}

void rp_plots_throughput(rp_report *r, int k) {
  static const char *const titles[RP_NCMP] = {"Prefill throughput vs context", "Decode throughput vs context",
                                              "End-to-end throughput vs context"};
  char stem[64], ylabel[96];
  snprintf(stem, sizeof stem, "throughput_%s", rp_cmp_names[k]);
  snprintf(ylabel, sizeof ylabel, "%s throughput (tokens/s, median, 95%% CI)", rp_cmp_names[k]);
  per_batch(r, stem, titles[k], ylabel, rp_cmp_metric[k], 1, k != RP_CMP_PREFILL, NULL);
}

void rp_plots_speedup(rp_report *r, int k) {
  const rp_cmp *c = r->cmp;
  int32_t batches[MAX_BATCH_PLOTS];
  int more, made = 0;
  const int nb = batch_sizes(r->agg, batches, &more);
  for (int bi = 0; bi < nb; bi++) {
    int any = 0;
    for (int i = 0; i < c->n_speedups; i++)
      any |= c->speedups[i].r[k].n > 0 && c->speedups[i].context > 0 && c->speedups[i].batch == batches[bi];
    if (!any) continue;
    char name[64], title[200];
    snprintf(name, sizeof name, "speedup_%s_b%d", rp_cmp_names[k], batches[bi]);
    snprintf(title, sizeof title, "Mamba ÷ Transformer, %s throughput, batch %d (crossover where a line passes 1)",
             rp_cmp_names[k], batches[bi]);
    rp_plot *p = rp_doc_plot(&r->doc, name, title);
    if (!p) return;
    made++;
    axis_ctx(p);
    snprintf(p->ylabel, sizeof p->ylabel, "speedup (Mamba / Transformer, median, 95%% CI)");
    p->hline1 = 1;
    int color = 0;
    for (int i = 0; i < c->n_speedups;) {
      const rp_speedup *s0 = &c->speedups[i];
      int e = i + 1;
      while (e < c->n_speedups && c->speedups[e].pair == s0->pair && !strcmp(c->speedups[e].dtype, s0->dtype) &&
             c->speedups[e].batch == s0->batch && c->speedups[e].gen == s0->gen)
        e++;
      int n = 0;
      for (int j = i; j < e; j++) n += c->speedups[j].r[k].n > 0 && c->speedups[j].context > 0;
      if (n && s0->batch == batches[bi]) {
        const rp_pair *pr = &c->pairs[s0->pair];
        char t[200], g[32] = "";
        if (s0->gen > 0) snprintf(g, sizeof g, " gen %d", s0->gen);
        else if (s0->gen == SF_GEN_CANONICAL) snprintf(g, sizeof g, " gen canonical");
        snprintf(t, sizeof t, "%s / %s%s%s%s", pr->mamba_model, pr->tf_model, multi_dtype(r->agg) ? " " : "",
                 multi_dtype(r->agg) ? s0->dtype : "", g);
        rp_series *s = rp_plot_series(p, t, RP_S_LINE_ERR);
        if (s) s->color = ++color;
        for (int j = i; j < e; j++) {
          const rp_speedup *sp = &c->speedups[j];
          if (sp->r[k].n > 0 && sp->context > 0)
            rp_series_add(s, (double)sp->context, sp->r[k].med, sp->r[k].lo, sp->r[k].hi);
        }
        /* the crossover, on the line y = 1 */
        for (int x = 0; x < c->n_cross; x++) {
          const rp_crossover *cr = &c->cross[x];
          if (cr->pair == s0->pair && cr->metric == k && cr->batch == s0->batch && cr->gen == s0->gen &&
              !strcmp(cr->dtype, s0->dtype) && cr->found == 1) {
            rp_series *cs = rp_plot_series(p, "", RP_S_POINTS);
            if (cs) cs->color = color;
            rp_series_add(cs, cr->context, 1, NAN, NAN);
          }
        }
      }
      i = e;
    }
  }
  if (made) note_more_batches(r, more, "Speedup");
}

void rp_plot_scaling(rp_report *r) {
  const rp_cmp *c = r->cmp;
  if (!c->n_scaling) return;
  int32_t batches[MAX_BATCH_PLOTS];
  int more, made = 0;
  const int nb = batch_sizes(r->agg, batches, &more);
  for (int bi = 0; bi < nb; bi++) {
    int any = 0;
    for (int i = 0; i < c->n_scaling; i++) any |= c->scaling[i].batch == batches[bi];
    if (!any) continue;
    char name[64], title[200];
    snprintf(name, sizeof name, "prefill_scaling_b%d", batches[bi]);
    snprintf(title, sizeof title, "Prefill time vs context (log-log) with fitted exponents, batch %d", batches[bi]);
    rp_plot *p = rp_doc_plot(&r->doc, name, title);
    if (!p) return;
    made++;
    axis_ctx(p);
    snprintf(p->ylabel, sizeof p->ylabel, "prefill time / TTFT (ms, median over repeats and problems)");
    int color = 0;
    for (int i = 0; i < c->n_scaling; i++) {
      const rp_scaling *s = &c->scaling[i];
      if (s->batch != batches[bi]) continue;
      char t[200], k[64];
      if (s->have_fit) rp_fmt_exponent(&s->fit, k, sizeof k);
      else snprintf(k, sizeof k, "–");
      snprintf(t, sizeof t, "%s%s%s: k = %s", s->model, multi_dtype(r->agg) ? " " : "",
               multi_dtype(r->agg) ? s->dtype : "", k);
      rp_series *pts = rp_plot_series(p, t, RP_S_POINTS);
      if (pts) pts->color = ++color;
      for (int j = 0; j < s->n; j++) rp_series_add(pts, (double)s->ctx[j], s->t[j] * 1e3, NAN, NAN);
      if (s->have_fit) {
        rp_series *fit = rp_plot_series(p, "", RP_S_DASHED);
        if (fit) fit->color = color;
        for (int j = 0; j <= 16; j++) {
          double lx = log((double)s->lmin) + (log((double)s->lmax) - log((double)s->lmin)) * j / 16.0;
          rp_series_add(fit, exp(lx), exp(s->fit.c0 + s->fit.c1 * lx) * 1e3, NAN, NAN);
        }
      }
    }
  }
  if (made) note_more_batches(r, more, "Prefill scaling");
}

void rp_plot_decode(rp_report *r) {
  const rp_agg *a = r->agg;
  if (!a->n_curves) return;
  /* One plot per batch size, a line per model. */
  int32_t batches[MAX_BATCH_PLOTS];
  int more;
  const int nb = batch_sizes(a, batches, &more);
  note_more_batches(r, more, "Decode latency");
  for (int bi = 0; bi < nb; bi++) {
    char name[64], title[160];
    snprintf(name, sizeof name, "decode_latency_b%d", batches[bi]);
    snprintf(title, sizeof title, "Decode step latency vs position, batch %d (median per bin, p10–p90)", batches[bi]);
    rp_plot *p = rp_doc_plot(&r->doc, name, title);
    if (!p) return;
    snprintf(p->xlabel, sizeof p->xlabel, "position (tokens in the cache before the step)");
    snprintf(p->ylabel, sizeof p->ylabel, "step latency (ms)");
    p->logx = 1;
    p->logy = 1;
    p->xctx = 1;
    /* One line per model (and generation length): its cells' bins in
     * position order, so that the growth with position shows across
     * contexts. */
    int color = 0;
    rp_series *s = NULL;
    const rp_cell *prev = NULL;
    for (int i = 0; i < a->n_curves; i++) {
      const rp_decode_curve *cv = &a->curves[i];
      const rp_cell *c = &a->cells[cv->cell];
      if (c->k.batch != batches[bi]) continue;
      if (!prev || strcmp(prev->k.arch, c->k.arch) || strcmp(prev->k.model, c->k.model) ||
          strcmp(prev->k.dtype, c->k.dtype) || prev->k.gen != c->k.gen) {
        char t[200];
        group_title(a, &c->k, 1, t, sizeof t);
        s = rp_plot_series(p, t, RP_S_LINE_ERR);
        if (s) s->color = ++color;
      }
      prev = c;
      for (int b = 0; b < cv->n_bins; b++)
        rp_series_add(s, cv->bins[b].pos_mid, cv->bins[b].med * 1e3, cv->bins[b].p10 * 1e3, cv->bins[b].p90 * 1e3);
    }
  }
}

static double est_of(const rp_cell *c) { return c->est_bytes; }

void rp_plot_memory(rp_report *r) {
  per_batch(r, "memory", "Peak device memory vs context (OOM marks at the estimate)", "peak memory (GiB)", M_PEAK,
            1.0 / (1024.0 * 1024.0 * 1024.0), 0, est_of);
}

void rp_plot_maxbatch(rp_report *r) {
  const rp_cmp *c = r->cmp;
  int any = 0;
  for (int i = 0; i < c->n_maxb; i++) any |= c->maxb[i].largest_ok > 0 && c->maxb[i].context > 0;
  if (!any) return;
  rp_plot *p = rp_doc_plot(&r->doc, "max_batch", "Largest batch that fits vs context");
  if (!p) return;
  axis_ctx(p);
  snprintf(p->ylabel, sizeof p->ylabel, "largest batch that ran without OOM");
  int color = 0;
  for (int i = 0; i < c->n_maxb;) {
    int e = i + 1;
    while (e < c->n_maxb && !strcmp(c->maxb[e].arch, c->maxb[i].arch) && !strcmp(c->maxb[e].model, c->maxb[i].model) &&
           !strcmp(c->maxb[e].dtype, c->maxb[i].dtype) && c->maxb[e].gen == c->maxb[i].gen)
      e++;
    int n = 0;
    for (int j = i; j < e; j++) n += c->maxb[j].largest_ok > 0 && c->maxb[j].context > 0;
    if (n) {
      char t[160], g[32] = "";
      if (c->maxb[i].gen > 0) snprintf(g, sizeof g, " gen %d", c->maxb[i].gen);
      snprintf(t, sizeof t, "%s%s", c->maxb[i].model, g);
      rp_series *s = rp_plot_series(p, t, RP_S_LINE);
      if (s) s->color = ++color;
      for (int j = i; j < e; j++)
        if (c->maxb[j].largest_ok > 0 && c->maxb[j].context > 0)
          rp_series_add(s, (double)c->maxb[j].context, c->maxb[j].largest_ok, NAN, NAN);
    }
    i = e;
  }
}

void rp_plot_energy(rp_report *r) {
  if (!r->agg->have_energy) return;
  per_batch(r, "energy", "Energy per generated token vs context", "energy per token (J, median, 95% CI)", M_JTOK, 1, 1,
            NULL);
}

void rp_plot_kernels(rp_report *r) {
  const rp_agg *a = r->agg;
  if (!a->n_kernels) return;
  rp_plot *p = rp_doc_plot(&r->doc, "kernels", "Kernel time vs sequence length per op / implementation (Figure 8 left)");
  if (!p) return;
  snprintf(p->xlabel, sizeof p->xlabel, "sequence length (tokens)");
  snprintf(p->ylabel, sizeof p->ylabel, "time per call (ms, median, p10–p90)");
  p->logx = p->logy = 1;
  p->xctx = 1;
  int color = 0;
  for (int i = 0; i < a->n_kernels;) {
    const rp_kernel_row *k0 = &a->kernels[i];
    int e = i + 1;
    while (e < a->n_kernels) {
      const rp_kernel_row *k = &a->kernels[e];
      if (strcmp(k->op, k0->op) || strcmp(k->impl, k0->impl) || strcmp(k->dtype, k0->dtype) || k->batch != k0->batch ||
          k->heads != k0->heads || k->head_dim != k0->head_dim || k->d_state != k0->d_state || k->dim != k0->dim)
        break;
      e++;
    }
    /* Shapes of one op/impl differ: say which. */
    int shapes = 0;
    for (int j = 0; j < a->n_kernels; j++)
      shapes += !strcmp(a->kernels[j].op, k0->op) && !strcmp(a->kernels[j].impl, k0->impl) &&
                a->kernels[j].seqlen == k0->seqlen;
    char t[200];
    if (shapes > 1)
      snprintf(t, sizeof t, "%s / %s %s b%d h%d d%d dim%lld", k0->op, k0->impl, k0->dtype, k0->batch, k0->heads,
               k0->head_dim, (long long)k0->dim);
    else
      snprintf(t, sizeof t, "%s / %s", k0->op, k0->impl);
    rp_series *s = rp_plot_series(p, t, RP_S_LINE_ERR);
    if (s) s->color = ++color;
    for (int j = i; j < e; j++) {
      const rp_kernel_row *k = &a->kernels[j];
      if (k->median_s > 0 && k->seqlen > 0)
        rp_series_add(s, (double)k->seqlen, k->median_s * 1e3, k->p10_s * 1e3, k->p90_s * 1e3);
    }
    i = e;
  }
  /* Kernel items that did not finish (naive attention out of memory at
   * long sequences): marks at the bottom. */
  double ymin = INFINITY;
  for (int i = 0; i < a->n_kernels; i++)
    if (a->kernels[i].median_s > 0) ymin = fmin(ymin, a->kernels[i].median_s * 1e3);
  for (int i = 0; i < a->n_kernel_items_bad; i++) {
    const sf_results_item *it = r->set->items[a->kernel_items[i]].row;
    int st = mark_style(it->result.status);
    if (st < 0 || it->item.context <= 0 || !isfinite(ymin)) continue;
    rp_series *m = rp_plot_series(p, "", st);
    if (m) m->color = 9; /* grey: the item does not say which implementation */
    rp_series_add(m, (double)it->item.context, ymin * 0.5, NAN, NAN);
  }
}

/* ---- gnuplot ---- */

static void gp_quote(FILE *f, const char *s) {
  fputc('\'', f);
  for (; *s; s++) {
    if (*s == '\'') fputc('\'', f);
    if (*s == '\n') continue;
    fputc(*s, f);
  }
  fputc('\'', f);
}

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                                      "#e377c2", "#17becf", "#7f7f7f", "#bcbd22", "#393b79", "#ad494a"};
enum { N_PALETTE = sizeof palette / sizeof palette[0] };

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void ctx_label(double v, char *buf, size_t n) {
  int64_t L = (int64_t)llround(v);
  if (fabs(v - (double)L) > 1e-6 * fabs(v)) snprintf(buf, n, "%.3g", v);
  else rp_fmt_context(L, buf, n);
}

/* x tics at the data's x values when they are few (contexts), else auto. */
static void gp_xtics(FILE *f, const rp_plot *p) {
  int n = 0;
  for (int i = 0; i < p->n_series; i++) n += p->s[i].n;
  double *x = malloc((size_t)(n ? n : 1) * sizeof *x);
  if (!x) return;
  int m = 0;
  for (int i = 0; i < p->n_series; i++)
    for (int j = 0; j < p->s[i].n; j++)
      if (p->s[i].x[j] > 0 && p->s[i].style != RP_S_DASHED && (p->s[i].style != RP_S_POINTS || p->s[i].title[0]))
        x[m++] = p->s[i].x[j]; /* not fit lines or crossover points */
  qsort(x, (size_t)m, sizeof *x, cmp_d);
  int u = 0;
  for (int i = 0; i < m; i++)
    if (!u || x[i] != x[u - 1]) x[u++] = x[i];
  /* integral powers-of-two-ish contexts only, and not too many */
  int ok = u > 0 && u <= 14;
  for (int i = 0; i < u && ok; i++) ok = fabs(x[i] - llround(x[i])) < 1e-9;
  if (ok) {
    fprintf(f, "set xtics (");
    for (int i = 0; i < u; i++) {
      char lab[32];
      ctx_label(x[i], lab, sizeof lab);
      fprintf(f, "%s\"%s\" %.17g", i ? ", " : "", lab, x[i]);
    }
    fprintf(f, ")\n");
  } else if (u > 0) {
    /* many values: tics at powers of two over their range */
    const int e0 = (int)floor(log2(x[0])), e1 = (int)ceil(log2(x[u - 1]));
    const int step = e1 - e0 > 12 ? 2 : 1;
    fprintf(f, "set xtics (");
    int first = 1;
    for (int e = e0; e <= e1; e += step) {
      const double v = ldexp(1, e);
      if (v < x[0] / 1.5 || v > x[u - 1] * 1.5) continue;
      char lab[32];
      ctx_label(v, lab, sizeof lab);
      fprintf(f, "%s\"%s\" %.17g", first ? "" : ", ", lab, v);
      first = 0;
    }
    fprintf(f, ")\n");
    if (first) fprintf(f, "set xtics auto\n");
  }
  free(x);
}

/* "500", "2k", "1.5M", "0.02": a tic label. */
static void si_label(double v, char *buf, size_t n) {
  static const struct {
    double f;
    const char *s;
  } si[] = {{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}};
  for (size_t i = 0; i < sizeof si / sizeof si[0]; i++)
    if (v >= si[i].f) {
      snprintf(buf, n, "%g%s", v / si[i].f, si[i].s);
      return;
    }
  snprintf(buf, n, "%g", v);
}

/* Log y tics at 1-2-5 steps (finer for a short range, decades for a long
 * one) over the data: gnuplot labels only whole decades, which leaves a
 * plot spanning less than one without numbers. */
static void gp_log_ytics(FILE *f, const rp_plot *p) {
  double lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < p->n_series; i++)
    for (int j = 0; j < p->s[i].n; j++) {
      const double v[3] = {p->s[i].y[j], p->s[i].lo[j], p->s[i].hi[j]};
      for (int k = 0; k < 3; k++)
        if (v[k] > 0 && isfinite(v[k])) {
          lo = fmin(lo, v[k]);
          hi = fmax(hi, v[k]);
        }
    }
  if (!isfinite(lo)) return;
  lo /= 1.15;
  hi *= 1.15;
  const double span = log10(hi / lo);
  static const double fine[] = {1, 1.5, 2, 3, 5, 7}, mid[] = {1, 2, 5}, dec[] = {1};
  const double *steps = span <= 1 ? fine : span <= 2.5 ? mid : dec;
  const int ns = span <= 1 ? 6 : span <= 2.5 ? 3 : 1;
  fprintf(f, "set ytics (");
  int first = 1;
  for (int e = (int)floor(log10(lo)); e <= (int)ceil(log10(hi)); e++)
    for (int k = 0; k < ns; k++) {
      const double v = steps[k] * pow(10, e);
      if (v < lo || v > hi) continue;
      char lab[32];
      si_label(v, lab, sizeof lab);
      fprintf(f, "%s\"%s\" %.10g", first ? "" : ", ", lab, v);
      first = 0;
    }
  fprintf(f, ")\n");
  if (first) fprintf(f, "set ytics auto\n");
}

static void gp_num(FILE *f, double v, double fallback) {
  if (!isfinite(v)) v = fallback;
  if (isfinite(v)) fprintf(f, "%.9g", v);
  else fputs("NaN", f);
}

static int write_script(const rp_plot *p, const char *path, const char *png_term) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f, "# %s: written by scanflash-report; run `gnuplot %s.gp` in the plots folder\n", p->name, p->name);
  fprintf(f, "set encoding utf8\n");
  for (int i = 0; i < N_PALETTE; i++) fprintf(f, "set linetype %d lc rgb '%s' lw 2 pt 7 ps 0.8\n", i + 1, palette[i]);
  fprintf(f, "set linetype cycle %d\n", N_PALETTE);
  for (int i = 0; i < p->n_series; i++) {
    const rp_series *s = &p->s[i];
    fprintf(f, "$d%d << EOD\n", i);
    for (int j = 0; j < s->n; j++) {
      gp_num(f, s->x[j], NAN);
      fputc(' ', f);
      gp_num(f, s->y[j], NAN);
      fputc(' ', f);
      gp_num(f, s->lo[j], s->y[j]);
      fputc(' ', f);
      gp_num(f, s->hi[j], s->y[j]);
      fputc('\n', f);
    }
    fprintf(f, "EOD\n");
  }
  fprintf(f, "set title ");
  gp_quote(f, p->title);
  fprintf(f, "\nset xlabel ");
  gp_quote(f, p->xlabel);
  fprintf(f, "\nset ylabel ");
  gp_quote(f, p->ylabel);
  fprintf(f, "\nset grid xtics ytics mxtics mytics lc rgb '#dddddd' lw 1, lc rgb '#f0f0f0' lw 1\n");
  fprintf(f, "set key outside right top vertical Left reverse noenhanced samplen 2 spacing 1.1 font ',9'\n");
  /* the data's range (not whole decades) plus a margin */
  fprintf(f, "set bmargin 4\nset autoscale fix\nset offsets graph 0.03, graph 0.03, graph 0.06, graph 0.06\n");
  if (p->logx) fprintf(f, "set logscale x 2\n");
  if (p->logy) fprintf(f, "set logscale y 10\n");
  if (p->xctx) gp_xtics(f, p);
  if (p->logy) gp_log_ytics(f, p);
  else if (p->yformat[0]) fprintf(f, "set format y '%s'\n", p->yformat);
  if (p->hline1) fprintf(f, "set arrow from graph 0, first 1 to graph 1, first 1 nohead lc rgb '#555555' dt 2 lw 1.5\n");
  fprintf(f, "set terminal %s size %d,%d noenhanced font 'sans,11'\n", png_term, RP_PLOT_W, RP_PLOT_H);
  fprintf(f, "set output '%s.png'\n", p->name);
  int marks[3] = {0};
  fprintf(f, "plot ");
  int first = 1;
  for (int i = 0; i < p->n_series; i++) {
    const rp_series *s = &p->s[i];
    if (!s->n) continue;
    const int lt = s->color > 0 ? s->color : i + 1;
    fprintf(f, "%s\\\n  $d%d ", first ? "" : ", ", i);
    first = 0;
    switch (s->style) {
      case RP_S_LINE_ERR: fprintf(f, "using 1:2:3:4 with yerrorlines lt %d", lt); break;
      case RP_S_LINE: fprintf(f, "using 1:2 with linespoints lt %d", lt); break;
      case RP_S_DASHED: fprintf(f, "using 1:2 with lines lt %d dt 2 lw 1.5", lt); break;
      case RP_S_POINTS: fprintf(f, "using 1:2 with points lt %d pt 7 ps 1.2", lt); break;
      case RP_S_POINTS_OOM: fprintf(f, "using 1:2 with points lt %d pt 2 ps 1.8 lw 2", lt); marks[0] = 1; break;
      case RP_S_POINTS_PRED: fprintf(f, "using 1:2 with points lt %d pt 8 ps 1.8 lw 2", lt); marks[1] = 1; break;
      default: fprintf(f, "using 1:2 with points lt %d pt 3 ps 1.8 lw 2", lt); marks[2] = 1; break;
    }
    if (s->title[0]) {
      fprintf(f, " title ");
      gp_quote(f, s->title);
    } else {
      fprintf(f, " notitle");
    }
  }
  if (marks[0]) fprintf(f, ", \\\n  keyentry with points pt 2 ps 1.8 lw 2 lc rgb 'black' title 'OOM'");
  if (marks[1]) fprintf(f, ", \\\n  keyentry with points pt 8 ps 1.8 lw 2 lc rgb 'black' title 'OOM predicted (not run)'");
  if (marks[2]) fprintf(f, ", \\\n  keyentry with points pt 3 ps 1.8 lw 2 lc rgb 'black' title 'failed / timeout'");
  fprintf(f, "\n");
  fprintf(f, "set terminal svg size %d,%d noenhanced font 'sans,11' background '#ffffff'\n", RP_PLOT_W, RP_PLOT_H);
  fprintf(f, "set output '%s.svg'\nreplot\nunset output\n", p->name);
  return fclose(f) == 0 ? 0 : -1;
}

/* Runs gp with args in dir, stdin and stdout on /dev/null, stderr to log
 * (or /dev/null). Returns the exit status, 127 when it cannot be run, -1
 * when it died of a signal. */
static int run_gnuplot(const char *gp, const char *const *args, const char *dir, const char *log) {
  pid_t pid = fork();
  if (pid < 0) return 127;
  if (pid == 0) {
    /* the log first: its path may be relative to the caller's folder */
    int nul = open("/dev/null", O_RDWR);
    int lg = log ? open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644) : nul;
    if (dir && chdir(dir) != 0) _exit(127);
    if (nul >= 0) {
      dup2(nul, 0);
      dup2(nul, 1);
    }
    if (lg >= 0) dup2(lg, 2);
    char *argv[8];
    int n = 0;
    argv[n++] = (char *)gp;
    for (; args[n - 1] && n < 7; n++) argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    execvp(gp, argv);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return 127;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  return -1;
}

/* The first line of a gnuplot log that says what went wrong. */
static void log_reason(const char *log, char *buf, size_t n) {
  buf[0] = '\0';
  FILE *f = fopen(log, "r");
  if (!f) return;
  char line[512], last[512] = "";
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    const char *s = line;
    while (*s == ' ') s++;
    if (!*s || *s == '^') continue;
    snprintf(last, sizeof last, "%s", s);
    if (strstr(s, "error") || strstr(s, "line ")) break;
  }
  fclose(f);
  snprintf(buf, n, "%s", last);
}

static int nonempty(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

static int mkdir_p(const char *path) { return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1; }

int rp_render_plots(rp_doc *d, const char *dir) {
  if (!d->n_plots) return 0;
  char plots[4096], src[4200];
  snprintf(plots, sizeof plots, "%s/plots", dir);
  snprintf(src, sizeof src, "%s/gnuplot", plots);
  if (mkdir_p(plots) || mkdir_p(src)) {
    for (int i = 0; i < d->n_plots; i++)
      snprintf(d->plots[i]->skipped, sizeof d->plots[i]->skipped, "cannot create %.200s: %.80s", src, strerror(errno));
    rp_note("plots skipped: cannot create %s", src);
    return 0;
  }
  const char *env = getenv("SCANFLASH_GNUPLOT");
  const char *gp = env && *env ? env : "gnuplot";
  /* gnuplot runs in the plots folder: a relative path to it must not be */
  char gp_abs[PATH_MAX];
  if (strchr(gp, '/') && realpath(gp, gp_abs)) gp = gp_abs;
  const char *probe_cairo[] = {"-e", "set terminal pngcairo", NULL};
  const char *probe_png[] = {"-e", "set terminal png", NULL};
  const char *term = NULL;
  char why[300] = "";
  int rc = run_gnuplot(gp, probe_cairo, NULL, NULL);
  if (rc == 0) {
    term = "pngcairo";
  } else if (rc == 127) {
    if (env && *env) snprintf(why, sizeof why, "gnuplot not found (SCANFLASH_GNUPLOT=%.200s)", env);
    else snprintf(why, sizeof why, "gnuplot not found on PATH (install gnuplot-nox)");
  } else if (run_gnuplot(gp, probe_png, NULL, NULL) == 0) {
    term = "png";
  } else {
    snprintf(why, sizeof why, "%.200s has neither the pngcairo nor the png terminal", gp);
  }
  int rendered = 0;
  char names[1024] = "";
  size_t nl = 0;
  for (int i = 0; i < d->n_plots; i++) {
    rp_plot *p = d->plots[i];
    char script[4400], log[4400], png[4400], svg[4400], gpname[128];
    snprintf(script, sizeof script, "%s/%s.gp", src, p->name);
    snprintf(log, sizeof log, "%s/%s.log", src, p->name);
    snprintf(png, sizeof png, "%s/%s.png", plots, p->name);
    snprintf(svg, sizeof svg, "%s/%s.svg", plots, p->name);
    snprintf(gpname, sizeof gpname, "gnuplot/%s.gp", p->name);
    p->rendered = 0;
    if (write_script(p, script, term ? term : "pngcairo")) {
      snprintf(p->skipped, sizeof p->skipped, "cannot write %.250s", script);
    } else if (!term) {
      snprintf(p->skipped, sizeof p->skipped, "%s", why);
    } else {
      unlink(png);
      unlink(svg);
      const char *args[] = {gpname, NULL};
      int st = run_gnuplot(gp, args, plots, log);
      if (st == 0 && nonempty(png) && nonempty(svg)) {
        p->rendered = 1;
        p->skipped[0] = '\0';
        unlink(log);
        rendered++;
        continue;
      }
      char reason[300];
      log_reason(log, reason, sizeof reason);
      if (st < 0) snprintf(p->skipped, sizeof p->skipped, "gnuplot failed (killed by a signal)");
      else if (st == 0) snprintf(p->skipped, sizeof p->skipped, "gnuplot failed (no output)");
      else snprintf(p->skipped, sizeof p->skipped, "gnuplot failed (exit status %d%s%.200s)", st, reason[0] ? ": " : "",
                    reason);
      rp_note("plot %s: %s (script: %s)", p->name, p->skipped, script);
    }
    if (nl < sizeof names) nl += (size_t)snprintf(names + nl, sizeof names - nl, "%s%s", nl ? ", " : "", p->name);
  }
  if (!term) rp_note("plots skipped (%s): %s; their gnuplot scripts are in %s", why, names, src);
  return rendered;
}
