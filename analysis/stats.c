/* Statistics: median and quantiles, percentile-bootstrap intervals of the
 * median and of a ratio of medians, and least-squares fits (GSL). */
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_fit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "scanflash/rng.h"

int rp_vec_push(rp_vec *a, double x) {
  if (a->n == a->cap) {
    int64_t c = a->cap ? a->cap * 2 : 16;
    double *nv = realloc(a->v, (size_t)c * sizeof *nv);
    if (!nv) return -1;
    a->v = nv;
    a->cap = c;
  }
  a->v[a->n++] = x;
  return 0;
}

void rp_vec_free(rp_vec *a) {
  free(a->v);
  memset(a, 0, sizeof *a);
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The finite values of x, sorted (malloc'd; *m = how many). */
static double *sorted_finite(const double *x, int64_t n, int64_t *m) {
  *m = 0;
  double *s = malloc((size_t)(n > 0 ? n : 1) * sizeof *s);
  if (!s) return NULL;
  for (int64_t i = 0; i < n; i++)
    if (isfinite(x[i])) s[(*m)++] = x[i];
  qsort(s, (size_t)*m, sizeof *s, cmp_double);
  return s;
}

/* Linear interpolation between order statistics (numpy's default). */
static double quantile_sorted(const double *s, int64_t n, double q) {
  if (n <= 0) return NAN;
  q = q < 0 ? 0 : q > 1 ? 1 : q;
  const double h = q * (double)(n - 1);
  const int64_t lo = (int64_t)floor(h);
  const int64_t hi = lo + 1 < n ? lo + 1 : lo;
  return s[lo] + (h - (double)lo) * (s[hi] - s[lo]);
}

double rp_quantile(const double *x, int64_t n, double q) {
  int64_t m;
  double *s = sorted_finite(x, n, &m);
  if (!s) return NAN;
  double v = quantile_sorted(s, m, q);
  free(s);
  return v;
}

double rp_median(const double *x, int64_t n) { return rp_quantile(x, n, 0.5); }

uint64_t rp_hash(const char *s, uint64_t h) {
  if (!h) h = 1469598103934665603ull;
  for (; s && *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* The median of one resample of the sorted s (m values): draw m indices,
 * count them, and walk the counts to the middle order statistics. Indices
 * come two per 64-bit draw by multiply-shift (bias below m / 2^32: none
 * that matters next to the bootstrap's own noise), which keeps a cell of a
 * few hundred samples to a few milliseconds. */
static double resample_median(const double *s, int64_t m, sf_rng *rng, int32_t *count) {
  memset(count, 0, (size_t)m * sizeof *count);
  const uint64_t um = (uint64_t)m;
  int64_t i = 0;
  for (; i + 1 < m; i += 2) {
    const uint64_t r = sf_rng_next(rng);
    count[((r & 0xffffffffu) * um) >> 32]++;
    count[((r >> 32) * um) >> 32]++;
  }
  if (i < m) count[((sf_rng_next(rng) >> 32) * um) >> 32]++;
  const int64_t r1 = (m - 1) / 2, r2 = m / 2; /* 0-based ranks of the middle */
  double v1 = NAN, v2 = NAN;
  int64_t seen = 0;
  for (int64_t k = 0; k < m; k++) {
    int64_t next = seen + count[k];
    if (isnan(v1) && r1 < next) v1 = s[k];
    if (r2 < next) {
      v2 = s[k];
      break;
    }
    seen = next;
  }
  return 0.5 * (v1 + v2);
}

static rp_stat stat_nan(void) {
  rp_stat st = {NAN, NAN, NAN, 0};
  return st;
}

rp_stat rp_bootstrap_median(const double *x, int64_t n, int b, uint64_t seed) {
  rp_stat st = stat_nan();
  int64_t m;
  double *s = sorted_finite(x, n, &m);
  if (!s) return st;
  st.n = m;
  if (m == 0) {
    free(s);
    return st;
  }
  st.med = quantile_sorted(s, m, 0.5);
  if (m == 1 || b < 2 || s[0] == s[m - 1]) { /* one value, or all equal: no spread */
    st.lo = st.hi = st.med;
    free(s);
    return st;
  }
  double *meds = malloc((size_t)b * sizeof *meds);
  int32_t *count = malloc((size_t)m * sizeof *count);
  if (!meds || !count) {
    free(meds);
    free(count);
    free(s);
    return st;
  }
  sf_rng rng;
  sf_rng_seed(&rng, seed);
  for (int i = 0; i < b; i++) meds[i] = resample_median(s, m, &rng, count);
  qsort(meds, (size_t)b, sizeof *meds, cmp_double);
  st.lo = quantile_sorted(meds, b, 0.025);
  st.hi = quantile_sorted(meds, b, 0.975);
  free(meds);
  free(count);
  free(s);
  return st;
}

rp_stat rp_bootstrap_ratio(const double *x, int64_t nx, const double *y, int64_t ny, int b, uint64_t seed) {
  rp_stat st = stat_nan();
  int64_t mx, my;
  double *sx = sorted_finite(x, nx, &mx), *sy = sorted_finite(y, ny, &my);
  if (!sx || !sy || mx == 0 || my == 0) {
    free(sx);
    free(sy);
    return st;
  }
  const double den = quantile_sorted(sy, my, 0.5);
  st.n = mx < my ? mx : my;
  st.med = den != 0 ? quantile_sorted(sx, mx, 0.5) / den : NAN;
  if ((mx == 1 && my == 1) || b < 2) {
    st.lo = st.hi = st.med;
    free(sx);
    free(sy);
    return st;
  }
  double *r = malloc((size_t)b * sizeof *r);
  int32_t *count = malloc((size_t)(mx > my ? mx : my) * sizeof *count);
  if (r && count) {
    sf_rng rng;
    sf_rng_seed(&rng, seed);
    int nb = 0;
    for (int i = 0; i < b; i++) {
      double a = resample_median(sx, mx, &rng, count), c = resample_median(sy, my, &rng, count);
      if (c != 0 && isfinite(a / c)) r[nb++] = a / c;
    }
    qsort(r, (size_t)nb, sizeof *r, cmp_double);
    st.lo = quantile_sorted(r, nb, 0.025);
    st.hi = quantile_sorted(r, nb, 0.975);
  }
  free(r);
  free(count);
  free(sx);
  free(sy);
  return st;
}

int rp_fit_linear(const double *x, const double *y, int n, rp_fit *out) {
  memset(out, 0, sizeof *out);
  out->c1_lo = out->c1_hi = out->c0 = out->c1 = out->r2 = NAN;
  out->n = n;
  if (n < 2) return -1;
  int distinct = 0;
  for (int i = 1; i < n; i++) distinct |= x[i] != x[0];
  if (!distinct) return -1;
  double c0, c1, cov00, cov01, cov11, sumsq;
  if (gsl_fit_linear(x, 1, y, 1, (size_t)n, &c0, &c1, &cov00, &cov01, &cov11, &sumsq)) return -1;
  out->c0 = c0;
  out->c1 = c1;
  double mean = 0, tss = 0;
  for (int i = 0; i < n; i++) mean += y[i];
  mean /= n;
  for (int i = 0; i < n; i++) tss += (y[i] - mean) * (y[i] - mean);
  out->r2 = tss > 0 ? 1 - sumsq / tss : 1;
  if (n >= 3) {
    /* cov11 is sumsq / (n - 2) * (the slope's factor): the usual estimate. */
    const double t = gsl_cdf_tdist_Pinv(0.975, (double)(n - 2));
    const double se = sqrt(cov11 > 0 ? cov11 : 0);
    out->c1_lo = c1 - t * se;
    out->c1_hi = c1 + t * se;
  }
  return 0;
}

int rp_fit_loglog(const double *x, const double *y, int n, rp_fit *out) {
  double *lx = malloc((size_t)(n > 0 ? n : 1) * sizeof *lx), *ly = malloc((size_t)(n > 0 ? n : 1) * sizeof *ly);
  int m = 0, rc = -1;
  if (lx && ly) {
    for (int i = 0; i < n; i++)
      if (x[i] > 0 && y[i] > 0 && isfinite(x[i]) && isfinite(y[i])) {
        lx[m] = log(x[i]);
        ly[m] = log(y[i]);
        m++;
      }
    rc = rp_fit_linear(lx, ly, m, out);
  } else {
    memset(out, 0, sizeof *out);
  }
  free(lx);
  free(ly);
  return rc;
}
