/* scanflash-report internals (DESIGN "Analysis"). The pipeline:
 *
 *   load.c       result files -> one in-memory set of items, keys unique
 *                (shards merged, duplicates named), children indexed by key
 *   aggregate.c  items -> cells (arch, model, dtype, context, batch, gen):
 *                status counts, per-metric samples, median + bootstrap CI;
 *                decode latency vs position bins; kernel rows
 *   compare.c    Mamba / Transformer speedups and crossovers, prefill
 *                scaling exponents, largest batch that fits, baseline
 *   stats.c      median, quantiles, bootstrap intervals, log-log fits
 *   doc.c        the report as a document: sections of paragraphs, tables
 *                and plots, plus the notes (warnings) gathered on the way
 *   tables.c     analysis results -> tables; Markdown and CSV writers
 *   plots.c      analysis results -> plots; gnuplot scripts, PNG + SVG
 *   html.c       the self-contained HTML page (inline SVG, no scripts)
 *   main.c       the command line and the summary on stdout
 *
 * Nothing here calls into driver code other than the results reader. */
#ifndef SCANFLASH_ANALYSIS_REPORT_H
#define SCANFLASH_ANALYSIS_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "results/read_partial.h"
#include "results/results.h"
#include "scanflash/error.h"
#include "scanflash/records.h"

/* ---- notes: warnings gathered for stderr and the report ---- */

/* Prints "scanflash-report: LINE" on stderr (unless quiet) and keeps it for
 * the report's Notes section. */
void rp_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int rp_note_count(void);
const char *rp_note_get(int i);
void rp_notes_set_quiet(int quiet);
void rp_notes_free(void);

/* ---- growable vectors ---- */

typedef struct rp_vec {
  double *v;
  int64_t n, cap;
} rp_vec;

int rp_vec_push(rp_vec *a, double x); /* 0 ok, -1 out of memory */
void rp_vec_free(rp_vec *a);

/* ---- stats.c ---- */

/* x is not modified; non-finite values are ignored; NaN when none left. */
double rp_quantile(const double *x, int64_t n, double q);
double rp_median(const double *x, int64_t n);

typedef struct rp_stat {
  double med, lo, hi; /* median and its 95% bootstrap interval; NaN when n == 0 */
  int64_t n;          /* finite samples */
} rp_stat;

enum { RP_BOOTSTRAP_DEFAULT = 2000 };
/* Percentile bootstrap of the median: b resamples drawn with an RNG seeded
 * from seed (the samples are sorted first, so the result does not depend on
 * their order). n == 1: lo = hi = med. */
rp_stat rp_bootstrap_median(const double *x, int64_t n, int b, uint64_t seed);
/* Ratio of medians median(x) / median(y), with a bootstrap interval from
 * resampling x and y independently. */
rp_stat rp_bootstrap_ratio(const double *x, int64_t nx, const double *y, int64_t ny, int b, uint64_t seed);

/* Least squares y = c0 + c1 x (gsl_fit_linear) with the slope's 95%
 * interval from Student's t with n - 2 degrees of freedom. */
typedef struct rp_fit {
  int n;               /* points */
  double c0, c1;       /* intercept, slope */
  double c1_lo, c1_hi; /* NaN when n < 3 */
  double r2;
} rp_fit;
int rp_fit_linear(const double *x, const double *y, int n, rp_fit *out); /* -1 when n < 2 or x constant */
/* Fit of log(y) against log(x) (the points with x, y > 0). */
int rp_fit_loglog(const double *x, const double *y, int n, rp_fit *out);

/* Stable 64-bit hash of a string (FNV-1a), for seeds. */
uint64_t rp_hash(const char *s, uint64_t h);

/* ---- load.c ---- */

typedef struct rp_input {
  char *path;
  sf_results_data d;
  int loaded;            /* 0: refused (its error was reported) */
  int from_journal, partial;
  int64_t kept_items;    /* items of this file in the merged set */
  /* children sorted by key (then repeat, step): index ranges per item */
  sf_repeat_result *rep_sorted;
  sf_step_result *step_sorted;
  sf_kernel_result *kern_sorted;
} rp_input;

typedef struct rp_item {
  const sf_results_item *row;
  int file;
  const sf_repeat_result *repeats; int64_t n_repeats;
  const sf_step_result *steps;     int64_t n_steps;
  const sf_kernel_result *kernels; int64_t n_kernels;
} rp_item;

typedef struct rp_set {
  rp_input *files;
  int n_files, n_loaded;
  rp_item *items;        /* keys unique; sorted by key */
  int64_t n_items;
  int64_t n_duplicates;
  int64_t n_orphans;     /* child rows of keys with no item */
} rp_set;

