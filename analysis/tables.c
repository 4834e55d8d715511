/* Tables: one builder per table (each has a CSV view with raw numbers and
 * a display view for Markdown and HTML), and the CSV and Markdown writers. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

/* ---- shared columns ---- */

static const char *const CELL_CSV[] = {"arch",    "model",     "dtype",           "context",  "batch",
                                       "gen",     "n_items",   "n_ok",            "n_oom",    "n_oom_predicted",
                                       "n_error", "n_timeout", "n_skipped",       "n_interrupted", "status"};
enum { CELL_CSV_N = sizeof CELL_CSV / sizeof CELL_CSV[0] };
static const char *const CELL_DISP[] = {"arch", "model", "dtype", "context", "batch", "gen", "items"};
enum { CELL_DISP_N = sizeof CELL_DISP / sizeof CELL_DISP[0] };

static void csv_num(rp_table *t, int row, int col, double v) {
  if (isfinite(v)) rp_table_csv(t, row, col, "%.15g", v);
  else rp_table_csv(t, row, col, "%s", "");
}

static void csv_int(rp_table *t, int row, int col, long long v) { rp_table_csv(t, row, col, "%lld", v); }

/* "3 ok, 1 oom" */
static void status_summary(const rp_cell *c, char *buf, size_t n) {
  size_t len = 0;
  buf[0] = '\0';
  for (int s = 0; s < RP_NSTATUS && len < n; s++)
    if (c->n_status[s])
      len += (size_t)snprintf(buf + len, n - len, "%s%lld %s", len ? ", " : "", (long long)c->n_status[s],
                              rp_status_name(s));
}

/* What a metric cell shows when the cell has no ok item. */
static const char *status_mark(int s) {
  switch (s) {
    case SF_STATUS_OOM: return "OOM";
    case SF_STATUS_OOM_PREDICTED: return "OOM (predicted)";
    case SF_STATUS_ERROR: return "FAILED";
    case SF_STATUS_TIMEOUT: return "TIMEOUT";
    case SF_STATUS_SKIPPED: return "SKIPPED";
    case SF_STATUS_INTERRUPTED: return "INTERRUPTED";
    default: return "–";
  }
}

/* A cell's key in the CSV columns 0-5: arch, model, dtype, context, batch, gen. */
static void key_csv(rp_table *t, int row, const rp_cell_key *k) {
  rp_table_csv(t, row, 0, "%s", k->arch);
  rp_table_csv(t, row, 1, "%s", k->model);
  rp_table_csv(t, row, 2, "%s", k->dtype);
  csv_int(t, row, 3, k->context);
  csv_int(t, row, 4, k->batch);
  csv_int(t, row, 5, k->gen);
}

/* The key without its dtype in display columns 0-4: arch, model, context,
 * batch, gen (tables that leave the dtype to their CSV). */
static void key_disp_short(rp_table *t, int row, const rp_cell_key *k) {
  char buf[64];
  rp_table_disp(t, row, 0, "%s", k->arch);
  rp_table_disp(t, row, 1, "%s", k->model);
  rp_fmt_context(k->context, buf, sizeof buf);
  rp_table_disp(t, row, 2, "%s", buf);
  rp_table_disp(t, row, 3, "%d", k->batch);
  rp_fmt_gen(k->gen, buf, sizeof buf);
  rp_table_disp(t, row, 4, "%s", buf);
}

static void cell_cols(rp_table *t, int row, const rp_cell *c) {
  key_csv(t, row, &c->k);
  csv_int(t, row, 6, c->n_items);
  static const int order[] = {SF_STATUS_OK,      SF_STATUS_OOM,     SF_STATUS_OOM_PREDICTED, SF_STATUS_ERROR,
                              SF_STATUS_TIMEOUT, SF_STATUS_SKIPPED, SF_STATUS_INTERRUPTED};
  for (int i = 0; i < 7; i++) csv_int(t, row, 7 + i, c->n_status[order[i]]);
  rp_table_csv(t, row, 14, "%s", rp_status_name(rp_cell_main_status(c)));
  char buf[256];
  rp_table_disp(t, row, 0, "%s", c->k.arch);
  rp_table_disp(t, row, 1, "%s", c->k.model);
  rp_table_disp(t, row, 2, "%s", c->k.dtype);
  rp_fmt_context(c->k.context, buf, sizeof buf);
  rp_table_disp(t, row, 3, "%s", buf);
  rp_table_disp(t, row, 4, "%d", c->k.batch);
  rp_fmt_gen(c->k.gen, buf, sizeof buf);
  rp_table_disp(t, row, 5, "%s", buf);
  status_summary(c, buf, sizeof buf);
  rp_table_disp(t, row, 6, "%s", buf);
}

static void stat_csv(rp_table *t, int row, int col, const rp_stat *s) {
  csv_num(t, row, col, s->med);
  csv_num(t, row, col + 1, s->lo);
  csv_num(t, row, col + 2, s->hi);
  csv_int(t, row, col + 3, s->n);
}

static void metric_disp(rp_table *t, int row, int col, const rp_cell *c, rp_metric m) {
  char buf[160];
  if (!c->n_status[SF_STATUS_OK]) {
    rp_table_disp(t, row, col, "%s", status_mark(rp_cell_main_status(c)));
    return;
  }
  rp_fmt_stat(&c->st[m], rp_metrics[m].unit, buf, sizeof buf);
  rp_table_disp(t, row, col, "%s", buf);
}

/* A table over every cell with the metrics given. */
static rp_table *cell_table(rp_report *r, const char *name, const char *title, const rp_metric *ms, int nm,
                            int (*want)(const rp_cell *)) {
  rp_table *t = rp_doc_table(&r->doc, name, title);
  if (!t) return NULL;
  const char *csvh[CELL_CSV_N + 4 * M_COUNT], *disph[CELL_DISP_N + M_COUNT];
  char names[4 * M_COUNT][64], dn[M_COUNT][96];
  int nc = 0, nd = 0;
  for (int i = 0; i < CELL_CSV_N; i++) csvh[nc++] = CELL_CSV[i];
  for (int i = 0; i < CELL_DISP_N; i++) disph[nd++] = CELL_DISP[i];
  for (int i = 0; i < nm; i++) {
    static const char *const suf[4] = {"median", "lo", "hi", "n"};
    for (int j = 0; j < 4; j++) {
      snprintf(names[4 * i + j], sizeof names[0], "%s_%s", rp_metrics[ms[i]].name, suf[j]);
      csvh[nc++] = names[4 * i + j];
    }
    snprintf(dn[i], sizeof dn[0], "%s", rp_metrics[ms[i]].label);
    disph[nd++] = dn[i];
  }
  rp_table_csv_head(t, csvh, nc);
  rp_table_disp_head(t, disph, nd);
  for (int i = 0; i < r->agg->n_cells; i++) {
    const rp_cell *c = &r->agg->cells[i];
    if (want && !want(c)) continue;
    int row = rp_table_row(t);
    if (row < 0) break;
    cell_cols(t, row, c);
    for (int k = 0; k < nm; k++) {
      stat_csv(t, row, CELL_CSV_N + 4 * k, &c->st[ms[k]]);
      metric_disp(t, row, CELL_DISP_N + k, c, ms[k]);
    }
  }
  return t;
}

