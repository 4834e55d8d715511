/* One Mamba-2 block (mamba_ssm Block + Mamba2 mixer, rmsnorm = True,
 * norm_before_gate = False, no d_mlp part):
 *   h = RMSNorm(x)
 *   [z | xBC | dt] = in_proj(h)     z [d_inner], xBC [d_inner + 2*ng*d_state], dt [heads]
 *   xBC = SiLU(causal_conv1d(xBC) + conv_bias)            (carries the conv state)
 *   [xs | B | C] = xBC
 *   y = SSD(xs, dt, A, B, C, D, dt_bias, softplus, chunk_size)   (carries the state)
 *   y = RMSNorm(y * SiLU(z)) per group of d_inner / ng channels, times gate_norm_w
 *   x += out_proj(y)                                       (residual add in the GEMM)
 * Decode: conv1d_update and ssd_update. */
#include <math.h>

#include "engine/engine_internal.h"

sf_status sf_mamba2_layer_forward(sf_session *s, const sf_pass *pass, int32_t layer, sf_error *err) {
  const sf_model_config *c = &s->model->cfg;
  const sf_mamba2_layer *w = &s->model->mamba2[layer];
  const int64_t rows = pass->rows, d = c->d_model, di = c->d_inner;
  const int64_t gn = (int64_t)c->n_groups * c->d_state, cd = s->conv_dim;
  const int64_t wproj = 2 * di + 2 * gn + c->ssm_heads;
  const size_t esz = s->esz;
  void *zxbcdt = s->buf[0], *xbc = s->buf[1], *y = s->buf[2];
  void *conv_state = sf_elem(s->conv_state, layer * s->conv_layer_elems, esz);
  float *ssm_state = s->ssm_state + layer * s->ssm_layer_elems;
  const int64_t ssm_batch_stride = (int64_t)c->ssm_heads * c->ssm_head_dim * c->d_state;

  sf_norm_params n = sf_engine_norm_of_x(s, SF_NORM_RMS, s->x, rows, w->norm_w, NULL, s->h);
  if (s->ops->norm(s->ctx, &n, err) != SF_OK) return sf_fail_context(err, "norm");
  SF_TRY(sf_engine_gemm(s, rows, wproj, d, s->h, d, w->in_proj_w, NULL, zxbcdt, wproj, 0,
                        "in_proj", err));

  const void *z = zxbcdt, *xbc_in = sf_elem(zxbcdt, di, esz);
  const void *dt = sf_elem(zxbcdt, 2 * di + 2 * gn, esz);
  const void *B = sf_elem(xbc, di, esz), *C = sf_elem(xbc, di + gn, esz);
  const float *dt_bias = w->dt_bias ? (const float *)w->dt_bias->data : NULL;
  const float *D = w->D ? (const float *)w->D->data : NULL;
  if (pass->decode) {
    sf_conv1d_update_params cv = {
        .dtype = s->dt, .batch = s->batch, .dim = cd, .width = c->d_conv, .silu = 1,
        .x = xbc_in, .x_batch_stride = wproj, .weight = w->conv_w->data,
        .bias = w->conv_b ? w->conv_b->data : NULL, .conv_state = conv_state,
        .state_batch_stride = cd * (c->d_conv - 1), .out = xbc, .out_batch_stride = cd};
    if (s->ops->conv1d_update(s->ctx, &cv, err) != SF_OK) return sf_fail_context(err, "conv1d_update");
    sf_ssd_update_params u = {
        .dtype = s->dt, .batch = s->batch, .n_heads = c->ssm_heads, .head_dim = c->ssm_head_dim,
        .n_groups = c->n_groups, .d_state = c->d_state, .x = xbc, .x_batch_stride = cd,
        .dt = dt, .dt_batch_stride = wproj, .dt_bias = dt_bias, .dt_softplus = 1,
        .dt_min = 0.0f, .dt_max = INFINITY, .A = (const float *)w->A->data,
        .B = B, .B_batch_stride = cd, .C = C, .C_batch_stride = cd, .D = D, .z = NULL,
        .state = ssm_state, .state_batch_stride = ssm_batch_stride, .out = y, .out_batch_stride = di};
    if (s->ops->ssd_update(s->ctx, &u, err) != SF_OK) return sf_fail_context(err, "ssd_update");
  } else {
    sf_conv1d_params cv = {
        .dtype = s->dt, .dim = cd, .width = c->d_conv, .silu = 1, .seqs = pass->seqs,
        .x = xbc_in, .x_token_stride = wproj, .weight = w->conv_w->data,
        .bias = w->conv_b ? w->conv_b->data : NULL, .conv_state = conv_state,
        .state_batch_stride = cd * (c->d_conv - 1), .has_initial_state = pass->has_initial_state,
        .out = xbc, .out_token_stride = cd};
    if (s->ops->conv1d(s->ctx, &cv, err) != SF_OK) return sf_fail_context(err, "conv1d");
    sf_ssd_params sc = {
        .dtype = s->dt, .n_heads = c->ssm_heads, .head_dim = c->ssm_head_dim,
        .n_groups = c->n_groups, .d_state = c->d_state, .chunk_size = c->chunk_size,
        .seqs = pass->seqs, .x = xbc, .x_token_stride = cd, .dt = dt, .dt_token_stride = wproj,
        .dt_bias = dt_bias, .dt_softplus = 1, .dt_min = 0.0f, .dt_max = INFINITY,
        .A = (const float *)w->A->data, .B = B, .B_token_stride = cd, .C = C, .C_token_stride = cd,
        .D = D, .z = NULL, .state = ssm_state, .state_batch_stride = ssm_batch_stride,
        .has_initial_state = pass->has_initial_state, .out = y, .out_token_stride = di};
    if (s->ops->ssd(s->ctx, &sc, err) != SF_OK) return sf_fail_context(err, "ssd");
  }

  sf_norm_params g = {.kind = SF_NORM_GATED_RMS, .dtype = s->dt, .n_rows = rows, .d = di,
                      .group_size = di / c->n_groups, .eps = c->norm_eps, .x = y,
                      .x_row_stride = di, .z = z, .z_row_stride = wproj,
                      .weight = w->gate_norm_w->data, .out = y, .out_row_stride = di};
  if (s->ops->norm(s->ctx, &g, err) != SF_OK) return sf_fail_context(err, "gated norm");
  return sf_engine_gemm(s, rows, d, di, y, di, w->out_proj_w, NULL, s->x, d, 1, "out_proj", err);
}
