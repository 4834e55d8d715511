/* Argument checks of ops (ops/basic.h, ops/mamba.h) that every backend
 * makes the same way, so that each names a bad call alike. */
#include <math.h>

#include "ops/op_table.h"

const char *sf_norm_name(const sf_norm_params *p) {
  return p->kind == SF_NORM_RMS ? "norm (rms)" : p->kind == SF_NORM_LAYER ? "norm (layer)" : "norm (gated rms)";
}

sf_status sf_norm_check(const sf_norm_params *p, int64_t *group, sf_error *err) {
  if (p->kind != SF_NORM_RMS && p->kind != SF_NORM_LAYER && p->kind != SF_NORM_GATED_RMS)
    return sf_fail(err, SF_ERR_ARG, "norm: unknown kind %d", (int)p->kind);
  const char *name = sf_norm_name(p);
  if (p->n_rows < 0 || p->d <= 0)
    return sf_fail(err, SF_ERR_ARG, "%s: need n_rows >= 0 and d > 0, got n_rows %lld, d %lld", name,
                   (long long)p->n_rows, (long long)p->d);
  if (!(p->eps >= 0.0f) || isinf(p->eps))
    return sf_fail(err, SF_ERR_ARG, "%s: eps %g must be finite and >= 0", name, (double)p->eps);
  if (p->x_row_stride < p->d || p->out_row_stride < p->d)
    return sf_fail(err, SF_ERR_ARG, "%s: row strides (x %lld, out %lld) must be >= d = %lld", name,
                   (long long)p->x_row_stride, (long long)p->out_row_stride, (long long)p->d);
  *group = p->d;
  if (p->kind == SF_NORM_GATED_RMS) {
    if (p->group_size < 0 || (p->group_size > 0 && p->d % p->group_size != 0))
      return sf_fail(err, SF_ERR_ARG, "%s: group_size %lld does not divide d = %lld", name,
                     (long long)p->group_size, (long long)p->d);
    if (p->group_size > 0) *group = p->group_size;
    if (p->z_row_stride < p->d)
      return sf_fail(err, SF_ERR_ARG, "%s: z row stride %lld must be >= d = %lld", name,
                     (long long)p->z_row_stride, (long long)p->d);
  }
  if (p->weight2) {
    if (p->kind == SF_NORM_GATED_RMS)
      return sf_fail(err, SF_ERR_ARG, "%s: a second output (weight2) is for RMS and LayerNorm only", name);
    if (p->out2_row_stride < p->d)
      return sf_fail(err, SF_ERR_ARG, "%s: out2 row stride %lld must be >= d = %lld", name,
                     (long long)p->out2_row_stride, (long long)p->d);
    if (!p->out2 || p->out2 == p->x || p->out2 == p->out)
      return sf_fail(err, SF_ERR_ARG, "%s: out2 must be non-NULL and alias neither x nor out", name);
  }
  if (p->n_rows > 0 && (!p->x || !p->weight || !p->out || (p->kind == SF_NORM_GATED_RMS && !p->z)))
    return sf_fail(err, SF_ERR_ARG, "%s: x, weight, out%s must be non-NULL", name,
                   p->kind == SF_NORM_GATED_RMS ? " and z" : "");
  return SF_OK;
}

sf_status sf_rotary_check(const sf_rotary_params *p, int *nothing, sf_error *err) {
  if (p->n_tokens < 0 || p->n_heads < 0 || p->head_dim <= 0)
    return sf_fail(err, SF_ERR_ARG, "rotary: need n_tokens >= 0, n_heads >= 0, head_dim > 0, got %lld, %d, %d",
                   (long long)p->n_tokens, (int)p->n_heads, (int)p->head_dim);
  if (p->rot_dim < 0 || p->rot_dim % 2 != 0 || p->rot_dim > p->head_dim)
    return sf_fail(err, SF_ERR_ARG, "rotary: rot_dim %d must be even and in [0, head_dim = %d]", (int)p->rot_dim,
                   (int)p->head_dim);
  if (!(p->base > 0.0f) || isinf(p->base))
    return sf_fail(err, SF_ERR_ARG, "rotary: base %g must be finite and > 0", (double)p->base);
  if (p->x2 && p->n_heads2 < 0)
    return sf_fail(err, SF_ERR_ARG, "rotary: need n_heads2 >= 0, got %d", (int)p->n_heads2);
  *nothing = p->n_tokens == 0 || p->n_heads + sf_rotary_heads2(p) == 0 || p->rot_dim == 0;
  if (!*nothing && (!p->x || !p->positions))
    return sf_fail(err, SF_ERR_ARG, "rotary: x and positions must be non-NULL");
  return SF_OK;
}

sf_status sf_selective_state_update_check(const sf_selective_state_update_params *p, sf_error *err) {
  if (p->batch < 0)
    return sf_fail(err, SF_ERR_ARG, "selective_state_update: batch must be >= 0, got %d", p->batch);
  if (p->dim < 1)
    return sf_fail(err, SF_ERR_ARG, "selective_state_update: dim must be >= 1, got %lld", (long long)p->dim);
  if (p->d_state < 1)
    return sf_fail(err, SF_ERR_ARG, "selective_state_update: d_state must be >= 1, got %d", p->d_state);
  if (p->dt_proj_w && p->dt_rank < 1)
    return sf_fail(err, SF_ERR_ARG, "selective_state_update: dt_rank must be >= 1 with dt_proj_w, got %d", p->dt_rank);
  if (p->batch > 0 && (!p->x || !p->dt || !p->A || !p->B || !p->C || !p->state || !p->out))
    return sf_fail(err, SF_ERR_ARG, "selective_state_update: x, dt, A, B, C, state and out are required");
  if (p->batch > 1 && p->state_batch_stride < p->dim * p->d_state)
    return sf_fail(err, SF_ERR_ARG,
                   "selective_state_update: state_batch_stride %lld < dim * d_state = %lld (states overlap)",
                   (long long)p->state_batch_stride, (long long)(p->dim * p->d_state));
  return SF_OK;
}