static int is_generate_cell(const rp_cell *c) { return c->k.gen != 0; }

void rp_table_throughput(rp_report *r) {
  static const rp_metric ms[] = {M_TTFT, M_PREFILL_TPS, M_DECODE_TPS, M_E2E_TPS};
  cell_table(r, "throughput", "Throughput and time to first token per cell (median [95% CI])", ms, 4, NULL);
}

void rp_table_latency(rp_report *r) {
  static const rp_metric ms[] = {M_TPOT50, M_TPOT90, M_TPOT99};
  cell_table(r, "latency", "Per-token decode latency (TPOT) percentiles (median over repeats [95% CI])", ms, 3,
             is_generate_cell);
}

void rp_table_memory(rp_report *r) {
  static const rp_metric ms[] = {M_PEAK, M_CACHE, M_KV, M_STATE, M_WEIGHTS};
  rp_table *t = cell_table(r, "memory", "Memory per cell (peak device memory, cache, weights)", ms, 5, NULL);
  if (!t) return;
  /* The estimate, for OOM cells: add it as a last column. */
  const int cc = t->csv_cols, dc = t->disp_cols;
  char **nh = realloc(t->csv_head, (size_t)(cc + 1) * sizeof *nh);
  char **nd = nh ? realloc(t->disp_head, (size_t)(dc + 1) * sizeof *nd) : NULL;
  if (nh) t->csv_head = nh;
  if (!nh || !nd) return;
  t->disp_head = nd;
  nh[cc] = strdup("est_bytes_max");
  nd[dc] = strdup("estimate");
  int row = 0;
  for (int i = 0; i < r->agg->n_cells && row < t->n_rows; i++, row++) {
    char **cr = realloc(t->csv_rows[row], (size_t)(cc + 1) * sizeof *cr);
    if (cr) t->csv_rows[row] = cr;
    char **dr = realloc(t->disp_rows[row], (size_t)(dc + 1) * sizeof *dr);
    if (dr) t->disp_rows[row] = dr;
    if (!cr || !dr) return;
    cr[cc] = dr[dc] = NULL;
  }
  t->csv_cols = cc + 1;
  t->disp_cols = dc + 1;
  for (int i = 0; i < r->agg->n_cells && i < t->n_rows; i++) {
    const rp_cell *c = &r->agg->cells[i];
    char buf[64];
    csv_num(t, i, cc, c->est_bytes > 0 ? c->est_bytes : NAN);
    rp_fmt_value(c->est_bytes > 0 ? c->est_bytes : NAN, "B", buf, sizeof buf);
    rp_table_disp(t, i, dc, "%s", buf);
  }
}

void rp_table_energy(rp_report *r) {
  static const rp_metric ms[] = {M_JTOK};
  cell_table(r, "energy", "Energy per generated token (NVML)", ms, 1, NULL);
}

void rp_table_failures(rp_report *r) {
  rp_table *t = rp_doc_table(&r->doc, "failures", "Items that are not ok (every one)");
  if (!t) return;
  static const char *const ch[] = {"key", "kind", "arch",   "model",   "dtype", "context",   "batch",
                                   "gen", "op",   "status", "message", "file",  "est_bytes"};
  static const char *const dh[] = {"key", "arch", "model", "context", "batch", "gen", "status", "message"};
  rp_table_csv_head(t, ch, 13);
  rp_table_disp_head(t, dh, 8);
  t->disp_limit = 200;
  for (int64_t i = 0; i < r->set->n_items; i++) {
    const rp_item *it = &r->set->items[i];
    const sf_results_item *x = it->row;
    if (x->result.status == SF_STATUS_OK) continue;
    int row = rp_table_row(t);
    if (row < 0) return;
    rp_table_csv(t, row, 0, "%s", x->item.key);
    rp_table_csv(t, row, 1, "%s", sf_item_kind_name((sf_item_kind)x->item.kind));
    rp_table_csv(t, row, 2, "%s", x->item.arch);
    rp_table_csv(t, row, 3, "%s", x->item.model);
    rp_table_csv(t, row, 4, "%s", x->item.dtype);
    csv_int(t, row, 5, x->item.context);
    csv_int(t, row, 6, x->item.batch);
    csv_int(t, row, 7, x->item.gen);
    rp_table_csv(t, row, 8, "%s", x->item.op);
    rp_table_csv(t, row, 9, "%s", rp_status_name(x->result.status));
    rp_table_csv(t, row, 10, "%s", x->result.message);
    rp_table_csv(t, row, 11, "%s", r->set->files[it->file].path);
    csv_int(t, row, 12, x->result.est_bytes > 0 ? x->result.est_bytes : x->item.est_bytes);
    char buf[64];
    rp_table_disp(t, row, 0, "%s", x->item.key);
    rp_table_disp(t, row, 1, "%s", x->item.kind == SF_ITEM_KERNELS ? "kernels" : x->item.arch);
    rp_table_disp(t, row, 2, "%s", x->item.kind == SF_ITEM_KERNELS ? x->item.op : x->item.model);
    rp_fmt_context(x->item.context, buf, sizeof buf);
    rp_table_disp(t, row, 3, "%s", buf);
    rp_table_disp(t, row, 4, "%d", x->item.batch);
    rp_fmt_gen(x->item.gen, buf, sizeof buf);
    rp_table_disp(t, row, 5, "%s", x->item.kind == SF_ITEM_KERNELS ? "–" : buf);
    rp_table_disp(t, row, 6, "%s", status_mark(x->result.status));
    rp_table_disp(t, row, 7, "%s", x->result.message);
  }
}

static const rp_pair *pair_of(const rp_report *r, int p) { return &r->cmp->pairs[p]; }

