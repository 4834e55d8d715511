/* scanflash-report: result files -> tables (Markdown, CSV), plots (PNG,
 * SVG), a self-contained HTML page, and the headline on stdout. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "report.h"
#include "scanflash/log.h"
#include "scanflash/version.h"

#define PROG "scanflash-report"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static void usage(FILE *f) {
  fprintf(f,
          "usage: scanflash-report RESULTS.h5 [MORE.h5 ...] -o DIR [--format md,html,csv]\n"
          "                        [--baseline OTHER.h5 ...] [--force] [--bootstrap N] [--seed S]\n"
          "                        [--bins N] [--quiet]\n"
          "\n"
          "Reads scanflash results files (shards of one sweep are merged in memory: every key\n"
          "once, duplicates named) and writes into DIR:\n"
          "  report.md, report.html   the report (the HTML embeds its plots as SVG; no scripts)\n"
          "  NAME.csv                 every table, one file each, raw numbers\n"
          "  plots/NAME.png, .svg     the plots (gnuplot; plots/gnuplot/NAME.gp makes them again)\n"
          "and prints the headline on stdout: the crossover context where Mamba overtakes the\n"
          "Transformer, the speedups at the largest context, the prefill scaling exponents.\n"
          "\n"
          "Medians are over the timed repeats of every problem in a cell (architecture, model,\n"
          "dtype, context, batch, generation length) with 95%% percentile-bootstrap intervals.\n"
          "Items that did not finish (oom, oom_predicted, error, timeout, interrupted, skipped)\n"
          "are counted and marked, never dropped.\n"
          "\n"
          "  -o, --output DIR      where the report goes (created; required)\n"
          "  --format LIST         any of md, html, csv (default: all three)\n"
          "  --baseline FILE       a run to compare with (repeat it for shards): per-cell ratios\n"
          "  --force               read files of other schema versions by field name\n"
          "  --bootstrap N         bootstrap resamples (default %d)\n"
          "  --seed S              bootstrap seed (default 1; the report is deterministic)\n"
          "  --bins N              decode-latency position bins per cell (default 16)\n"
          "  --quiet               no notes on stderr (they are still in the report)\n"
          "\n"
          "Environment: SCANFLASH_GNUPLOT, the gnuplot binary (default: gnuplot on PATH).\n"
          "Without gnuplot the report has every table and says which plots it skipped.\n"
          "Exit status: 0 a report was written (perhaps partial: see its Notes), 1 nothing\n"
          "could be reported (each reason on one line), 2 usage error.\n",
          RP_BOOTSTRAP_DEFAULT);
}

static int mkdir_p(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
  struct stat st;
  return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

static int parse_formats(const char *s, int *md, int *html, int *csv) {
  *md = *html = *csv = 0;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", s);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (!strcmp(t, "md") || !strcmp(t, "markdown")) *md = 1;
    else if (!strcmp(t, "html")) *html = 1;
    else if (!strcmp(t, "csv")) *csv = 1;
    else return -1;
  }
  return *md || *html || *csv ? 0 : -1;
}

static int parse_int(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  sf_log_level_from_env();
  static const struct option opts[] = {{"output", required_argument, 0, 'o'},   {"format", required_argument, 0, 'f'},
                                       {"baseline", required_argument, 0, 'b'}, {"force", no_argument, 0, 'F'},
                                       {"bootstrap", required_argument, 0, 'B'}, {"seed", required_argument, 0, 'S'},
                                       {"bins", required_argument, 0, 'n'},     {"quiet", no_argument, 0, 'q'},
                                       {"help", no_argument, 0, 'h'},           {"version", no_argument, 0, 'V'},
                                       {0, 0, 0, 0}};
  const char *out = NULL;
  const char **baseline = calloc((size_t)argc + 1, sizeof *baseline);
  int n_baseline = 0, force = 0, want_md = 1, want_html = 1, want_csv = 1, quiet = 0;
  rp_options opt = {RP_BOOTSTRAP_DEFAULT, 1, 16};
  if (!baseline) {
    fprintf(stderr, PROG ": out of memory\n");
    return EXIT_FAIL;
  }
  int c;
  long v;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
    switch (c) {
      case 'o': out = optarg; break;
      case 'f':
        if (parse_formats(optarg, &want_md, &want_html, &want_csv)) {
          fprintf(stderr, PROG ": --format '%s': give a comma-separated list of md, html, csv\n", optarg);
          free(baseline);
          return EXIT_USAGE;
        }
        break;
      case 'b': baseline[n_baseline++] = optarg; break;
      case 'F': force = 1; break;
      case 'B':
        if (parse_int(optarg, 0, 1000000, &v)) {
          fprintf(stderr, PROG ": --bootstrap '%s': give a count from 0 to 1000000\n", optarg);
          free(baseline);
          return EXIT_USAGE;
        }
        opt.bootstrap = (int)v;
        break;
      case 'S': {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(optarg, &end, 0);
        if (errno || end == optarg || *end) {
          fprintf(stderr, PROG ": --seed '%s': give an unsigned integer\n", optarg);
          free(baseline);
          return EXIT_USAGE;
        }
        opt.seed = s;
        break;
      }
      case 'n':
        if (parse_int(optarg, 1, 10000, &v)) {
          fprintf(stderr, PROG ": --bins '%s': give a count from 1 to 10000\n", optarg);
          free(baseline);
          return EXIT_USAGE;
        }
        opt.bins = (int)v;
        break;
      case 'q': quiet = 1; break;
      case 'h': usage(stdout); free(baseline); return EXIT_OK;
      case 'V': printf(PROG " %s (%s)\n", sf_version(), sf_git_sha()); free(baseline); return EXIT_OK;
      case ':':
        fprintf(stderr, PROG ": %s needs a value (" PROG " --help)\n", argv[optind - 1]);
        free(baseline);
        return EXIT_USAGE;
      default:
        fprintf(stderr, PROG ": unknown option '%s' (" PROG " --help)\n", argv[optind - 1]);
        free(baseline);
        return EXIT_USAGE;
    }
  }
  const int n_inputs = argc - optind;
  if (n_inputs < 1) {
    fprintf(stderr, PROG ": no results files (" PROG " --help)\n");
    free(baseline);
    return EXIT_USAGE;
  }
  if (!out) {
    fprintf(stderr, PROG ": no output folder: give -o DIR (" PROG " --help)\n");
    free(baseline);
    return EXIT_USAGE;
  }
  rp_notes_set_quiet(quiet);

  int rc = EXIT_FAIL;
  sf_error err = {0};
  rp_set set, bset;
  rp_agg agg, bagg;
  rp_cmp cmp;
  int have_b = 0, have_agg = 0, have_bagg = 0, have_cmp = 0;
  memset(&bset, 0, sizeof bset);
  rp_report rep;
  memset(&rep, 0, sizeof rep);

  if (rp_load(&set, (const char *const *)(argv + optind), n_inputs, force, "", &err) != SF_OK) {
    fprintf(stderr, PROG ": %s\n", err.msg);
    goto done;
  }
  if (set.n_loaded == 0) goto done; /* each file's reason is on stderr already */
  if (set.n_items == 0) {
    if (quiet) rp_notes_set_quiet(0);
    if (set.n_loaded == 1) {
      for (int i = 0; i < set.n_files; i++)
        if (set.files[i].loaded) fprintf(stderr, PROG ": %s: no items (nothing to report)\n", set.files[i].path);
    } else {
      fprintf(stderr, PROG ": nothing to report: the %d files read have no items\n", set.n_loaded);
    }
    goto done;
  }
  if (n_baseline) {
    if (rp_load(&bset, baseline, n_baseline, force, "baseline: ", &err) != SF_OK) {
      fprintf(stderr, PROG ": %s\n", err.msg);
      goto done;
    }
    have_b = 1;
    if (bset.n_items == 0) rp_note("baseline: nothing to compare with (no items read); the comparison is left out");
  }
  if (rp_aggregate(&set, &opt, &agg, &err) != SF_OK) {
    fprintf(stderr, PROG ": %s\n", err.msg);
    goto done;
  }
  have_agg = 1;
  if (have_b && bset.n_items) {
    if (rp_aggregate(&bset, &opt, &bagg, &err) != SF_OK) {
      fprintf(stderr, PROG ": %s\n", err.msg);
      goto done;
    }
    have_bagg = 1;
  }
  if (rp_compare(&agg, have_bagg ? &bagg : NULL, &opt, &cmp, &err) != SF_OK) {
    fprintf(stderr, PROG ": %s\n", err.msg);
    goto done;
  }
  have_cmp = 1;
  if (mkdir_p(out)) {
    fprintf(stderr, PROG ": %s: cannot create the output folder: %s\n", out, strerror(errno));
    goto done;
  }
  rep.set = &set;
  rep.bset = have_b ? &bset : NULL;
  rep.agg = &agg;
  rep.bagg = have_bagg ? &bagg : NULL;
  rep.cmp = &cmp;
  rep.opt = &opt;
  if (rp_build_doc(&rep, &err) != SF_OK) {
    fprintf(stderr, PROG ": %s\n", err.msg);
    goto done;
  }
  int rendered = 0, n_csv = 0;
  if (want_md || want_html) rendered = rp_render_plots(&rep.doc, out);
  char path[4200];
  if (want_csv && rp_write_csv(&rep.doc, out, &n_csv, &err) != SF_OK) {
    fprintf(stderr, PROG ": %s\n", err.msg);
    goto done;
  }
  if (want_md) {
    snprintf(path, sizeof path, "%s/report.md", out);
    if (rp_write_md(&rep, path, &err) != SF_OK) {
      fprintf(stderr, PROG ": %s\n", err.msg);
      goto done;
    }
  }
  if (want_html) {
    snprintf(path, sizeof path, "%s/report.html", out);
    if (rp_write_html(&rep, out, path, &err) != SF_OK) {
      fprintf(stderr, PROG ": %s\n", err.msg);
      goto done;
    }
  }
  char *sum = rp_summary(&rep, 6);
  if (sum) {
    fputs(sum, stdout);
    free(sum);
  }
  printf("wrote %s:", out);
  if (want_md) printf(" report.md");
  if (want_html) printf(" report.html");
  if (want_csv) printf(" %d CSV tables", n_csv);
  if (want_md || want_html) {
    printf(", %d of %d plots (PNG + SVG)", rendered, rep.doc.n_plots);
    if (rendered < rep.doc.n_plots) printf(" (%d skipped: see Notes)", rep.doc.n_plots - rendered);
  }
  if (rp_note_count()) printf("; %d note%s", rp_note_count(), rp_note_count() == 1 ? "" : "s");
  printf("\n");
  rc = EXIT_OK;

done:
  rp_doc_free(&rep.doc);
  if (have_cmp) rp_cmp_free(&cmp);
  if (have_bagg) rp_agg_free(&bagg);
  if (have_agg) rp_agg_free(&agg);
  if (have_b) rp_set_free(&bset);
  rp_set_free(&set);
  rp_notes_free();
  free(baseline);
  return rc;
}
