/* One Mamba-1 block (mamba_ssm Block + Mamba mixer, as in MambaLMHeadModel):
 *   h = RMSNorm(x)
 *   [xs | z] = in_proj(h)                       (no bias)
 *   xc = SiLU(causal_conv1d(xs) + conv_bias)    (carries the conv state)
 *   [dt_low | B | C] = x_proj(xc)               (no bias)
 *   delta = dt_proj.weight . dt_low             (bias goes into the scan)
 *   y = selective_scan(xc, delta, A, B, C, D, z, delta_bias = dt_proj.bias,
 *                      softplus)                (carries the SSM state)
 *   x += out_proj(y)                            (residual add in the GEMM)
 * Decode runs the same with conv1d_update and selective_state_update, the
 * latter doing dt_proj too where fused (SF_FUSE_DT_PROJ: a kernel fewer).
 * Context-parallel prefill: the conv and SSM states arrive from the previous
 * rank before the conv (sf_cp_mamba_layer_begin: has_initial_state) and
 * leave for the next one once the scan has written them (_end). */
#include <stdlib.h>

#include "engine/engine_internal.h"
#include "scanflash/log.h"

sf_status sf_mamba1_layer_forward(sf_session *s, const sf_pass *pass, int32_t layer, sf_error *err) {
  const sf_model_config *c = &s->model->cfg;
  const sf_mamba1_layer *w = &s->model->mamba1[layer];
  const int64_t rows = pass->rows, d = c->d_model, di = c->d_inner;
  const int64_t R = c->dt_rank, N = c->d_state, wdbl = R + 2 * N;
  const size_t esz = s->esz;
  void *xz = s->buf[0], *xc = s->buf[1], *xdbl = s->buf[2], *delta = s->buf[3], *y = s->buf[4];
  const sf_cp_mamba_state cst = sf_engine_mamba_states(s, layer);
  void *conv_state = cst.conv;
  float *ssm_state = cst.ssm;
  const int cp = s->cp && !pass->decode;
  sf_status st = s->cp_st;
  sf_error ce;

  sf_norm_params n = sf_engine_norm_of_x(s, SF_NORM_RMS, s->x, rows, w->norm_w, NULL, s->h);
  SF_LAYER_OP(st, s->ops->norm(s->ctx, &n, err), "norm");
  /* Decode's conv update runs in in_proj's epilogue where fused. */
  const sf_conv1d_update_params cvu = {
      .dtype = s->dt, .batch = s->batch, .dim = di, .width = c->d_conv, .silu = 1,
      .x = xz, .x_batch_stride = 2 * di, .weight = w->conv_w->data,
      .bias = w->conv_b ? w->conv_b->data : NULL, .conv_state = conv_state,
      .state_batch_stride = di * (c->d_conv - 1), .out = xc, .out_batch_stride = di};
  const int conv_fused = pass->decode && SF_FUSED(s, SF_FUSE_CONV);
  sf_gemm_params in_proj = sf_engine_gemm_params(s, rows, 2 * di, d, s->h, d, w->in_proj_w, NULL, xz, 2 * di, 0);
  if (conv_fused) in_proj.conv_update = &cvu;
  SF_LAYER_STEP(st, sf_engine_run_gemm(s, &in_proj, conv_fused ? "in_proj (with conv1d_update)" : "in_proj", err));

  int has_init = pass->has_initial_state;
  if (cp) {
    const sf_status rc = sf_cp_mamba_layer_begin(s->cp, &cst, pass->has_initial_state, &has_init,
                                                 st == SF_OK ? err : &ce);
    st = sf_engine_cp_after(s, st, rc, 0, err, "context-parallel states in");
  }
  if (pass->decode) {
    if (!conv_fused) SF_LAYER_OP(st, s->ops->conv1d_update(s->ctx, &cvu, err), "conv1d_update");
  } else {
    sf_conv1d_params cv = {
        .dtype = s->dt, .dim = di, .width = c->d_conv, .silu = 1, .seqs = pass->seqs,
        .x = xz, .x_token_stride = 2 * di, .weight = w->conv_w->data,
        .bias = w->conv_b ? w->conv_b->data : NULL, .conv_state = conv_state,
        .state_batch_stride = di * (c->d_conv - 1), .has_initial_state = has_init,
        .out = xc, .out_token_stride = di};
    SF_LAYER_OP(st, s->ops->conv1d(s->ctx, &cv, err), "conv1d");
  }

  SF_LAYER_STEP(st, sf_engine_gemm(s, rows, wdbl, di, xc, di, w->x_proj_w, NULL, xdbl, wdbl, 0, "x_proj", err));
  /* dt_proj over the first dt_rank columns of x_dbl (lda = its full width);
   * in decode the state update does it where fused. */
  const int dt_fused = pass->decode && SF_FUSED(s, SF_FUSE_DT_PROJ);
  if (!dt_fused)
    SF_LAYER_STEP(st, sf_engine_gemm(s, rows, di, R, xdbl, wdbl, w->dt_proj_w, NULL, delta, di, 0, "dt_proj", err));

  const void *B = sf_elem(xdbl, R, esz), *C = sf_elem(xdbl, R + N, esz);
  const void *z = sf_elem(xz, di, esz);
  const float *dt_bias = w->dt_proj_b ? (const float *)w->dt_proj_b->data : NULL;
  const float *D = w->D ? (const float *)w->D->data : NULL;
  if (pass->decode) {
    sf_selective_state_update_params u = {
        .dtype = s->dt, .batch = s->batch, .dim = di, .d_state = (int32_t)N,
        .x = xc, .x_batch_stride = di, .dt = delta, .dt_batch_stride = di,
        .dt_bias = dt_bias, .dt_softplus = 1, .A = (const float *)w->A->data,
        .B = B, .B_batch_stride = wdbl, .C = C, .C_batch_stride = wdbl, .D = D,
        .z = z, .z_batch_stride = 2 * di, .state = ssm_state, .state_batch_stride = di * N,
        .out = y, .out_batch_stride = di};
    if (dt_fused) u.dt = xdbl, u.dt_batch_stride = wdbl, u.dt_proj_w = w->dt_proj_w->data, u.dt_rank = (int32_t)R;
    SF_LAYER_OP(st, s->ops->selective_state_update(s->ctx, &u, err), "selective_state_update");
  } else {
    sf_selective_scan_params sc = {
        .dtype = s->dt, .dim = di, .d_state = (int32_t)N, .chunk_size = 0, .seqs = pass->seqs,
        .u = xc, .u_token_stride = di, .delta = delta, .delta_token_stride = di,
        .delta_bias = dt_bias, .delta_softplus = 1, .A = (const float *)w->A->data,
        .B = B, .B_token_stride = wdbl, .C = C, .C_token_stride = wdbl, .D = D,
        .z = z, .z_token_stride = 2 * di, .state = ssm_state, .state_batch_stride = di * N,
        .has_initial_state = has_init, .out = y, .out_token_stride = di};
    SF_LAYER_OP(st, s->ops->selective_scan(s->ctx, &sc, err), "selective_scan");
  }
  if (cp) {
    const sf_status rc = sf_cp_mamba_layer_end(s->cp, &cst, st == SF_OK ? err : &ce);
    st = sf_engine_cp_after(s, st, rc, 0, err, "context-parallel states out");
  }
  SF_LAYER_STEP(st, sf_engine_gemm(s, rows, d, di, y, di, w->out_proj_w, NULL, s->x, d, 1, "out_proj", err));
  return st;
}