void rp_table_speedup(rp_report *r) {
  rp_table *t = rp_doc_table(&r->doc, "speedup", "Mamba ÷ Transformer throughput (median [95% CI]; > 1: Mamba faster)");
  if (!t) return;
  const char *ch[9 + 4 * RP_NCMP];
  char names[4 * RP_NCMP][48];
  static const char *const base[] = {"mamba_arch", "mamba_model",  "transformer_model",  "dtype", "context",
                                     "batch",      "gen",          "mamba_status", "transformer_status"};
  int nc = 0;
  for (int i = 0; i < 9; i++) ch[nc++] = base[i];
  for (int k = 0; k < RP_NCMP; k++) {
    static const char *const suf[4] = {"ratio", "lo", "hi", "n"};
    for (int j = 0; j < 4; j++) {
      snprintf(names[4 * k + j], sizeof names[0], "%s_%s", rp_cmp_names[k], suf[j]);
      ch[nc++] = names[4 * k + j];
    }
  }
  static const char *const dh[] = {"Mamba", "Transformer", "dtype", "context", "batch", "gen",
                                   "prefill", "decode", "end-to-end"};
  rp_table_csv_head(t, ch, nc);
  rp_table_disp_head(t, dh, 9);
  for (int i = 0; i < r->cmp->n_speedups; i++) {
    const rp_speedup *s = &r->cmp->speedups[i];
    const rp_pair *p = pair_of(r, s->pair);
    const rp_cell *mc = &r->agg->cells[s->mcell], *tc = &r->agg->cells[s->tcell];
    int row = rp_table_row(t);
    if (row < 0) return;
    rp_table_csv(t, row, 0, "%s", p->mamba_arch);
    rp_table_csv(t, row, 1, "%s", p->mamba_model);
    rp_table_csv(t, row, 2, "%s", p->tf_model);
    rp_table_csv(t, row, 3, "%s", s->dtype);
    csv_int(t, row, 4, s->context);
    csv_int(t, row, 5, s->batch);
    csv_int(t, row, 6, s->gen);
    rp_table_csv(t, row, 7, "%s", rp_status_name(rp_cell_main_status(mc)));
    rp_table_csv(t, row, 8, "%s", rp_status_name(rp_cell_main_status(tc)));
    char buf[160];
    rp_table_disp(t, row, 0, "%s %s", p->mamba_arch, p->mamba_model);
    rp_table_disp(t, row, 1, "%s", p->tf_model);
    rp_table_disp(t, row, 2, "%s", s->dtype);
    rp_fmt_context(s->context, buf, sizeof buf);
    rp_table_disp(t, row, 3, "%s", buf);
    rp_table_disp(t, row, 4, "%d", s->batch);
    rp_fmt_gen(s->gen, buf, sizeof buf);
    rp_table_disp(t, row, 5, "%s", buf);
    for (int k = 0; k < RP_NCMP; k++) {
      stat_csv(t, row, 9 + 4 * k, &s->r[k]);
      if (s->r[k].n) {
        rp_fmt_stat(&s->r[k], "x", buf, sizeof buf);
      } else if (s->gen == 0 && k != RP_CMP_PREFILL) {
        snprintf(buf, sizeof buf, "–");
      } else {
        int ms = rp_cell_main_status(mc), ts = rp_cell_main_status(tc);
        if (ms != SF_STATUS_OK && ts != SF_STATUS_OK)
          snprintf(buf, sizeof buf, "both %s", status_mark(ms));
        else if (ms != SF_STATUS_OK)
          snprintf(buf, sizeof buf, "Mamba %s", status_mark(ms));
        else if (ts != SF_STATUS_OK)
          snprintf(buf, sizeof buf, "Transformer %s", status_mark(ts));
        else
          snprintf(buf, sizeof buf, "–");
      }
      rp_table_disp(t, row, 6 + k, "%s", buf);
    }
  }
}

/* "6.2k", "≤ 2k (Mamba ahead throughout)", "none in range" */
void rp_fmt_crossover(const rp_crossover *x, char *buf, size_t n) {
  char a[32], b[32];
  if (x->n_points == 0) {
    snprintf(buf, n, "no common context");
    return;
  }
  rp_fmt_context(x->lmin, a, sizeof a);
  rp_fmt_context(x->lmax, b, sizeof b);
  if (x->found == 1) {
    char c[32];
    double L = x->context;
    if (L >= 1048576) snprintf(c, sizeof c, "%.3gM", L / 1048576);
    else if (L >= 1024) snprintf(c, sizeof c, "%.3gk", L / 1024);
    else snprintf(c, sizeof c, "%.0f", L);
    snprintf(buf, n, "%s%s", c, x->multiple ? " (crosses again later)" : "");
  } else if (x->found == 2) {
    if (x->n_points == 1) snprintf(buf, n, "Mamba ahead at %s (the only context)", a);
    else snprintf(buf, n, "Mamba ahead from %s (the smallest)%s", a, x->multiple ? ", falls behind later" : "");
  } else {
    char range[80], o[32];
    if (x->lmin == x->lmax) snprintf(range, sizeof range, "at %s, the only common context", a);
    else snprintf(range, sizeof range, "in range %s–%s", a, b);
    if (x->tf_oom_from) {
      rp_fmt_context(x->tf_oom_from, o, sizeof o);
      snprintf(buf, n, "none %s (Transformer OOM from %s)", range, o);
    } else {
      snprintf(buf, n, "none %s", range);
    }
  }
}

