/* Double-precision references for the basic ops (see ref.h). */
#include <math.h>
#include <stddef.h>

#include "ref/ref.h"

void ref_rms_norm(const float *x, const float *w, int64_t d, double eps, double *out) {
  double sum_sq = 0.0;
  for (int64_t i = 0; i < d; i++) sum_sq += (double)x[i] * (double)x[i];
  double rms = sqrt(sum_sq / (double)d + eps);
  for (int64_t i = 0; i < d; i++) out[i] = (double)x[i] / rms * (double)w[i];
}

void ref_layer_norm(const float *x, const float *w, const float *b, int64_t d, double eps,
                    double *out) {
  double mean = 0.0;
  for (int64_t i = 0; i < d; i++) mean += x[i];
  mean /= (double)d;
  double var = 0.0;
  for (int64_t i = 0; i < d; i++) var += ((double)x[i] - mean) * ((double)x[i] - mean);
  var /= (double)d;
  for (int64_t i = 0; i < d; i++)
    out[i] = ((double)x[i] - mean) / sqrt(var + eps) * (double)w[i] + (b ? (double)b[i] : 0.0);
}

void ref_gated_rms_norm(const float *x, const float *z, const float *w, int64_t d,
                        int64_t group_size, double eps, double *out) {
  for (int64_t i = 0; i < d; i++) out[i] = (double)x[i] * ref_silu((double)z[i]);
  for (int64_t g = 0; g < d; g += group_size) {
    double sum_sq = 0.0;
    for (int64_t i = g; i < g + group_size; i++) sum_sq += out[i] * out[i];
    double rms = sqrt(sum_sq / (double)group_size + eps);
    for (int64_t i = g; i < g + group_size; i++) out[i] = out[i] / rms * (double)w[i];
  }
}

void ref_gemm(const float *a, const float *w, const float *bias, int64_t m, int64_t n, int64_t k,
              double *c) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = bias ? (double)bias[j] : 0.0;
      for (int64_t l = 0; l < k; l++) s += (double)a[i * k + l] * (double)w[j * k + l];
      c[i * n + j] = s;
    }
}

void ref_rotary(const float *x, int64_t head_dim, int64_t rot_dim, double base, int64_t position,
                double *out) {
  int64_t half = rot_dim / 2;
  for (int64_t i = 0; i < head_dim; i++) out[i] = x[i];
  for (int64_t i = 0; i < half; i++) {
    double theta = (double)position * pow(base, -2.0 * (double)i / (double)rot_dim);
    double x1 = x[i], x2 = x[i + half];
    out[i] = x1 * cos(theta) - x2 * sin(theta);
    out[i + half] = x2 * cos(theta) + x1 * sin(theta);
  }
}

double ref_gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
double ref_silu(double x) { return x / (1.0 + exp(-x)); }
double ref_softplus(double x) { return x > 20.0 ? x : log1p(exp(x)); }

void ref_softmax_t(const double *l, int64_t n, double temperature, double *p) {
  double mx = l[0];
  for (int64_t i = 1; i < n; i++)
    if (l[i] > mx) mx = l[i];
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) sum += exp((l[i] - mx) / temperature);
  for (int64_t i = 0; i < n; i++) p[i] = exp((l[i] - mx) / temperature) / sum;
}
