/* The report as a document (sections of paragraphs, tables, plots) that the
 * Markdown, CSV and HTML writers walk, and the notes gathered on the way.
 * Out of memory while building it drops the piece being added (the report
 * is then shorter, never wrong); the notes say so. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

/* ---- notes ---- */

static char **notes;
static int n_notes, cap_notes, notes_quiet;

void rp_notes_set_quiet(int quiet) { notes_quiet = quiet; }

void rp_note(const char *fmt, ...) {
  char line[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (!notes_quiet) fprintf(stderr, "scanflash-report: %s\n", line);
  if (n_notes == cap_notes) {
    int c = cap_notes ? cap_notes * 2 : 16;
    char **nn = realloc(notes, (size_t)c * sizeof *nn);
    if (!nn) return;
    notes = nn;
    cap_notes = c;
  }
  char *s = strdup(line);
  if (s) notes[n_notes++] = s;
}

int rp_note_count(void) { return n_notes; }
const char *rp_note_get(int i) { return i >= 0 && i < n_notes ? notes[i] : ""; }

void rp_notes_free(void) {
  for (int i = 0; i < n_notes; i++) free(notes[i]);
  free(notes);
  notes = NULL;
  n_notes = cap_notes = 0;
}

/* ---- document ---- */

static int grow(void **p, int *cap, int need, size_t elem) {
  if (need <= *cap) return 0;
  int c = *cap ? *cap * 2 : 8;
  while (c < need) c *= 2;
  void *np = realloc(*p, (size_t)c * elem);
  if (!np) return -1;
  memset((char *)np + (size_t)*cap * elem, 0, (size_t)(c - *cap) * elem);
  *p = np;
  *cap = c;
  return 0;
}

/* Sections, blocks, tables and plots are few: realloc per addition. */
static int add_elem(void **arr, int *n, size_t elem) {
  void *np = realloc(*arr, (size_t)(*n + 1) * elem);
  if (!np) return -1;
  memset((char *)np + (size_t)*n * elem, 0, elem);
  *arr = np;
  (*n)++;
  return 0;
}

rp_section *rp_doc_section(rp_doc *d, const char *title, const char *anchor) {
  if (add_elem((void **)&d->sections, &d->n_sections, sizeof *d->sections)) return NULL;
  rp_section *s = &d->sections[d->n_sections - 1];
  snprintf(s->title, sizeof s->title, "%s", title);
  snprintf(s->anchor, sizeof s->anchor, "%s", anchor);
  return s;
}

static rp_block *add_block(rp_doc *d, rp_block_kind kind) {
  if (!d->n_sections && !rp_doc_section(d, "Report", "report")) return NULL;
  rp_section *s = &d->sections[d->n_sections - 1];
  if (add_elem((void **)&s->blocks, &s->n_blocks, sizeof *s->blocks)) return NULL;
  rp_block *b = &s->blocks[s->n_blocks - 1];
  b->kind = kind;
  b->table = b->plot = -1;
  return b;
}

void rp_doc_para(rp_doc *d, const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  rp_block *b = add_block(d, B_PARA);
  if (b) b->text = strdup(buf);
}

void rp_doc_list(rp_doc *d, const char *lines) {
  rp_block *b = add_block(d, B_LIST);
  if (b) b->text = strdup(lines);
}

void rp_doc_pre(rp_doc *d, const char *lines) {
  rp_block *b = add_block(d, B_PRE);
  if (b) b->text = strdup(lines);
}

void rp_doc_notes(rp_doc *d) { add_block(d, B_NOTES); }

rp_table *rp_doc_table(rp_doc *d, const char *name, const char *title) {
  rp_table *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  if (add_elem((void **)&d->tables, &d->n_tables, sizeof *d->tables)) {
    free(t);
    return NULL;
  }
  d->tables[d->n_tables - 1] = t;
  snprintf(t->name, sizeof t->name, "%s", name);
  snprintf(t->title, sizeof t->title, "%s", title);
  rp_block *b = add_block(d, B_TABLE);
  if (b) b->table = d->n_tables - 1;
  return t;
}

rp_plot *rp_doc_plot(rp_doc *d, const char *name, const char *title) {
  rp_plot *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  if (add_elem((void **)&d->plots, &d->n_plots, sizeof *d->plots)) {
    free(p);
    return NULL;
  }
  d->plots[d->n_plots - 1] = p;
  snprintf(p->name, sizeof p->name, "%s", name);
  snprintf(p->title, sizeof p->title, "%s", title);
  rp_block *b = add_block(d, B_PLOT);
  if (b) b->plot = d->n_plots - 1;
  return p;
}

static void free_rows(char ***rows, int n_rows, int n_cols) {
  if (!rows) return;
  for (int r = 0; r < n_rows; r++) {
    if (!rows[r]) continue;
    for (int c = 0; c < n_cols; c++) free(rows[r][c]);
    free(rows[r]);
  }
  free(rows);
}

static void free_head(char **h, int n) {
  if (!h) return;
  for (int i = 0; i < n; i++) free(h[i]);
  free(h);
}

void rp_doc_free(rp_doc *d) {
  for (int i = 0; i < d->n_sections; i++) {
    for (int j = 0; j < d->sections[i].n_blocks; j++) free(d->sections[i].blocks[j].text);
    free(d->sections[i].blocks);
  }
  free(d->sections);
  for (int i = 0; i < d->n_tables; i++) {
    rp_table *t = d->tables[i];
    free_rows(t->csv_rows, t->n_rows, t->csv_cols);
    free_rows(t->disp_rows, t->n_rows, t->disp_cols);
    free_head(t->csv_head, t->csv_cols);
    free_head(t->disp_head, t->disp_cols);
    free(t);
  }
  free(d->tables);
  for (int i = 0; i < d->n_plots; i++) {
    rp_plot *p = d->plots[i];
    for (int k = 0; k < p->n_series; k++) {
      free(p->s[k].x);
      free(p->s[k].y);
      free(p->s[k].lo);
      free(p->s[k].hi);
    }
    free(p->s);
    free(p);
  }
  free(d->plots);
  memset(d, 0, sizeof *d);
}

/* ---- tables ---- */

static char **dup_head(const char *const *cols, int n) {
  char **h = calloc((size_t)n, sizeof *h);
  if (!h) return NULL;
  for (int i = 0; i < n; i++) h[i] = strdup(cols[i]);
  return h;
}

void rp_table_csv_head(rp_table *t, const char *const *cols, int n) {
  t->csv_head = dup_head(cols, n);
  t->csv_cols = t->csv_head ? n : 0;
}

void rp_table_disp_head(rp_table *t, const char *const *cols, int n) {
  t->disp_head = dup_head(cols, n);
  t->disp_cols = t->disp_head ? n : 0;
}

int rp_table_row(rp_table *t) {
  if (t->n_rows == t->cap_rows) {
    int cap = t->cap_rows, cap2 = t->cap_rows;
    if (grow((void **)&t->csv_rows, &cap, t->n_rows + 1, sizeof *t->csv_rows)) return -1;
    if (grow((void **)&t->disp_rows, &cap2, t->n_rows + 1, sizeof *t->disp_rows)) {
      /* csv_rows grew alone: its extra room is zeroed and unused */
      return -1;
    }
    t->cap_rows = cap2;
  }
  char **c = calloc((size_t)(t->csv_cols ? t->csv_cols : 1), sizeof *c);
  char **dcell = calloc((size_t)(t->disp_cols ? t->disp_cols : 1), sizeof *dcell);
  if (!c || !dcell) {
    free(c);
    free(dcell);
    return -1;
  }
  t->csv_rows[t->n_rows] = c;
  t->disp_rows[t->n_rows] = dcell;
  return t->n_rows++;
}

static void set_cell(char ***rows, int n_rows, int n_cols, int row, int col, const char *fmt, va_list ap) {
  if (row < 0 || row >= n_rows || col < 0 || col >= n_cols) return;
  char buf[2048];
  vsnprintf(buf, sizeof buf, fmt, ap);
  free(rows[row][col]);
  rows[row][col] = strdup(buf);
}

void rp_table_csv(rp_table *t, int row, int col, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_cell(t->csv_rows, t->n_rows, t->csv_cols, row, col, fmt, ap);
  va_end(ap);
}

void rp_table_disp(rp_table *t, int row, int col, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_cell(t->disp_rows, t->n_rows, t->disp_cols, row, col, fmt, ap);
  va_end(ap);
}

/* ---- plot series ---- */

rp_series *rp_plot_series(rp_plot *p, const char *title, int style) {
  if (add_elem((void **)&p->s, &p->n_series, sizeof *p->s)) return NULL;
  rp_series *s = &p->s[p->n_series - 1];
  snprintf(s->title, sizeof s->title, "%s", title);
  s->style = style;
  return s;
}

void rp_series_add(rp_series *s, double x, double y, double lo, double hi) {
  if (!s) return;
  if (s->n == s->cap) {
    int c = s->cap ? s->cap * 2 : 16;
    double *nx = realloc(s->x, (size_t)c * sizeof(double));
    if (nx) s->x = nx;
    double *ny = realloc(s->y, (size_t)c * sizeof(double));
    if (ny) s->y = ny;
    double *nl = realloc(s->lo, (size_t)c * sizeof(double));
    if (nl) s->lo = nl;
    double *nh = realloc(s->hi, (size_t)c * sizeof(double));
    if (nh) s->hi = nh;
    if (!nx || !ny || !nl || !nh) return;
    s->cap = c;
  }
  s->x[s->n] = x;
  s->y[s->n] = y;
  s->lo[s->n] = lo;
  s->hi[s->n] = hi;
  s->n++;
}