void rp_table_crossover(rp_report *r) {
  rp_table *t = rp_doc_table(&r->doc, "crossover",
                             "Crossover context: where Mamba's throughput overtakes the Transformer's (interpolated in "
                             "log-context between measured points)");
  if (!t) return;
  static const char *const ch[] = {"mamba_arch",        "mamba_model",       "transformer_model", "dtype",
                                   "batch",             "gen",               "metric",            "result",
                                   "crossover_context", "n_contexts",        "context_min",       "context_max",
                                   "ratio_at_max",      "transformer_oom_from", "multiple_crossings"};
  static const char *const dh[] = {"Mamba", "Transformer", "dtype", "batch", "gen", "metric", "crossover",
                                   "ratio at largest"};
  rp_table_csv_head(t, ch, 15);
  rp_table_disp_head(t, dh, 8);
  for (int i = 0; i < r->cmp->n_cross; i++) {
    const rp_crossover *x = &r->cmp->cross[i];
    const rp_pair *p = pair_of(r, x->pair);
    int row = rp_table_row(t);
    if (row < 0) return;
    rp_table_csv(t, row, 0, "%s", p->mamba_arch);
    rp_table_csv(t, row, 1, "%s", p->mamba_model);
    rp_table_csv(t, row, 2, "%s", p->tf_model);
    rp_table_csv(t, row, 3, "%s", x->dtype);
    csv_int(t, row, 4, x->batch);
    csv_int(t, row, 5, x->gen);
    rp_table_csv(t, row, 6, "%s", rp_cmp_names[x->metric]);
    rp_table_csv(t, row, 7, "%s",
                 x->n_points == 0 ? "no_common_context" : x->found == 1 ? "crossed" : x->found == 2 ? "mamba_ahead_throughout_from_min" : "none_in_range");
    csv_num(t, row, 8, x->found == 1 ? x->context : NAN);
    csv_int(t, row, 9, x->n_points);
    csv_int(t, row, 10, x->lmin);
    csv_int(t, row, 11, x->lmax);
    csv_num(t, row, 12, x->last_ratio);
    csv_int(t, row, 13, x->tf_oom_from);
    csv_int(t, row, 14, x->multiple);
    char buf[200];
    rp_table_disp(t, row, 0, "%s %s", p->mamba_arch, p->mamba_model);
    rp_table_disp(t, row, 1, "%s", p->tf_model);
    rp_table_disp(t, row, 2, "%s", x->dtype);
    rp_table_disp(t, row, 3, "%d", x->batch);
    rp_fmt_gen(x->gen, buf, sizeof buf);
    rp_table_disp(t, row, 4, "%s", buf);
    rp_table_disp(t, row, 5, "%s", rp_cmp_names[x->metric]);
    rp_fmt_crossover(x, buf, sizeof buf);
    rp_table_disp(t, row, 6, "%s", buf);
    rp_fmt_value(x->last_ratio, "x", buf, sizeof buf);
    char c[32];
    rp_fmt_context(x->lmax, c, sizeof c);
    if (isfinite(x->last_ratio)) rp_table_disp(t, row, 7, "%s at %s", buf, c);
    else rp_table_disp(t, row, 7, "–");
  }
}

void rp_fmt_exponent(const rp_fit *f, char *buf, size_t n) {
  if (isfinite(f->c1_lo)) snprintf(buf, n, "%.2f [%.2f, %.2f]", f->c1, f->c1_lo, f->c1_hi);
  else if (isfinite(f->c1)) snprintf(buf, n, "%.2f (2 points: no interval)", f->c1);
  else snprintf(buf, n, "–");
}

void rp_table_scaling(rp_report *r) {
  rp_table *t = rp_doc_table(&r->doc, "scaling",
                             "Prefill time vs context: exponent k of time ∝ context^k (log-log least squares, 95% CI)");
  if (!t) return;
  static const char *const ch[] = {"arch",        "model",      "dtype",    "batch",    "n_contexts", "context_min",
                                   "context_max", "exponent",   "exponent_lo", "exponent_hi", "r2",  "upper_n",
                                   "upper_exponent", "upper_exponent_lo", "upper_exponent_hi"};
  static const char *const dh[] = {"arch", "model", "dtype", "batch", "contexts", "k (all contexts)", "R²",
                                   "k (upper half)"};
  rp_table_csv_head(t, ch, 15);
  rp_table_disp_head(t, dh, 8);
  for (int i = 0; i < r->cmp->n_scaling; i++) {
    const rp_scaling *s = &r->cmp->scaling[i];
    int row = rp_table_row(t);
    if (row < 0) return;
    rp_table_csv(t, row, 0, "%s", s->arch);
    rp_table_csv(t, row, 1, "%s", s->model);
    rp_table_csv(t, row, 2, "%s", s->dtype);
    csv_int(t, row, 3, s->batch);
    csv_int(t, row, 4, s->n);
    csv_int(t, row, 5, s->lmin);
    csv_int(t, row, 6, s->lmax);
    csv_num(t, row, 7, s->have_fit ? s->fit.c1 : NAN);
    csv_num(t, row, 8, s->have_fit ? s->fit.c1_lo : NAN);
    csv_num(t, row, 9, s->have_fit ? s->fit.c1_hi : NAN);
    csv_num(t, row, 10, s->have_fit ? s->fit.r2 : NAN);
    csv_int(t, row, 11, s->have_upper ? s->upper.n : 0);
    csv_num(t, row, 12, s->have_upper ? s->upper.c1 : NAN);
    csv_num(t, row, 13, s->have_upper ? s->upper.c1_lo : NAN);
    csv_num(t, row, 14, s->have_upper ? s->upper.c1_hi : NAN);
    char buf[128], a[32], b[32];
    rp_table_disp(t, row, 0, "%s", s->arch);
    rp_table_disp(t, row, 1, "%s", s->model);
    rp_table_disp(t, row, 2, "%s", s->dtype);
    rp_table_disp(t, row, 3, "%d", s->batch);
    rp_fmt_context(s->lmin, a, sizeof a);
    rp_fmt_context(s->lmax, b, sizeof b);
    rp_table_disp(t, row, 4, "%d (%s–%s)", s->n, a, b);
    if (s->have_fit) rp_fmt_exponent(&s->fit, buf, sizeof buf);
    else snprintf(buf, sizeof buf, "–");
    rp_table_disp(t, row, 5, "%s", buf);
    if (s->have_fit) rp_table_disp(t, row, 6, "%.3f", s->fit.r2);
    else rp_table_disp(t, row, 6, "–");
    if (s->have_upper) {
      rp_fmt_exponent(&s->upper, buf, sizeof buf);
      rp_fmt_context(s->ctx[s->n - s->upper.n], a, sizeof a);
      rp_table_disp(t, row, 7, "%s from %s", buf, a);
    } else {
      rp_table_disp(t, row, 7, "–");
    }
  }
}

