/* scanflash-report's statistics (analysis/stats.c): median and quantiles,
 * the bootstrap interval of the median and of a ratio, and the log-log
 * exponent fit with its 95% interval (GSL), on synthetic data with known
 * answers; and the small parsers and formatters the report relies on. */
#include "report.h"
#include "scanflash/rng.h"
#include "test.h"

static int close_rel(double a, double b, double tol) { return fabs(a - b) <= tol * fmax(fabs(a), fabs(b)); }

static void test_median(void) {
  const double odd[] = {5, 1, 3};
  const double even[] = {4, 1, 3, 2};
  const double with_nan[] = {NAN, 2, INFINITY, 1, 3};
  CHECK(rp_median(odd, 3) == 3);
  CHECK(rp_median(even, 4) == 2.5);
  CHECK(rp_median(with_nan, 5) == 2); /* non-finite values are ignored */
  CHECK(isnan(rp_median(NULL, 0)));
  const double nan_only[] = {NAN, NAN};
  CHECK(isnan(rp_median(nan_only, 2)));
  /* numpy's linear interpolation: quantile(0..9, 0.9) = 8.1 */
  double x[10];
  for (int i = 0; i < 10; i++) x[i] = 9 - i;
  CHECK(close_rel(rp_quantile(x, 10, 0.9), 8.1, 1e-12));
  CHECK(rp_quantile(x, 10, 0) == 0 && rp_quantile(x, 10, 1) == 9);
}

static void test_bootstrap(uint64_t seed) {
  /* constant data: a degenerate interval */
  double c[7];
  for (int i = 0; i < 7; i++) c[i] = 4.5;
  rp_stat s = rp_bootstrap_median(c, 7, 2000, 1);
  CHECK(s.med == 4.5 && s.lo == 4.5 && s.hi == 4.5 && s.n == 7);
  /* one sample */
  s = rp_bootstrap_median(c, 1, 2000, 1);
  CHECK(s.med == 4.5 && s.lo == 4.5 && s.hi == 4.5 && s.n == 1);
  /* none */
  s = rp_bootstrap_median(NULL, 0, 2000, 1);
  CHECK(s.n == 0 && isnan(s.med) && isnan(s.lo));

  /* normal samples: the interval holds the sample median, lies inside the
   * data, is deterministic for a seed and does not depend on the order */
  sf_rng rng;
  sf_rng_seed(&rng, seed);
  double x[101], y[101];
  for (int i = 0; i < 101; i++) x[i] = 10 + sf_rng_normal(&rng);
  for (int i = 0; i < 101; i++) y[i] = x[100 - i];
  rp_stat a = rp_bootstrap_median(x, 101, 2000, 42), b = rp_bootstrap_median(y, 101, 2000, 42);
  CHECK(a.med == rp_median(x, 101));
  CHECK(a.lo <= a.med && a.med <= a.hi);
  CHECK(a.lo > rp_quantile(x, 101, 0.2) && a.hi < rp_quantile(x, 101, 0.8));
  CHECK(a.lo == b.lo && a.hi == b.hi);
  CHECK_MSG(a.hi - a.lo > 0.1 && a.hi - a.lo < 1.2, "width %g", a.hi - a.lo); /* ~ 2 * 1.96 * 1.25 / sqrt(101) = 0.49 */

  /* coverage: the 95% interval of the median of 41 N(0,1) samples holds
   * the true median (0) in about 95% of 300 trials */
  int covered = 0;
  sf_rng_seed(&rng, 2024); /* a fixed stream: the coverage count is deterministic */
  for (int t = 0; t < 300; t++) {
    double z[41];
    for (int i = 0; i < 41; i++) z[i] = sf_rng_normal(&rng);
    rp_stat st = rp_bootstrap_median(z, 41, 500, (uint64_t)t);
    covered += st.lo <= 0 && 0 <= st.hi;
  }
  CHECK_MSG(covered >= 264 && covered <= 299, "bootstrap coverage %d/300", covered);

  /* ratio of medians */
  double num[5] = {2, 4, 6, 8, 10}, den[3] = {1, 2, 3};
  rp_stat r = rp_bootstrap_ratio(num, 5, den, 3, 2000, 7);
  CHECK(r.med == 3);
  CHECK(r.lo <= 3 && r.hi >= 3 && r.lo > 0.5 && r.hi < 11);
  rp_stat r1 = rp_bootstrap_ratio(num, 1, den, 1, 2000, 7);
  CHECK(r1.med == 2 && r1.lo == 2 && r1.hi == 2);
  rp_stat r0 = rp_bootstrap_ratio(num, 5, NULL, 0, 2000, 7);
  CHECK(r0.n == 0 && isnan(r0.med));
}

/* y = a L^k with multiplicative noise (sd sigma), contexts 2^10 .. 2^(9+n). */
static rp_fit fit_power(sf_rng *rng, double k, double sigma, int n) {
  double x[32], y[32];
  for (int i = 0; i < n; i++) {
    x[i] = (double)(1 << (10 + i));
    y[i] = 3e-6 * pow(x[i], k) * exp(sigma * sf_rng_normal(rng));
  }
  rp_fit f;
  CHECK(rp_fit_loglog(x, y, n, &f) == 0);
  return f;
}