/* Reads every path (errors: one rp_note-free line on stderr each, the file
 * is left out) and merges. lenient: read other schema versions by name.
 * label: "" or "baseline " for messages. Fails only on out of memory. */
sf_status rp_load(rp_set *s, const char *const *paths, int n, int lenient, const char *label, sf_error *err);
void rp_set_free(rp_set *s);

/* ---- aggregate.c ---- */

typedef enum rp_metric {
  M_TTFT, M_PREFILL_TPS, M_DECODE_TPS, M_E2E_TPS, M_TPOT50, M_TPOT90, M_TPOT99,
  M_PEAK, M_CACHE, M_KV, M_STATE, M_WEIGHTS, M_JTOK, M_COUNT
} rp_metric;

typedef struct rp_metric_info {
  const char *name;      /* CSV column stem: "ttft_s" */
  const char *label;     /* "TTFT" */
  const char *unit;      /* "s", "token/s", "B", "J/token" */
} rp_metric_info;
extern const rp_metric_info rp_metrics[M_COUNT];

enum { RP_NSTATUS = 7 }; /* ok .. interrupted */

typedef struct rp_cell_key {
  char arch[16];
  char model[SF_NAME_LEN];
  char dtype[8];
  int64_t context;
  int32_t batch, gen;
} rp_cell_key;

typedef struct rp_cell {
  rp_cell_key k;
  int64_t n_items;
  int64_t n_status[RP_NSTATUS];
  int64_t *items; /* indices into the set's items */
  rp_vec samples[M_COUNT];
  rp_stat st[M_COUNT];
  double est_bytes;   /* largest estimate of its items (for OOM marks) */
  double weights_b;   /* for model sizes */
  int64_t n_nan;      /* ok items whose metrics were all missing */
} rp_cell;

typedef struct rp_bin {
  int64_t pos_lo, pos_hi; /* positions [lo, hi] */
  double pos_mid;         /* median position of its steps */
  int64_t n;
  double med, p10, p90;   /* step latency, s */
} rp_bin;

typedef struct rp_decode_curve {
  int cell;               /* index into cells */
  rp_bin *bins;
  int n_bins;
} rp_decode_curve;

typedef struct rp_kernel_row {
  char op[24], impl[24], dtype[8];
  int32_t batch, heads, head_dim, d_state;
  int64_t seqlen, dim;
  int64_t n;              /* rows aggregated */
  double median_s, p10_s, p90_s, tflops, gbps, pct_flops, pct_bw, max_rel_err;
  int64_t n_wrong;
} rp_kernel_row;

typedef struct rp_agg {
  rp_cell *cells;         /* sorted: arch, model, dtype, batch, gen, context */
  int n_cells;
  rp_decode_curve *curves;
  int n_curves;
  rp_kernel_row *kernels; /* sorted: op, impl, shape, seqlen */
  int n_kernels;
  int64_t *kernel_items;  /* kernels items that are not ok (set indices) */
  int n_kernel_items_bad;
  int64_t n_status[RP_NSTATUS];
  int64_t n_kernel_items;
  int have_energy;
} rp_agg;

typedef struct rp_options {
  int bootstrap;          /* resamples */
  uint64_t seed;
  int bins;               /* decode latency bins per cell */
} rp_options;

sf_status rp_aggregate(const rp_set *s, const rp_options *o, rp_agg *a, sf_error *err);
void rp_agg_free(rp_agg *a);
/* Index of the cell with key k, or -1. */
int rp_find_cell(const rp_agg *a, const rp_cell_key *k);
/* "mamba1 mamba-130m bf16 ctx 2048 batch 1 gen 64" for seeds and messages. */
void rp_cell_label(const rp_cell_key *k, char *buf, size_t n);
/* The status shown for a cell without ok items: the commonest other status. */
int rp_cell_main_status(const rp_cell *c);

/* ---- compare.c ---- */

enum { RP_CMP_PREFILL, RP_CMP_DECODE, RP_CMP_E2E, RP_NCMP };
extern const char *const rp_cmp_names[RP_NCMP];  /* "prefill", "decode", "e2e" */
extern const rp_metric rp_cmp_metric[RP_NCMP];

typedef struct rp_pair {
  char mamba_arch[16], mamba_model[SF_NAME_LEN], tf_model[SF_NAME_LEN];
} rp_pair;

typedef struct rp_speedup {
  int pair;
  char dtype[8];
  int64_t context;
  int32_t batch, gen;
  int mcell, tcell;       /* cell indices */
  rp_stat r[RP_NCMP];     /* Mamba / Transformer; n == 0 when not both ok */
} rp_speedup;

