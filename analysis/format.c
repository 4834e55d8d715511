/* Numbers as people read them in the tables: units with prefixes, three
 * significant digits, contexts as 2k / 1M. (The CSVs keep raw numbers.) */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report.h"

void rp_fmt_context(int64_t L, char *buf, size_t n) {
  if (L <= 0) snprintf(buf, n, "natural");
  else if (L % (1 << 20) == 0) snprintf(buf, n, "%lldM", (long long)(L >> 20));
  else if (L % 1024 == 0) snprintf(buf, n, "%lldk", (long long)(L >> 10));
  else if (L >= 1024 && (L * 10) % 1024 == 0) snprintf(buf, n, "%.1fk", (double)L / 1024.0);
  else snprintf(buf, n, "%lld", (long long)L);
}

void rp_fmt_gen(int32_t gen, char *buf, size_t n) {
  if (gen == SF_GEN_CANONICAL) snprintf(buf, n, "canonical");
  else if (gen == 0) snprintf(buf, n, "0 (prefill)");
  else snprintf(buf, n, "%d", gen);
}

const char *rp_status_name(int s) {
  if (s >= 0 && s < RP_NSTATUS) return sf_item_status_name((sf_item_status)s);
  return "unknown";
}

/* Scale and suffix for v in unit. */
static void scale_of(double v, const char *unit, double *scale, const char **suffix) {
  const double a = fabs(v);
  *scale = 1;
  *suffix = unit;
  if (!strcmp(unit, "s")) {
    if (a == 0 || a >= 1) *suffix = " s";
    else if (a >= 1e-3) *scale = 1e-3, *suffix = " ms";
    else if (a >= 1e-6) *scale = 1e-6, *suffix = " µs";
    else *scale = 1e-9, *suffix = " ns";
  } else if (!strcmp(unit, "token/s")) {
    if (a >= 1e9) *scale = 1e9, *suffix = "G tok/s";
    else if (a >= 1e6) *scale = 1e6, *suffix = "M tok/s";
    else if (a >= 1e3) *scale = 1e3, *suffix = "k tok/s";
    else *suffix = " tok/s";
  } else if (!strcmp(unit, "B")) {
    const double k = 1024;
    if (a >= k * k * k * k) *scale = k * k * k * k, *suffix = " TiB";
    else if (a >= k * k * k) *scale = k * k * k, *suffix = " GiB";
    else if (a >= k * k) *scale = k * k, *suffix = " MiB";
    else if (a >= k) *scale = k, *suffix = " KiB";
    else *suffix = " B";
  } else if (!strcmp(unit, "J/token")) {
    if (a > 0 && a < 1e-3) *scale = 1e-3, *suffix = " mJ/tok";
    else *suffix = " J/tok";
  } else if (!strcmp(unit, "x")) {
    *suffix = "×";
  } else if (!strcmp(unit, "1") || !unit[0]) {
    *suffix = "";
  } else {
    static char buf[32];
    snprintf(buf, sizeof buf, " %s", unit);
    *suffix = buf;
  }
}

/* Three significant digits without an exponent (for |x| < 1e5). */
static void num3(double x, char *buf, size_t n) {
  const double a = fabs(x);
  if (a >= 99.95 || a == 0) snprintf(buf, n, "%.0f", x);
  else if (a >= 9.995) snprintf(buf, n, "%.1f", x);
  else if (a >= 0.9995) snprintf(buf, n, "%.2f", x);
  else if (a >= 0.09995) snprintf(buf, n, "%.3f", x);
  else snprintf(buf, n, "%.3g", x);
}

void rp_fmt_value(double v, const char *unit, char *buf, size_t n) {
  if (!isfinite(v)) {
    snprintf(buf, n, "–");
    return;
  }
  double scale;
  const char *suffix;
  scale_of(v, unit, &scale, &suffix);
  char num[64];
  num3(v / scale, num, sizeof num);
  snprintf(buf, n, "%s%s", num, suffix);
}

void rp_fmt_stat(const rp_stat *s, const char *unit, char *buf, size_t n) {
  if (!s->n || !isfinite(s->med)) {
    snprintf(buf, n, "–");
    return;
  }
  double scale;
  const char *suffix;
  scale_of(s->med, unit, &scale, &suffix);
  char m[64], lo[64], hi[64];
  num3(s->med / scale, m, sizeof m);
  if (s->n < 2 || !isfinite(s->lo) || !isfinite(s->hi) || s->lo == s->hi) {
    snprintf(buf, n, "%s%s", m, suffix);
    return;
  }
  num3(s->lo / scale, lo, sizeof lo);
  num3(s->hi / scale, hi, sizeof hi);
  snprintf(buf, n, "%s%s [%s, %s]", m, suffix, lo, hi);
}
