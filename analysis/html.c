/* report.html: one self-contained page. Styles inline, plots as inline SVG
 * (their ids prefixed per plot so that several can share the page), no
 * scripts and nothing fetched from elsewhere; links to the CSVs, PNGs and
 * scripts beside it. A plot that was not drawn says why. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "scanflash/files.h"
#include "scanflash/version.h"

void rp_html_escape(FILE *f, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
      case '&': fputs("&amp;", f); break;
      case '<': fputs("&lt;", f); break;
      case '>': fputs("&gt;", f); break;
      case '"': fputs("&quot;", f); break;
      case '\'': fputs("&#39;", f); break;
      default: fputc(*s, f);
    }
  }
}

static const char *const STYLE =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2em auto;max-width:1300px;"
    "padding:0 1em;color:#222;line-height:1.45}"
    "h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}"
    "nav a{margin-right:.8em}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.85em}"
    "th,td{border:1px solid #ddd;padding:.25em .5em;white-space:nowrap}"
    "th{background:#f3f3f3;text-align:left}td.n{text-align:right}tr:nth-child(even) td{background:#fafafa}"
    "td.mark{color:#b00020;font-weight:600}td.up{color:#1a7f37;font-weight:600}td.down{color:#b00020;font-weight:600}"
    ".tw{overflow-x:auto}.cap{font-weight:600;margin-top:1em}"
    "figure{margin:1em 0 2em}svg.plot{max-width:100%;height:auto;border:1px solid #eee}"
    "figcaption{font-size:.85em;color:#555}"
    ".skipped{border:1px dashed #b00020;background:#fff5f5;padding:.6em 1em;margin:1em 0;color:#b00020}"
    "pre{background:#f6f8fa;padding:1em;overflow-x:auto;font-size:.9em}"
    "ul.notes li{color:#8a4b00}";

/* The class of a display cell: status marks and verdicts stand out. */
static const char *cell_class(const char *s, int numeric) {
  if (!s) return "";
  static const char *const marks[] = {"OOM", "FAILED", "TIMEOUT", "INTERRUPTED", "SKIPPED", "Mamba ", "Transformer ",
                                      "both "};
  for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
    if (!strncmp(s, marks[i], strlen(marks[i])) && (i < 5 || strstr(s, "OOM") || strstr(s, "FAILED") ||
                                                    strstr(s, "TIMEOUT") || strstr(s, "INTERRUPTED") ||
                                                    strstr(s, "SKIPPED")))
      return "mark";
  if (strstr(s, "FASTER")) return "up";
  if (strstr(s, "SLOWER")) return "down";
  return numeric ? "n" : "";
}

static void html_table(FILE *f, const rp_table *t) {
  fprintf(f, "<div class=\"cap\">");
  rp_html_escape(f, t->title);
  fprintf(f, " <a href=\"");
  rp_html_escape(f, t->name);
  fprintf(f, ".csv\">(");
  rp_html_escape(f, t->name);
  fprintf(f, ".csv)</a></div>\n");
  if (!t->disp_cols || t->csv_only) return;
  if (!t->n_rows) {
    fprintf(f, "<p><em>(no rows)</em></p>\n");
    return;
  }
  fprintf(f, "<div class=\"tw\"><table>\n<thead><tr>");
  for (int c = 0; c < t->disp_cols; c++) {
    fprintf(f, "<th>");
    rp_html_escape(f, t->disp_head[c]);
    fprintf(f, "</th>");
  }
  fprintf(f, "</tr></thead>\n<tbody>\n");
  int shown = t->disp_limit && t->n_rows > t->disp_limit ? t->disp_limit : t->n_rows;
  unsigned char numeric[64] = {0};
  for (int c = 0; c < t->disp_cols && c < 64; c++) numeric[c] = (unsigned char)rp_numeric_col(t, c);
  for (int r = 0; r < shown; r++) {
    fprintf(f, "<tr>");
    for (int c = 0; c < t->disp_cols; c++) {
      const char *v = t->disp_rows[r][c];
      const char *cls = cell_class(v, c < 64 && numeric[c]);
      if (cls[0]) fprintf(f, "<td class=\"%s\">", cls);
      else fprintf(f, "<td>");
      rp_html_escape(f, v ? v : "");
      fprintf(f, "</td>");
    }
    fprintf(f, "</tr>\n");
  }
  fprintf(f, "</tbody></table></div>\n");
  if (shown < t->n_rows) {
    fprintf(f, "<p><em>%d more rows in ", t->n_rows - shown);
    rp_html_escape(f, t->name);
    fprintf(f, ".csv</em></p>\n");
  }
}

/* Copies svg text from its <svg element on, with ids and references to
 * them prefixed by pfx, and a class on the root. */
static void inline_svg(FILE *f, const char *svg, const char *pfx) {
  const char *p = strstr(svg, "<svg");
  if (!p) return;
  fputs("<svg class=\"plot\" role=\"img\"", f);
  p += 4;
  static const char *const pats[] = {"id='", "id=\"", "href='#", "href=\"#", "url(#"};
  while (*p) {
    size_t i;
    for (i = 0; i < sizeof pats / sizeof pats[0]; i++) {
      size_t n = strlen(pats[i]);
      /* "id=" must start an attribute: a space or newline before it */
      if (!strncmp(p, pats[i], n) && (i >= 2 || p[-1] == ' ' || p[-1] == '\n' || p[-1] == '\t')) {
        fwrite(p, 1, n, f);
        fputs(pfx, f);
        p += n;
        break;
      }
    }
    if (i == sizeof pats / sizeof pats[0]) fputc(*p++, f);
  }
  fputc('\n', f);
}