sf_status sf_mamba1_decode_layers(sf_session *s, const sf_pass *pass, int *done, sf_error *err) {
  const sf_model_config *c = &s->model->cfg;
  *done = 0;
  if (pass->decode) s->persistent_ran = 0;
  if (!pass->decode || s->cp || s->batch != 1 || !s->x_f32 || !SF_FUSED(s, SF_FUSE_PERSISTENT) ||
      !s->ops->mamba1_decode || s->persistent_refused)
    return SF_OK;
  sf_mamba1_layer_ptrs *L = calloc((size_t)c->n_layers, sizeof *L);
  if (!L) return sf_fail(err, SF_ERR_NOMEM, "mamba1_decode: host memory for %d layers", (int)c->n_layers);
  for (int32_t l = 0; l < c->n_layers; l++) {
    const sf_mamba1_layer *w = &s->model->mamba1[l];
    const sf_cp_mamba_state cst = sf_engine_mamba_states(s, l);
    L[l] = (sf_mamba1_layer_ptrs){
        .norm_w = w->norm_w->data, .in_proj_w = w->in_proj_w->data, .conv_w = w->conv_w->data,
        .conv_b = w->conv_b ? w->conv_b->data : NULL, .x_proj_w = w->x_proj_w->data,
        .dt_proj_w = w->dt_proj_w->data, .out_proj_w = w->out_proj_w->data,
        .dt_bias = w->dt_proj_b ? (const float *)w->dt_proj_b->data : NULL, .A = (const float *)w->A->data,
        .D = w->D ? (const float *)w->D->data : NULL, .conv_state = cst.conv, .ssm_state = cst.ssm};
  }
  const sf_mamba1_decode_params p = {
      .dtype = s->dt, .n_layers = c->n_layers, .d_model = c->d_model, .d_inner = c->d_inner,
      .d_state = (int32_t)c->d_state, .dt_rank = (int32_t)c->dt_rank, .d_conv = (int32_t)c->d_conv,
      .eps = c->norm_eps, .x = s->x, .layers = L};
  sf_error why;
  sf_error_clear(&why);
  const sf_status rc = s->ops->mamba1_decode(s->ctx, &p, &why);
  free(L);
  if (rc == SF_ERR_UNSUPPORTED) {
    /* Not this shape or device: the ops run the step, as with the fusion off. */
    sf_log(SF_LOG_INFO, "decode runs op by op: %s", why.msg);
    s->persistent_refused = 1;
    return SF_OK;
  }
  if (rc != SF_OK) {
    *err = why;
    return sf_fail_context(err, "mamba1_decode");
  }
  *done = 1;
  s->persistent_ran = 1;
  return SF_OK;
}