void rp_table_maxbatch(rp_report *r) {
  rp_table *t = rp_doc_table(&r->doc, "max_batch", "Largest batch that fits, per context (ok vs OOM)");
  if (!t) return;
  static const char *const ch[] = {"arch",  "model", "dtype", "context", "gen", "largest_ok_batch",
                                   "smallest_oom_batch", "smallest_oom_predicted", "tried"};
  static const char *const dh[] = {"arch", "model", "dtype", "context", "gen", "largest that fits", "smallest OOM",
                                   "batches tried"};
  rp_table_csv_head(t, ch, 9);
  rp_table_disp_head(t, dh, 8);
  for (int i = 0; i < r->cmp->n_maxb; i++) {
    const rp_maxbatch *m = &r->cmp->maxb[i];
    int row = rp_table_row(t);
    if (row < 0) return;
    rp_table_csv(t, row, 0, "%s", m->arch);
    rp_table_csv(t, row, 1, "%s", m->model);
    rp_table_csv(t, row, 2, "%s", m->dtype);
    csv_int(t, row, 3, m->context);
    csv_int(t, row, 4, m->gen);
    csv_int(t, row, 5, m->largest_ok);
    csv_int(t, row, 6, m->smallest_oom);
    csv_int(t, row, 7, m->smallest_oom ? m->oom_predicted : 0);
    rp_table_csv(t, row, 8, "%s", m->tried);
    char buf[64];
    rp_table_disp(t, row, 0, "%s", m->arch);
    rp_table_disp(t, row, 1, "%s", m->model);
    rp_table_disp(t, row, 2, "%s", m->dtype);
    rp_fmt_context(m->context, buf, sizeof buf);
    rp_table_disp(t, row, 3, "%s", buf);
    rp_fmt_gen(m->gen, buf, sizeof buf);
    rp_table_disp(t, row, 4, "%s", buf);
    if (m->largest_ok) rp_table_disp(t, row, 5, "%d", m->largest_ok);
    else rp_table_disp(t, row, 5, "none");
    if (m->smallest_oom) rp_table_disp(t, row, 6, "%d%s", m->smallest_oom, m->oom_predicted ? " (predicted)" : "");
    else rp_table_disp(t, row, 6, "–");
    rp_table_disp(t, row, 7, "%s", m->tried);
  }
}

void rp_table_decode(rp_report *r) {
  /* Summary per cell (displayed) and every bin (CSV only). */
  rp_table *t = rp_doc_table(&r->doc, "decode_latency_summary",
                             "Decode step latency vs position: first and last position bins per cell");
  if (t) {
    static const char *const ch[] = {"arch", "model", "dtype", "context", "batch", "gen", "position_first",
                                     "position_last", "latency_first_s", "latency_last_s", "growth", "bins"};
    static const char *const dh[] = {"arch",          "model",         "context", "batch", "gen",
                                     "positions",     "latency first", "latency last", "growth"};
    rp_table_csv_head(t, ch, 12);
    rp_table_disp_head(t, dh, 9);
    for (int i = 0; i < r->agg->n_curves; i++) {
      const rp_decode_curve *cv = &r->agg->curves[i];
      const rp_cell *c = &r->agg->cells[cv->cell];
      const rp_bin *b0 = &cv->bins[0], *b1 = &cv->bins[cv->n_bins - 1];
      int row = rp_table_row(t);
      if (row < 0) break;
      key_csv(t, row, &c->k);
      csv_num(t, row, 6, b0->pos_mid);
      csv_num(t, row, 7, b1->pos_mid);
      csv_num(t, row, 8, b0->med);
      csv_num(t, row, 9, b1->med);
      csv_num(t, row, 10, b0->med > 0 ? b1->med / b0->med : NAN);
      csv_int(t, row, 11, cv->n_bins);
      char a[32];
      key_disp_short(t, row, &c->k);
      rp_table_disp(t, row, 5, "%lld–%lld", (long long)b0->pos_lo, (long long)b1->pos_hi);
      rp_fmt_value(b0->med, "s", a, sizeof a);
      rp_table_disp(t, row, 6, "%s", a);
      rp_fmt_value(b1->med, "s", a, sizeof a);
      rp_table_disp(t, row, 7, "%s", a);
      rp_fmt_value(b0->med > 0 ? b1->med / b0->med : NAN, "x", a, sizeof a);
      rp_table_disp(t, row, 8, "%s", a);
    }
  }
  t = rp_doc_table(&r->doc, "decode_latency", "Decode step latency per position bin (CSV only)");
  if (!t) return;
  static const char *const ch[] = {"arch",         "model",        "dtype", "context",          "batch",
                                   "gen",          "bin",          "position_lo", "position_hi", "position_mid",
                                   "n_steps",      "latency_median_s", "latency_p10_s", "latency_p90_s"};
  rp_table_csv_head(t, ch, 14);
  for (int i = 0; i < r->agg->n_curves; i++) {
    const rp_decode_curve *cv = &r->agg->curves[i];
    const rp_cell *c = &r->agg->cells[cv->cell];
    for (int b = 0; b < cv->n_bins; b++) {
      const rp_bin *bin = &cv->bins[b];
      int row = rp_table_row(t);
      if (row < 0) return;
      key_csv(t, row, &c->k);
      csv_int(t, row, 6, b);
      csv_int(t, row, 7, bin->pos_lo);
      csv_int(t, row, 8, bin->pos_hi);
      csv_num(t, row, 9, bin->pos_mid);
      csv_int(t, row, 10, bin->n);
      csv_num(t, row, 11, bin->med);
      csv_num(t, row, 12, bin->p10);
      csv_num(t, row, 13, bin->p90);
    }
  }
}

void rp_table_kernels(rp_report *r) {
  rp_table *t = rp_doc_table(&r->doc, "kernels", "Kernel benchmarks (time per call; Figure 8 left)");
  if (!t) return;
  static const char *const ch[] = {"op",     "impl",  "dtype",  "batch",    "heads",  "head_dim", "d_state",
                                   "dim",    "seqlen", "n_rows", "median_s", "p10_s",  "p90_s",    "tflops",
                                   "gbps",   "pct_flops_roof", "pct_bw_roof", "n_wrong", "max_rel_err"};
  static const char *const dh[] = {"op", "impl", "dtype", "shape", "seqlen", "time [p10, p90]", "TFLOP/s", "GB/s",
                                   "% roof (flops / bw)", "wrong", "max rel err"};
  rp_table_csv_head(t, ch, 19);
  rp_table_disp_head(t, dh, 11);
  for (int i = 0; i < r->agg->n_kernels; i++) {
    const rp_kernel_row *k = &r->agg->kernels[i];
    int row = rp_table_row(t);
    if (row < 0) return;
    rp_table_csv(t, row, 0, "%s", k->op);
    rp_table_csv(t, row, 1, "%s", k->impl);
    rp_table_csv(t, row, 2, "%s", k->dtype);
    csv_int(t, row, 3, k->batch);
    csv_int(t, row, 4, k->heads);
    csv_int(t, row, 5, k->head_dim);
    csv_int(t, row, 6, k->d_state);
    csv_int(t, row, 7, k->dim);
    csv_int(t, row, 8, k->seqlen);
    csv_int(t, row, 9, k->n);
    csv_num(t, row, 10, k->median_s);
    csv_num(t, row, 11, k->p10_s);
    csv_num(t, row, 12, k->p90_s);
    csv_num(t, row, 13, k->tflops);
    csv_num(t, row, 14, k->gbps);
    csv_num(t, row, 15, k->pct_flops);
    csv_num(t, row, 16, k->pct_bw);
    csv_int(t, row, 17, k->n_wrong);
    csv_num(t, row, 18, k->max_rel_err);
    char buf[160];
    rp_table_disp(t, row, 0, "%s", k->op);
    rp_table_disp(t, row, 1, "%s", k->impl);
    rp_table_disp(t, row, 2, "%s", k->dtype);
    rp_table_disp(t, row, 3, "b%d h%d d%d n%d dim%lld", k->batch, k->heads, k->head_dim, k->d_state, (long long)k->dim);
    rp_fmt_context(k->seqlen, buf, sizeof buf);
    rp_table_disp(t, row, 4, "%s", buf);
    rp_stat st = {k->median_s, k->p10_s, k->p90_s, 2};
    rp_fmt_stat(&st, "s", buf, sizeof buf);
    rp_table_disp(t, row, 5, "%s", buf);
    rp_fmt_value(k->tflops, "1", buf, sizeof buf);
    rp_table_disp(t, row, 6, "%s", buf);
    rp_fmt_value(k->gbps, "1", buf, sizeof buf);
    rp_table_disp(t, row, 7, "%s", buf);
    char a[32], b[32];
    rp_fmt_value(k->pct_flops, "1", a, sizeof a);
    rp_fmt_value(k->pct_bw, "1", b, sizeof b);
    rp_table_disp(t, row, 8, "%s / %s", a, b);
    rp_table_disp(t, row, 9, "%lld", (long long)k->n_wrong);
    rp_fmt_value(k->max_rel_err, "1", buf, sizeof buf);
    rp_table_disp(t, row, 10, "%s", buf);
  }
}