typedef struct rp_crossover {
  int pair;
  char dtype[8];
  int32_t batch, gen;
  int metric;             /* RP_CMP_* */
  int n_points;           /* contexts with both ok */
  int64_t lmin, lmax;
  int found;              /* 1: crossed inside; 2: Mamba ahead from lmin; 0: none in range */
  double context;         /* found == 1 */
  int multiple;           /* crossed more than once (the first is reported) */
  int64_t tf_oom_from;    /* smallest context where the Transformer ran out of memory and Mamba ran; 0 = none */
  double last_ratio;      /* at lmax */
} rp_crossover;

typedef struct rp_scaling {
  char arch[16], model[SF_NAME_LEN], dtype[8];
  int32_t batch;
  int n;                  /* contexts */
  int64_t lmin, lmax;
  rp_fit fit;             /* log(prefill s) vs log(context) */
  int have_fit;
  rp_fit upper;           /* the upper half of the contexts (>= 3 points) */
  int have_upper;
  int64_t *ctx; double *t; /* per-context medians (n) */
} rp_scaling;

typedef struct rp_maxbatch {
  char arch[16], model[SF_NAME_LEN], dtype[8];
  int64_t context;
  int32_t gen;
  int32_t largest_ok;     /* 0: none */
  int32_t smallest_oom;   /* 0: none */
  int oom_predicted;      /* the smallest OOM was predicted, not measured */
  char tried[256];        /* "1 ok, 8 ok, 32 OOM" */
} rp_maxbatch;

typedef struct rp_base_row {
  int cell;               /* current cell, or -1 */
  int bcell;              /* baseline cell, or -1 */
  rp_stat r[RP_NCMP];     /* current / baseline throughput */
  int verdict[RP_NCMP];   /* +1 faster, -1 slower, 0 unchanged/unknown */
  char status_change[64]; /* "ok -> oom" */
} rp_base_row;

typedef struct rp_base_kernel {
  int cur, base;          /* kernel rows */
  double speedup;         /* baseline median / current median */
  int verdict;
} rp_base_kernel;

typedef struct rp_cmp {
  rp_pair *pairs; int n_pairs;
  rp_speedup *speedups; int n_speedups;
  rp_crossover *cross; int n_cross;
  rp_scaling *scaling; int n_scaling;
  rp_maxbatch *maxb; int n_maxb;
  rp_base_row *base; int n_base;
  rp_base_kernel *bkern; int n_bkern;
  int have_baseline;
} rp_cmp;

sf_status rp_compare(const rp_agg *a, const rp_agg *baseline, const rp_options *o, rp_cmp *c, sf_error *err);
void rp_cmp_free(rp_cmp *c);
/* Model size in parameters from a preset-like name ("mamba-1.4b": 1.4e9),
 * 0 when there is none. */
double rp_model_params(const char *model);

/* ---- doc.c: the report document ---- */

typedef struct rp_table {
  char name[64];          /* CSV file: NAME.csv */
  char title[160];
  int csv_cols, disp_cols;
  char **csv_head, **disp_head;
  char ***csv_rows, ***disp_rows; /* [row][col] strings */
  int n_rows, cap_rows;
  int disp_limit;         /* rows shown in md/html (0: all); the CSV has every row */
  int csv_only;           /* md/html name it and link the CSV, without rows */
} rp_table;

typedef struct rp_series {
  char title[160];
  int style;              /* RP_S_* */
  int color;              /* 1.. (gnuplot linetype); 0 = by order */
  double *x, *y, *lo, *hi;
  int n, cap;
} rp_series;
enum { RP_S_LINE, RP_S_LINE_ERR, RP_S_POINTS_OOM, RP_S_POINTS_PRED, RP_S_POINTS_FAIL, RP_S_DASHED, RP_S_POINTS };

/* Every plot is rendered at this size in pixels (PNG) and user units (SVG). */
enum { RP_PLOT_W = 1000, RP_PLOT_H = 650 };

typedef struct rp_plot {
  char name[64];          /* files NAME.png, NAME.svg */
  char title[200];
  char xlabel[96], ylabel[96];
  int logx, logy;
  int xctx;               /* x is a token count: tics as 2k, 1M */
  char yformat[24];       /* gnuplot format of the y tics ("" = default) */
  int hline1;             /* draw y = 1 */
  rp_series *s;
  int n_series;
  /* results of rendering */
  int rendered;
  char skipped[320];      /* why not rendered ("" when rendered) */
} rp_plot;

/* B_NOTES: the notes gathered so far, expanded when the report is written;
 * B_PRE: preformatted lines. */
typedef enum rp_block_kind { B_PARA, B_TABLE, B_PLOT, B_LIST, B_NOTES, B_PRE } rp_block_kind;