static void test_fit(uint64_t seed) {
  sf_rng rng;
  sf_rng_seed(&rng, seed);
  /* exact power laws */
  rp_fit f1 = fit_power(&rng, 1, 0, 6), f2 = fit_power(&rng, 2, 0, 6);
  CHECK(close_rel(f1.c1, 1, 1e-9) && close_rel(f2.c1, 2, 1e-9));
  CHECK(fabs(f1.c1_hi - f1.c1_lo) < 1e-6 && f1.r2 > 0.999999);
  /* with noise the interval covers the truth (fixed seed: deterministic) */
  sf_rng fixed;
  sf_rng_seed(&fixed, 12345);
  f1 = fit_power(&fixed, 1, 0.05, 8);
  f2 = fit_power(&fixed, 2, 0.05, 8);
  CHECK_MSG(f1.c1_lo <= 1 && 1 <= f1.c1_hi, "k=1: %g [%g, %g]", f1.c1, f1.c1_lo, f1.c1_hi);
  CHECK_MSG(f2.c1_lo <= 2 && 2 <= f2.c1_hi, "k=2: %g [%g, %g]", f2.c1, f2.c1_lo, f2.c1_hi);
  CHECK(f1.c1_hi - f1.c1_lo < 0.2 && f2.c1_hi - f2.c1_lo < 0.2);
  CHECK(f1.n == 8);
  /* coverage over many noisy fits: the t interval (n - 2 = 4 degrees of
   * freedom) holds the true slope about 95% of the time */
  int cov1 = 0, cov2 = 0;
  const int trials = 400;
  sf_rng_seed(&rng, 777); /* a fixed stream: the coverage counts are deterministic */
  for (int t = 0; t < trials; t++) {
    rp_fit a = fit_power(&rng, 1, 0.1, 6), b = fit_power(&rng, 2, 0.1, 6);
    cov1 += a.c1_lo <= 1 && 1 <= a.c1_hi;
    cov2 += b.c1_lo <= 2 && 2 <= b.c1_hi;
  }
  CHECK_MSG(cov1 >= 360 && cov1 <= 396, "slope 1 coverage %d/%d", cov1, trials);
  CHECK_MSG(cov2 >= 360 && cov2 <= 396, "slope 2 coverage %d/%d", cov2, trials);
  /* two points: a slope, no interval; one point or constant x: no fit */
  double x2[2] = {1024, 4096}, y2[2] = {1, 16};
  rp_fit f;
  CHECK(rp_fit_loglog(x2, y2, 2, &f) == 0 && close_rel(f.c1, 2, 1e-12) && isnan(f.c1_lo));
  CHECK(rp_fit_loglog(x2, y2, 1, &f) != 0);
  double xc[3] = {8, 8, 8}, yc[3] = {1, 2, 3};
  CHECK(rp_fit_loglog(xc, yc, 3, &f) != 0);
  /* non-positive points are left out */
  double x4[4] = {1024, 2048, 4096, 8192}, y4[4] = {1, 0, 16, 64};
  CHECK(rp_fit_loglog(x4, y4, 4, &f) == 0 && f.n == 3 && close_rel(f.c1, 2, 1e-12));
}

static void test_helpers(void) {
  CHECK(rp_model_params("mamba-130m") == 130e6);
  CHECK(close_rel(rp_model_params("mamba-1.4b"), 1.4e9, 1e-12));
  CHECK(close_rel(rp_model_params("pythia-6.9b"), 6.9e9, 1e-12));
  CHECK(rp_model_params("mamba2-2.7b") > 2e9);
  CHECK(rp_model_params("tiny-mamba1") == 0);
  CHECK(rp_model_params("custom") == 0);
  char b[64];
  rp_fmt_context(2048, b, sizeof b);
  CHECK_STR_EQ(b, "2k");
  rp_fmt_context(1 << 20, b, sizeof b);
  CHECK_STR_EQ(b, "1M");
  rp_fmt_context(1536, b, sizeof b);
  CHECK_STR_EQ(b, "1.5k");
  rp_fmt_context(1000, b, sizeof b);
  CHECK_STR_EQ(b, "1000");
  rp_fmt_context(0, b, sizeof b);
  CHECK_STR_EQ(b, "natural");
  rp_fmt_value(1.52e-3, "s", b, sizeof b);
  CHECK_STR_EQ(b, "1.52 ms");
  rp_fmt_value(12345, "token/s", b, sizeof b);
  CHECK_STR_EQ(b, "12.3k tok/s");
  rp_fmt_value(3.0 * 1024 * 1024 * 1024, "B", b, sizeof b);
  CHECK_STR_EQ(b, "3.00 GiB");
  rp_fmt_value(NAN, "s", b, sizeof b);
  CHECK_STR_EQ(b, "–");
  rp_stat s = {2.31, 2.2, 2.4, 9};
  rp_fmt_stat(&s, "x", b, sizeof b);
  CHECK_STR_EQ(b, "2.31× [2.20, 2.40]");
  CHECK(rp_hash("a", 0) != rp_hash("b", 0) && rp_hash("a", 0) == rp_hash("a", 0));
}

int main(void) {
  uint64_t seed = sf_test_seed();
  test_median();
  test_bootstrap(seed);
  test_fit(seed);
  test_helpers();
  return sf_test_finish("test_report_stats");
}