static const char *verdict_name(int v) { return v > 0 ? "faster" : v < 0 ? "slower" : "unchanged"; }

void rp_table_baseline(rp_report *r) {
  rp_table *t = rp_doc_table(&r->doc, "baseline",
                             "Against the baseline: throughput now ÷ baseline (median [95% CI]); flagged where the "
                             "interval excludes 1");
  if (!t) return;
  const char *ch[6 + 2 + 5 * RP_NCMP + 1];
  char names[5 * RP_NCMP][48];
  static const char *const base[] = {"arch", "model", "dtype", "context", "batch", "gen", "status", "baseline_status"};
  int nc = 0;
  for (int i = 0; i < 8; i++) ch[nc++] = base[i];
  for (int k = 0; k < RP_NCMP; k++) {
    static const char *const suf[5] = {"ratio", "lo", "hi", "n", "verdict"};
    for (int j = 0; j < 5; j++) {
      snprintf(names[5 * k + j], sizeof names[0], "%s_%s", rp_cmp_names[k], suf[j]);
      ch[nc++] = names[5 * k + j];
    }
  }
  ch[nc++] = "status_change";
  static const char *const dh[] = {"arch", "model", "context", "batch", "gen", "prefill", "decode", "end-to-end",
                                   "status"};
  rp_table_csv_head(t, ch, nc);
  rp_table_disp_head(t, dh, 9);
  for (int i = 0; i < r->cmp->n_base; i++) {
    const rp_base_row *b = &r->cmp->base[i];
    const rp_cell *c = b->cell >= 0 ? &r->agg->cells[b->cell] : &r->bagg->cells[b->bcell];
    const rp_cell *bc = b->bcell >= 0 ? &r->bagg->cells[b->bcell] : NULL;
    int row = rp_table_row(t);
    if (row < 0) return;
    key_csv(t, row, &c->k);
    rp_table_csv(t, row, 6, "%s", b->cell >= 0 ? rp_status_name(rp_cell_main_status(c)) : "");
    rp_table_csv(t, row, 7, "%s", bc ? rp_status_name(rp_cell_main_status(bc)) : "");
    for (int k = 0; k < RP_NCMP; k++) {
      stat_csv(t, row, 8 + 5 * k, &b->r[k]);
      rp_table_csv(t, row, 8 + 5 * k + 4, "%s", b->r[k].n ? verdict_name(b->verdict[k]) : "");
    }
    rp_table_csv(t, row, nc - 1, "%s", b->status_change);
    char buf[160];
    key_disp_short(t, row, &c->k);
    for (int k = 0; k < RP_NCMP; k++) {
      rp_fmt_stat(&b->r[k], "x", buf, sizeof buf);
      if (b->r[k].n && b->verdict[k]) rp_table_disp(t, row, 5 + k, "%s %s", buf, b->verdict[k] > 0 ? "FASTER" : "SLOWER");
      else rp_table_disp(t, row, 5 + k, "%s", buf);
    }
    rp_table_disp(t, row, 8, "%s", b->status_change[0] ? b->status_change : "same");
  }
  if (!r->cmp->n_bkern) return;
  t = rp_doc_table(&r->doc, "baseline_kernels",
                   "Kernels against the baseline: baseline time ÷ time now (> 1: faster now); flagged where the p10–p90 "
                   "ranges do not overlap");
  if (!t) return;
  static const char *const kch[] = {"op", "impl", "dtype", "batch", "heads", "head_dim", "d_state", "dim", "seqlen",
                                    "median_s", "baseline_median_s", "speedup", "verdict"};
  static const char *const kdh[] = {"op", "impl", "seqlen", "time now", "baseline", "speedup", "verdict"};
  rp_table_csv_head(t, kch, 13);
  rp_table_disp_head(t, kdh, 7);
  for (int i = 0; i < r->cmp->n_bkern; i++) {
    const rp_base_kernel *bk = &r->cmp->bkern[i];
    const rp_kernel_row *k = &r->agg->kernels[bk->cur], *kb = &r->bagg->kernels[bk->base];
    int row = rp_table_row(t);
    if (row < 0) return;
    rp_table_csv(t, row, 0, "%s", k->op);
    rp_table_csv(t, row, 1, "%s", k->impl);
    rp_table_csv(t, row, 2, "%s", k->dtype);
    csv_int(t, row, 3, k->batch);
    csv_int(t, row, 4, k->heads);
    csv_int(t, row, 5, k->head_dim);
    csv_int(t, row, 6, k->d_state);
    csv_int(t, row, 7, k->dim);
    csv_int(t, row, 8, k->seqlen);
    csv_num(t, row, 9, k->median_s);
    csv_num(t, row, 10, kb->median_s);
    csv_num(t, row, 11, bk->speedup);
    rp_table_csv(t, row, 12, "%s", verdict_name(bk->verdict));
    char buf[64];
    rp_table_disp(t, row, 0, "%s", k->op);
    rp_table_disp(t, row, 1, "%s", k->impl);
    rp_fmt_context(k->seqlen, buf, sizeof buf);
    rp_table_disp(t, row, 2, "%s", buf);
    rp_fmt_value(k->median_s, "s", buf, sizeof buf);
    rp_table_disp(t, row, 3, "%s", buf);
    rp_fmt_value(kb->median_s, "s", buf, sizeof buf);
    rp_table_disp(t, row, 4, "%s", buf);
    rp_fmt_value(bk->speedup, "x", buf, sizeof buf);
    rp_table_disp(t, row, 5, "%s", buf);
    rp_table_disp(t, row, 6, "%s", bk->verdict ? (bk->verdict > 0 ? "FASTER" : "SLOWER") : "unchanged");
  }
}