static void html_plot(FILE *f, const rp_plot *p, const char *dir, int idx) {
  if (!p->rendered) {
    fprintf(f, "<div class=\"skipped\">Plot “");
    rp_html_escape(f, p->title);
    fprintf(f, "” (%s) was not drawn: ", p->name);
    rp_html_escape(f, p->skipped[0] ? p->skipped : "not rendered");
    fprintf(f, ". The tables of this section have its data; its gnuplot script is <a href=\"plots/gnuplot/%s.gp\">"
               "plots/gnuplot/%s.gp</a>.</div>\n",
            p->name, p->name);
    return;
  }
  char path[4200];
  snprintf(path, sizeof path, "%s/plots/%s.svg", dir, p->name);
  char *svg = NULL;
  size_t n;
  sf_error err;
  fprintf(f, "<figure>\n");
  if (sf_read_file(path, &svg, &n, &err) == SF_OK) {
    char pfx[32];
    snprintf(pfx, sizeof pfx, "p%d_", idx);
    inline_svg(f, svg, pfx);
    free(svg);
  } else {
    fprintf(f, "<div class=\"skipped\">");
    rp_html_escape(f, err.msg);
    fprintf(f, "</div>\n");
  }
  fprintf(f, "<figcaption>");
  rp_html_escape(f, p->title);
  fprintf(f, " — <a href=\"plots/%s.png\">PNG</a> · <a href=\"plots/%s.svg\">SVG</a> · "
             "<a href=\"plots/gnuplot/%s.gp\">gnuplot script</a></figcaption>\n</figure>\n",
          p->name, p->name, p->name);
}

sf_status rp_write_html(const rp_report *r, const char *dir, const char *path, sf_error *err) {
  FILE *f = fopen(path, "w");
  if (!f) return sf_fail(err, SF_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  const rp_doc *d = &r->doc;
  fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
  rp_html_escape(f, d->title);
  fprintf(f, "</title>\n<meta name=\"generator\" content=\"scanflash-report %s\">\n<style>%s</style>\n</head>\n<body>\n",
          sf_version(), STYLE);
  fprintf(f, "<h1>");
  rp_html_escape(f, d->title);
  fprintf(f, "</h1>\n<nav>");
  for (int i = 0; i < d->n_sections; i++) {
    fprintf(f, "<a href=\"#%s\">", d->sections[i].anchor);
    rp_html_escape(f, d->sections[i].title);
    fprintf(f, "</a>");
  }
  fprintf(f, "</nav>\n");
  int skipped = 0;
  for (int i = 0; i < d->n_plots; i++) skipped += !d->plots[i]->rendered;
  for (int i = 0; i < d->n_sections; i++) {
    const rp_section *s = &d->sections[i];
    fprintf(f, "<section id=\"%s\">\n<h2>", s->anchor);
    rp_html_escape(f, s->title);
    fprintf(f, "</h2>\n");
    for (int j = 0; j < s->n_blocks; j++) {
      const rp_block *b = &s->blocks[j];
      switch (b->kind) {
        case B_PARA:
          fprintf(f, "<p>");
          rp_html_escape(f, b->text);
          fprintf(f, "</p>\n");
          break;
        case B_PRE:
          fprintf(f, "<pre>");
          rp_html_escape(f, b->text);
          fprintf(f, "</pre>\n");
          break;
        case B_LIST: {
          fprintf(f, "<ul>\n");
          const char *p = b->text ? b->text : "";
          while (*p) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            if (n) {
              char *line = strndup(p, n);
              fprintf(f, "<li>");
              rp_html_escape(f, line);
              fprintf(f, "</li>\n");
              free(line);
            }
            p += n + (nl ? 1 : 0);
          }
          fprintf(f, "</ul>\n");
          break;
        }
        case B_NOTES:
          if (skipped)
            fprintf(f, "<p class=\"skipped\">%d of %d plots were not drawn (the reasons are below and at each "
                       "plot); every table is complete.</p>\n",
                    skipped, d->n_plots);
          if (!rp_note_count()) {
            fprintf(f, "<p>None: every input was read whole and every plot was drawn.</p>\n");
            break;
          }
          fprintf(f, "<ul class=\"notes\">\n");
          for (int k = 0; k < rp_note_count(); k++) {
            fprintf(f, "<li>");
            rp_html_escape(f, rp_note_get(k));
            fprintf(f, "</li>\n");
          }
          fprintf(f, "</ul>\n");
          break;
        case B_TABLE:
          if (b->table >= 0) html_table(f, d->tables[b->table]);
          break;
        case B_PLOT:
          if (b->plot >= 0) html_plot(f, d->plots[b->plot], dir, b->plot);
          break;
      }
    }
    fprintf(f, "</section>\n");
  }
  fprintf(f, "<footer><p><small>scanflash-report %s (%s)</small></p></footer>\n</body>\n</html>\n", sf_version(),
          sf_git_sha());
  if (fclose(f) != 0) return sf_fail(err, SF_ERR_IO, "%s: write failed: %s", path, strerror(errno));
  return SF_OK;
}