typedef struct rp_block {
  rp_block_kind kind;
  char *text;             /* B_PARA; B_LIST: lines separated by \n */
  int table, plot;        /* indices */
} rp_block;

typedef struct rp_section {
  char title[128];
  char anchor[64];
  rp_block *blocks;
  int n_blocks;
} rp_section;

typedef struct rp_doc {
  char title[200];
  rp_section *sections; int n_sections;
  rp_table **tables; int n_tables;
  rp_plot **plots; int n_plots;
} rp_doc;

rp_section *rp_doc_section(rp_doc *d, const char *title, const char *anchor);
void rp_doc_para(rp_doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rp_doc_list(rp_doc *d, const char *lines);
void rp_doc_pre(rp_doc *d, const char *lines);
void rp_doc_notes(rp_doc *d);
rp_table *rp_doc_table(rp_doc *d, const char *name, const char *title);
rp_plot *rp_doc_plot(rp_doc *d, const char *name, const char *title);
void rp_doc_free(rp_doc *d);

void rp_table_csv_head(rp_table *t, const char *const *cols, int n);
void rp_table_disp_head(rp_table *t, const char *const *cols, int n);
/* Starts a row; then set cells by column index. */
int rp_table_row(rp_table *t);
void rp_table_csv(rp_table *t, int row, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void rp_table_disp(rp_table *t, int row, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

rp_series *rp_plot_series(rp_plot *p, const char *title, int style);
void rp_series_add(rp_series *s, double x, double y, double lo, double hi);

/* ---- formatting (tables.c) ---- */

/* "2k", "1M", "1.5k", "natural" */
void rp_fmt_context(int64_t L, char *buf, size_t n);
/* A value in its unit: "12.3k tok/s", "1.52 ms", "3.00 GiB"; "–" for NaN. */
void rp_fmt_value(double v, const char *unit, char *buf, size_t n);
/* Value with its interval: "1.52 ms [1.50, 1.55]". */
void rp_fmt_stat(const rp_stat *s, const char *unit, char *buf, size_t n);
void rp_fmt_gen(int32_t gen, char *buf, size_t n);
const char *rp_status_name(int s);

int rp_numeric_col(const rp_table *t, int col);
void rp_fmt_crossover(const rp_crossover *x, char *buf, size_t n);
void rp_fmt_exponent(const rp_fit *f, char *buf, size_t n);

/* ---- the report ---- */

typedef struct rp_report {
  const rp_set *set, *bset;
  const rp_agg *agg, *bagg;
  const rp_cmp *cmp;
  const rp_options *opt;
  rp_doc doc;
} rp_report;

/* tables.c: builds every section with its tables and plots (plots.c fills
 * the plot data) into r->doc. */
sf_status rp_build_doc(rp_report *r, sf_error *err);
/* tables.c: one builder per table, added to the current section. */
void rp_table_inputs(rp_report *r);
void rp_table_devices(rp_report *r);
void rp_table_throughput(rp_report *r);
void rp_table_latency(rp_report *r);
void rp_table_memory(rp_report *r);
void rp_table_energy(rp_report *r);
void rp_table_failures(rp_report *r);
void rp_table_speedup(rp_report *r);
void rp_table_crossover(rp_report *r);
void rp_table_scaling(rp_report *r);
void rp_table_maxbatch(rp_report *r);
void rp_table_decode(rp_report *r);
void rp_table_kernels(rp_report *r);
void rp_table_baseline(rp_report *r);
/* plots.c: the plots of a section; called by rp_build_doc. */
void rp_plots_throughput(rp_report *r, int metric_cmp);
void rp_plots_speedup(rp_report *r, int metric_cmp);
void rp_plot_scaling(rp_report *r);
void rp_plot_decode(rp_report *r);
void rp_plot_memory(rp_report *r);
void rp_plot_maxbatch(rp_report *r);
void rp_plot_energy(rp_report *r);
void rp_plot_kernels(rp_report *r);

/* summary.c: the headline (crossover, speedups at the largest context,
 * exponents), a few lines; malloc'd, lines end with \n. */
char *rp_summary(const rp_report *r, int max_lines_per_part);

/* Renders every plot with gnuplot into dir (PNG + SVG); skips them all,
 * with the reason, when gnuplot cannot be run. Returns the count rendered. */
int rp_render_plots(rp_doc *d, const char *dir);

sf_status rp_write_csv(const rp_doc *d, const char *dir, int *n_written, sf_error *err);
sf_status rp_write_md(const rp_report *r, const char *path, sf_error *err);
sf_status rp_write_html(const rp_report *r, const char *dir, const char *path, sf_error *err);

/* Writes s (may be NULL) escaped for HTML to f. */
void rp_html_escape(FILE *f, const char *s);

#endif