static void inputs_rows(rp_table *t, const rp_set *s, const char *role) {
  for (int i = 0; i < s->n_files; i++) {
    const rp_input *in = &s->files[i];
    int row = rp_table_row(t);
    if (row < 0) return;
    const char *how = !in->loaded ? "refused" : in->from_journal ? "journal" : in->partial ? "partial" : "ok";
    const sf_results_provenance *p = &in->d.prov;
    rp_table_csv(t, row, 0, "%s", role);
    rp_table_csv(t, row, 1, "%s", in->path);
    rp_table_csv(t, row, 2, "%s", how);
    csv_int(t, row, 3, in->loaded ? in->d.n_items : 0);
    csv_int(t, row, 4, in->kept_items);
    rp_table_csv(t, row, 5, "%s", in->loaded ? p->created : "");
    rp_table_csv(t, row, 6, "%s", in->loaded ? p->tool_version : "");
    rp_table_csv(t, row, 7, "%s", in->loaded ? p->git_sha : "");
    rp_table_csv(t, row, 8, "%s", in->loaded ? p->host : "");
    csv_int(t, row, 9, in->loaded ? p->world_size : 0);
    rp_table_csv(t, row, 10, "%s", in->loaded ? p->slurm_job_id : "");
    rp_table_csv(t, row, 11, "%s", in->loaded ? p->build_features : "");
    rp_table_csv(t, row, 12, "%s", in->loaded ? p->spec_sha256 : "");
    rp_table_disp(t, row, 0, "%s", role);
    rp_table_disp(t, row, 1, "%s", in->path);
    rp_table_disp(t, row, 2, "%s", how);
    if (in->loaded) {
      rp_table_disp(t, row, 3, "%lld (%lld kept)", (long long)in->d.n_items, (long long)in->kept_items);
      rp_table_disp(t, row, 4, "%s", p->created);
      rp_table_disp(t, row, 5, "%s %.12s", p->tool_version, p->git_sha);
      rp_table_disp(t, row, 6, "%s, %d rank%s%s%s", p->host, p->world_size, p->world_size == 1 ? "" : "s",
                    p->slurm_job_id[0] ? ", job " : "", p->slurm_job_id);
    } else {
      for (int c = 3; c < 7; c++) rp_table_disp(t, row, c, "–");
    }
  }
}

void rp_table_inputs(rp_report *r) {
  rp_table *t = rp_doc_table(&r->doc, "inputs", "Input files");
  if (!t) return;
  static const char *const ch[] = {"role",       "path",         "read",      "items",          "kept_items",
                                   "created",    "tool_version", "git_sha",   "host",           "world_size",
                                   "slurm_job_id", "build_features", "spec_sha256"};
  static const char *const dh[] = {"role", "file", "read", "items", "created", "version", "host"};
  rp_table_csv_head(t, ch, 13);
  rp_table_disp_head(t, dh, 7);
  inputs_rows(t, r->set, "results");
  if (r->bset) inputs_rows(t, r->bset, "baseline");
}

void rp_table_devices(rp_report *r) {
  int64_t n = 0;
  for (int i = 0; i < r->set->n_files; i++)
    if (r->set->files[i].loaded) n += r->set->files[i].d.n_devices;
  if (!n) return;
  rp_table *t = rp_doc_table(&r->doc, "devices", "Devices");
  if (!t) return;
  static const char *const ch[] = {"file", "rank", "host", "device", "backend", "name", "uuid", "cc", "sm_count",
                                   "memory_bytes", "driver_version", "runtime_version"};
  static const char *const dh[] = {"host", "rank", "device", "backend", "name", "memory", "cc", "SMs"};
  rp_table_csv_head(t, ch, 12);
  rp_table_disp_head(t, dh, 8);
  for (int i = 0; i < r->set->n_files; i++) {
    const rp_input *in = &r->set->files[i];
    if (!in->loaded) continue;
    for (int64_t k = 0; k < in->d.n_devices; k++) {
      const sf_results_device *d = &in->d.devices[k];
      int seen = 0; /* shards of one run list the same devices */
      for (int j = 0; j <= i && !seen; j++) {
        const rp_input *o = &r->set->files[j];
        if (!o->loaded) continue;
        for (int64_t q = 0; q < (j == i ? k : o->d.n_devices) && !seen; q++) {
          const sf_results_device *e = &o->d.devices[q];
          seen = e->rank == d->rank && e->device == d->device && !strcmp(e->host, d->host) && !strcmp(e->uuid, d->uuid);
        }
      }
      if (seen) continue;
      int row = rp_table_row(t);
      if (row < 0) return;
      rp_table_csv(t, row, 0, "%s", in->path);
      csv_int(t, row, 1, d->rank);
      rp_table_csv(t, row, 2, "%s", d->host);
      csv_int(t, row, 3, d->device);
      rp_table_csv(t, row, 4, "%s", d->backend);
      rp_table_csv(t, row, 5, "%s", d->name);
      rp_table_csv(t, row, 6, "%s", d->uuid);
      rp_table_csv(t, row, 7, "%d.%d", d->cc_major, d->cc_minor);
      csv_int(t, row, 8, d->sm_count);
      csv_int(t, row, 9, d->memory_bytes);
      csv_int(t, row, 10, d->driver_version);
      csv_int(t, row, 11, d->runtime_version);
      char buf[64];
      rp_table_disp(t, row, 0, "%s", d->host);
      rp_table_disp(t, row, 1, "%d", d->rank);
      rp_table_disp(t, row, 2, "%d", d->device);
      rp_table_disp(t, row, 3, "%s", d->backend);
      rp_table_disp(t, row, 4, "%s", d->name);
      rp_fmt_value(d->memory_bytes > 0 ? (double)d->memory_bytes : NAN, "B", buf, sizeof buf);
      rp_table_disp(t, row, 5, "%s", buf);
      if (d->cc_major) rp_table_disp(t, row, 6, "%d.%d", d->cc_major, d->cc_minor);
      else rp_table_disp(t, row, 6, "–");
      if (d->sm_count) rp_table_disp(t, row, 7, "%d", d->sm_count);
      else rp_table_disp(t, row, 7, "–");
    }
  }
}

