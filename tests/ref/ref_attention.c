/* Double-precision reference for attention (see ref.h). */
#include <math.h>
#include <stdlib.h>

#include "ref/ref.h"

void ref_attention_query(const float *q, const float *k, const float *v, int64_t n_keys,
                         int64_t head_dim, double scale, double *out, double *lse) {
  double *s = malloc((size_t)(n_keys > 0 ? n_keys : 1) * sizeof *s);
  double mx = -INFINITY;
  for (int64_t j = 0; j < n_keys; j++) {
    double dot = 0.0;
    for (int64_t d = 0; d < head_dim; d++) dot += (double)q[d] * (double)k[j * head_dim + d];
    s[j] = scale * dot;
    if (s[j] > mx) mx = s[j];
  }
  double sum = 0.0;
  for (int64_t j = 0; j < n_keys; j++) sum += exp(s[j] - mx);
  for (int64_t d = 0; d < head_dim; d++) {
    double acc = 0.0;
    for (int64_t j = 0; j < n_keys; j++) acc += exp(s[j] - mx) / sum * (double)v[j * head_dim + d];
    out[d] = acc;
  }
  if (lse) *lse = mx + log(sum);
  free(s);
}
