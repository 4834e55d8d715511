/* Causal depthwise conv1d (Mamba-1/2 front of the mixer) and its one-token
 * update, fp32 reference (the semantics of causal_conv1d_fn and
 * causal_conv1d_update):
 *   out[t, c] = act(bias[c] + sum_j w[c, j] * in[t - (width-1) + j, c])
 * where in[] before the chunk's first token is the carried history
 * conv_state[b, c, 0..width-2] (oldest first), or zero.
 *
 * Each (sequence, channel) keeps a sliding window of its last width inputs;
 * a token's input is read before its output is written, so out may alias x
 * (same token stride). conv_state is read completely before it is written,
 * and after the call holds the last width-1 inputs of history ++ chunk (the
 * shifted old history plus the new inputs when the chunk is shorter). */
#include <math.h>

#include "cpu_common.h"


enum { CONV_MAX_WIDTH = 8 };


static sf_status check_shape(const char *op, int64_t dim, int32_t width, int32_t batch,
                             const void *conv_state, int64_t state_batch_stride, sf_error *err) {
  if (dim < 1) return sf_fail(err, SF_ERR_ARG, "%s: dim must be >= 1, got %lld", op, (long long)dim);
  if (width < 1 || width > CONV_MAX_WIDTH)
    return sf_fail(err, SF_ERR_ARG, "%s: width must be in [1, %d], got %d", op, CONV_MAX_WIDTH, width);
  if (width > 1 && batch > 0 && !conv_state)
    return sf_fail(err, SF_ERR_ARG, "%s: conv_state is required when width > 1", op);
  if (width > 1 && batch > 1 && state_batch_stride < dim * (width - 1))
    return sf_fail(err, SF_ERR_ARG, "%s: state_batch_stride %lld < dim * (width-1) = %lld (states overlap)", op,
                   (long long)state_batch_stride, (long long)(dim * (width - 1)));
  return SF_OK;
}

SF_CPU_OP(conv1d, sf_conv1d_params) {
  SF_CPU_REQUIRE_F32("conv1d", p->dtype);
  SF_TRY(check_shape("conv1d", p->dim, p->width, p->seqs.batch, p->conv_state, p->state_batch_stride, err));
  SF_TRY(sf_cpu_check_seqs("conv1d", &p->seqs, err));
  if (p->seqs.batch > 0 && (!p->x || !p->weight || !p->out))
    return sf_fail(err, SF_ERR_ARG, "conv1d: x, weight and out are required");

  const float *x = p->x, *weight = p->weight, *bias = p->bias;
  float *out = p->out, *conv_state = p->conv_state;
  const int64_t dim = p->dim, hist = p->width - 1, width = p->width;
  const int32_t batch = p->seqs.batch;
  const int nt = sf_cpu_threads(ctx, (double)batch * (double)p->seqs.max_len * (double)dim * (double)width);

#pragma omp parallel for collapse(2) schedule(static) num_threads(nt)
  for (int32_t b = 0; b < batch; b++) {
    for (int64_t c = 0; c < dim; c++) {
      float win[CONV_MAX_WIDTH]; /* [0, hist): history, oldest first; [hist]: current input */
      float *st = hist ? conv_state + (int64_t)b * p->state_batch_stride + c * hist : NULL;
      for (int64_t j = 0; j < hist; j++) win[j] = p->has_initial_state ? st[j] : 0.0f;
      const float *w = weight + c * width;
      const float bc = bias ? bias[c] : 0.0f;
      const int64_t t0 = p->seqs.start[b], len = p->seqs.len[b];
      for (int64_t t = 0; t < len; t++) {
        const int64_t row = t0 + t;
        win[hist] = x[row * p->x_token_stride + c];
        float acc = bc;
        for (int64_t j = 0; j < width; j++) acc += w[j] * win[j];
        out[row * p->out_token_stride + c] = p->silu ? sf_silu_f(acc) : acc;
        for (int64_t j = 0; j < hist; j++) win[j] = win[j + 1];
      }
      for (int64_t j = 0; j < hist; j++) st[j] = win[j];
    }
  }
  return SF_OK;
}

SF_CPU_OP(conv1d_update, sf_conv1d_update_params) {
  SF_CPU_REQUIRE_F32("conv1d_update", p->dtype);
  SF_TRY(check_shape("conv1d_update", p->dim, p->width, p->batch, p->conv_state, p->state_batch_stride, err));
  if (p->batch < 0) return sf_fail(err, SF_ERR_ARG, "conv1d_update: batch must be >= 0, got %d", p->batch);
  if (p->batch > 0 && (!p->x || !p->weight || !p->out))
    return sf_fail(err, SF_ERR_ARG, "conv1d_update: x, weight and out are required");

  const float *x = p->x, *weight = p->weight, *bias = p->bias;
  float *out = p->out, *conv_state = p->conv_state;
  const int64_t dim = p->dim, hist = p->width - 1, width = p->width;
  const int32_t batch = p->batch;
  const int nt = sf_cpu_threads(ctx, (double)batch * (double)dim * (double)width);

#pragma omp parallel for collapse(2) schedule(static) num_threads(nt)
  for (int32_t b = 0; b < batch; b++) {
    for (int64_t c = 0; c < dim; c++) {
      float win[CONV_MAX_WIDTH];
      float *st = hist ? conv_state + (int64_t)b * p->state_batch_stride + c * hist : NULL;
      for (int64_t j = 0; j < hist; j++) win[j] = st[j];
      win[hist] = x[(int64_t)b * p->x_batch_stride + c];
      const float *w = weight + c * width;
      float acc = bias ? bias[c] : 0.0f;
      for (int64_t j = 0; j < width; j++) acc += w[j] * win[j];
      out[(int64_t)b * p->out_batch_stride + c] = p->silu ? sf_silu_f(acc) : acc;
      for (int64_t j = 0; j < hist; j++) st[j] = win[j + 1];
    }
  }
  return SF_OK;
}