/* ---- CSV ---- */

static void csv_field(FILE *f, const char *s) {
  if (!s) s = "";
  if (!strpbrk(s, ",\"\n\r")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

sf_status rp_write_csv(const rp_doc *d, const char *dir, int *n_written, sf_error *err) {
  *n_written = 0;
  for (int i = 0; i < d->n_tables; i++) {
    const rp_table *t = d->tables[i];
    if (!t->csv_cols) continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.csv", dir, t->name);
    FILE *f = fopen(path, "w");
    if (!f) return sf_fail(err, SF_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    for (int c = 0; c < t->csv_cols; c++) {
      if (c) fputc(',', f);
      csv_field(f, t->csv_head[c]);
    }
    fputc('\n', f);
    for (int r = 0; r < t->n_rows; r++) {
      for (int c = 0; c < t->csv_cols; c++) {
        if (c) fputc(',', f);
        csv_field(f, t->csv_rows[r][c]);
      }
      fputc('\n', f);
    }
    if (fclose(f) != 0) return sf_fail(err, SF_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    (*n_written)++;
  }
  return SF_OK;
}

/* ---- Markdown ---- */

static void md_cell(FILE *f, const char *s) {
  if (!s || !*s) {
    fputs(" ", f);
    return;
  }
  for (; *s; s++) {
    if (*s == '|') fputs("\\|", f);
    else if (*s == '\n' || *s == '\r') fputc(' ', f);
    else fputc(*s, f);
  }
}

/* A column whose cells mostly start with a digit is right-aligned. */
int rp_numeric_col(const rp_table *t, int c) {
  int num = 0, all = 0;
  if (!strcmp(t->disp_head[c], "key")) return 0; /* hex digits, not a number */
  for (int r = 0; r < t->n_rows; r++) {
    const char *v = t->disp_rows[r][c];
    if (!v || !*v || !strcmp(v, "–")) continue;
    all++;
    num += (v[0] >= '0' && v[0] <= '9') || (v[0] == '-' && v[1] >= '0' && v[1] <= '9');
  }
  return all && 2 * num > all;
}

static void md_table(FILE *f, const rp_table *t) {
  fprintf(f, "**%s** ([%s.csv](%s.csv))\n\n", t->title, t->name, t->name);
  if (!t->disp_cols || t->csv_only) return;
  if (!t->n_rows) {
    fprintf(f, "_(no rows)_\n\n");
    return;
  }
  fputc('|', f);
  for (int c = 0; c < t->disp_cols; c++) {
    fputc(' ', f);
    md_cell(f, t->disp_head[c]);
    fputs(" |", f);
  }
  fputs("\n|", f);
  for (int c = 0; c < t->disp_cols; c++) fputs(rp_numeric_col(t, c) ? "--:|" : "---|", f);
  fputc('\n', f);
  int shown = t->disp_limit && t->n_rows > t->disp_limit ? t->disp_limit : t->n_rows;
  for (int r = 0; r < shown; r++) {
    fputc('|', f);
    for (int c = 0; c < t->disp_cols; c++) {
      fputc(' ', f);
      md_cell(f, t->disp_rows[r][c]);
      fputs(" |", f);
    }
    fputc('\n', f);
  }
  if (shown < t->n_rows) fprintf(f, "\n_%d more rows in %s.csv_\n", t->n_rows - shown, t->name);
  fputc('\n', f);
}

static void md_plot(FILE *f, const rp_plot *p) {
  if (p->rendered)
    fprintf(f, "![%s](plots/%s.png)\n\n[SVG](plots/%s.svg) · [gnuplot script](plots/gnuplot/%s.gp)\n\n", p->title,
            p->name, p->name, p->name);
  else
    fprintf(f, "> Plot **%s** (%s) skipped: %s\n\n", p->title, p->name, p->skipped[0] ? p->skipped : "not rendered");
}

sf_status rp_write_md(const rp_report *r, const char *path, sf_error *err) {
  FILE *f = fopen(path, "w");
  if (!f) return sf_fail(err, SF_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  const rp_doc *d = &r->doc;
  fprintf(f, "# %s\n\n", d->title);
  fprintf(f, "Contents:");
  for (int i = 0; i < d->n_sections; i++)
    fprintf(f, "%s [%s](#%s)", i ? " ·" : "", d->sections[i].title, d->sections[i].anchor);
  fprintf(f, "\n\n");
  for (int i = 0; i < d->n_sections; i++) {
    const rp_section *s = &d->sections[i];
    fprintf(f, "<a id=\"%s\"></a>\n\n## %s\n\n", s->anchor, s->title);
    for (int j = 0; j < s->n_blocks; j++) {
      const rp_block *b = &s->blocks[j];
      if (b->kind == B_PARA && b->text) {
        fprintf(f, "%s\n\n", b->text);
      } else if (b->kind == B_LIST && b->text) {
        const char *p = b->text;
        while (*p) {
          const char *nl = strchr(p, '\n');
          int n = nl ? (int)(nl - p) : (int)strlen(p);
          if (n) fprintf(f, "- %.*s\n", n, p);
          p += n + (nl ? 1 : 0);
        }
        fputc('\n', f);
      } else if (b->kind == B_PRE && b->text) {
        fprintf(f, "```\n%s%s```\n\n", b->text, b->text[0] && b->text[strlen(b->text) - 1] != '\n' ? "\n" : "");
      } else if (b->kind == B_NOTES) {
        if (!rp_note_count()) fprintf(f, "None: every input was read whole and every plot was drawn.\n\n");
        for (int k = 0; k < rp_note_count(); k++) fprintf(f, "- %s\n", rp_note_get(k));
        if (rp_note_count()) fputc('\n', f);
      } else if (b->kind == B_TABLE && b->table >= 0) {
        md_table(f, d->tables[b->table]);
      } else if (b->kind == B_PLOT && b->plot >= 0) {
        md_plot(f, d->plots[b->plot]);
      }
    }
  }
  if (fclose(f) != 0) return sf_fail(err, SF_ERR_IO, "%s: write failed: %s", path, strerror(errno));
  return SF_OK;
}
