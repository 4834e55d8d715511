/* One Mamba-2 block (mamba_ssm Block + Mamba2 mixer, rmsnorm = True,
 * norm_before_gate = False, no d_mlp part):
 *   h = RMSNorm(x)
 *   [z | xBC | dt] = in_proj(h)     z [d_inner], xBC [d_inner + 2*ng*d_state], dt [heads]
 *   xBC = SiLU(causal_conv1d(xBC) + conv_bias)            (carries the conv state)
 *   [xs | B | C] = xBC
 *   y = SSD(xs, dt, A, B, C, D, dt_bias, softplus, chunk_size)   (carries the state)
 *   y = RMSNorm(y * SiLU(z)) per group of d_inner / ng channels, times gate_norm_w
 *   x += out_proj(y)                                       (residual add in the GEMM)
 * Decode: conv1d_update and ssd_update. Context-parallel prefill: the states
 * arrive from the previous rank before the conv and leave for the next one
 * after the SSD (cp_mamba.h), as in mamba1.c. */
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
  const sf_cp_mamba_state cst = sf_engine_mamba_states(s, layer);
  void *conv_state = cst.conv;
  float *ssm_state = cst.ssm;
  const int64_t ssm_batch_stride = (int64_t)c->ssm_heads * c->ssm_head_dim * c->d_state;
  const int cp = s->cp && !pass->decode;
  sf_status st = s->cp_st;
  sf_error ce;

  sf_norm_params n = sf_engine_norm_of_x(s, SF_NORM_RMS, s->x, rows, w->norm_w, NULL, s->h);
  SF_LAYER_OP(st, s->ops->norm(s->ctx, &n, err), "norm");
  const void *z = zxbcdt, *xbc_in = sf_elem(zxbcdt, di, esz);
  /* Decode's conv update runs in in_proj's epilogue where fused. */
  const sf_conv1d_update_params cvu = {
      .dtype = s->dt, .batch = s->batch, .dim = cd, .width = c->d_conv, .silu = 1,
      .x = xbc_in, .x_batch_stride = wproj, .weight = w->conv_w->data,
      .bias = w->conv_b ? w->conv_b->data : NULL, .conv_state = conv_state,
      .state_batch_stride = cd * (c->d_conv - 1), .out = xbc, .out_batch_stride = cd};
  const int conv_fused = pass->decode && SF_FUSED(s, SF_FUSE_CONV);
  sf_gemm_params in_proj = sf_engine_gemm_params(s, rows, wproj, d, s->h, d, w->in_proj_w, NULL, zxbcdt, wproj, 0);
  if (conv_fused) in_proj.conv_update = &cvu;
  SF_LAYER_STEP(st, sf_engine_run_gemm(s, &in_proj, conv_fused ? "in_proj (with conv1d_update)" : "in_proj", err));

  const void *dt = sf_elem(zxbcdt, 2 * di + 2 * gn, esz);
  const void *B = sf_elem(xbc, di, esz), *C = sf_elem(xbc, di + gn, esz);
  const float *dt_bias = w->dt_bias ? (const float *)w->dt_bias->data : NULL;
  const float *D = w->D ? (const float *)w->D->data : NULL;
  if (pass->decode) {
    if (!conv_fused) SF_LAYER_OP(st, s->ops->conv1d_update(s->ctx, &cvu, err), "conv1d_update");
    sf_ssd_update_params u = {
        .dtype = s->dt, .batch = s->batch, .n_heads = c->ssm_heads, .head_dim = c->ssm_head_dim,
        .n_groups = c->n_groups, .d_state = c->d_state, .x = xbc, .x_batch_stride = cd,
        .dt = dt, .dt_batch_stride = wproj, .dt_bias = dt_bias, .dt_softplus = 1,
        .dt_min = 0.0f, .dt_max = INFINITY, .A = (const float *)w->A->data,
        .B = B, .B_batch_stride = cd, .C = C, .C_batch_stride = cd, .D = D, .z = NULL,
        .state = ssm_state, .state_batch_stride = ssm_batch_stride, .out = y, .out_batch_stride = di};
    SF_LAYER_OP(st, s->ops->ssd_update(s->ctx, &u, err), "ssd_update");
  } else {
    int has_init = pass->has_initial_state;
    if (cp) {
      const sf_status rc = sf_cp_mamba_layer_begin(s->cp, &cst, pass->has_initial_state, &has_init,
                                                   st == SF_OK ? err : &ce);
      st = sf_engine_cp_after(s, st, rc, 0, err, "context-parallel states in");
    }
    sf_conv1d_params cv = {
        .dtype = s->dt, .dim = cd, .width = c->d_conv, .silu = 1, .seqs = pass->seqs,
        .x = xbc_in, .x_token_stride = wproj, .weight = w->conv_w->data,
        .bias = w->conv_b ? w->conv_b->data : NULL, .conv_state = conv_state,
        .state_batch_stride = cd * (c->d_conv - 1), .has_initial_state = has_init,
        .out = xbc, .out_token_stride = cd};
    SF_LAYER_OP(st, s->ops->conv1d(s->ctx, &cv, err), "conv1d");
    sf_ssd_params sc = {
        .dtype = s->dt, .n_heads = c->ssm_heads, .head_dim = c->ssm_head_dim,
        .n_groups = c->n_groups, .d_state = c->d_state, .chunk_size = c->chunk_size,
        .seqs = pass->seqs, .x = xbc, .x_token_stride = cd, .dt = dt, .dt_token_stride = wproj,
        .dt_bias = dt_bias, .dt_softplus = 1, .dt_min = 0.0f, .dt_max = INFINITY,
        .A = (const float *)w->A->data, .B = B, .B_token_stride = cd, .C = C, .C_token_stride = cd,
        .D = D, .z = NULL, .state = ssm_state, .state_batch_stride = ssm_batch_stride,
        .has_initial_state = has_init, .out = y, .out_token_stride = di};
    SF_LAYER_OP(st, s->ops->ssd(s->ctx, &sc, err), "ssd");
    if (cp) {
      const sf_status rc = sf_cp_mamba_layer_end(s->cp, &cst, st == SF_OK ? err : &ce);
      st = sf_engine_cp_after(s, st, rc, 0, err, "context-parallel states out");
    }
  }

  sf_norm_params g = {.kind = SF_NORM_GATED_RMS, .dtype = s->dt, .n_rows = rows, .d = di,
                      .group_size = di / c->n_groups, .eps = c->norm_eps, .x = y,
                      .x_row_stride = di, .z = z, .z_row_stride = wproj,
                      .weight = w->gate_norm_w->data, .out = y, .out_row_stride = di};
  SF_LAYER_OP(st, s->ops->norm(s->ctx, &g, err), "gated norm");
  SF_LAYER_STEP(st, sf_engine_gemm(s, rows, d, di, y, di, w->out_proj_w, NULL, s->x, d, 1, "out_proj", err));
  return st;
}
