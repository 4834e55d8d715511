/* The model-level forward: token embedding into the residual stream, the
 * layers of the model's family, and the head (final norm + lm head). */
#include "engine/engine_internal.h"

sf_gemm_params sf_engine_gemm_params(sf_session *s, int64_t m, int64_t n, int64_t k, const void *a, int64_t lda,
                                     const sf_tensor *w, const sf_tensor *bias, void *c, int64_t ldc, int residual) {
  sf_gemm_params g = {.dtype = s->dt, .out_dtype = residual ? s->rdt : s->dt, .m = m, .n = n,
                      .k = k, .a = a, .lda = lda, .w = w->data, .ldw = k,
                      .bias = bias ? bias->data : NULL, .c = c, .ldc = ldc, .accumulate = residual};
  return g;
}

sf_status sf_engine_run_gemm(sf_session *s, const sf_gemm_params *g, const char *what, sf_error *err) {
  if (s->ops->gemm(s->ctx, g, err) != SF_OK) return sf_fail_context(err, "%s", what);
  return SF_OK;
}

sf_status sf_engine_gemm(sf_session *s, int64_t m, int64_t n, int64_t k, const void *a, int64_t lda,
                         const sf_tensor *w, const sf_tensor *bias, void *c, int64_t ldc,
                         int residual, const char *what, sf_error *err) {
  const sf_gemm_params g = sf_engine_gemm_params(s, m, n, k, a, lda, w, bias, c, ldc, residual);
  return sf_engine_run_gemm(s, &g, what, err);
}

sf_norm_params sf_engine_norm_of_x(const sf_session *s, sf_norm_kind kind, const void *x, int64_t rows,
                                   const sf_tensor *w, const sf_tensor *b, void *out) {
  const sf_model_config *c = &s->model->cfg;
  return (sf_norm_params){.kind = kind, .dtype = s->dt, .x_f32 = s->x_f32, .n_rows = rows,
                          .d = c->d_model, .eps = c->norm_eps, .x = x, .x_row_stride = c->d_model,
                          .weight = w->data, .bias = b ? b->data : NULL, .out = out,
                          .out_row_stride = c->d_model};
}

/* One rank alone: the first failure returns. In a context-parallel pass
 * (s->cp) a failure is kept in s->cp_st and the remaining layers still
 * make their collective calls (the layers skip their ops: SF_LAYER_OP), so
 * no peer is left waiting; the caller agrees the status at the end
 * (sf_engine_cp_end). A collective's own failure (s->cp_shared) is every
 * rank's already and returns at once. The caller sets cp_st (SF_OK, or a
 * failure of its own before the body) and clears cp_shared. */
sf_status sf_forward_body(sf_session *s, const sf_pass *pass, sf_error *err) {
  const sf_model *m = s->model;
  const sf_model_config *c = &m->cfg;
  if (!s->cp) s->cp_st = SF_OK;
  sf_embedding_params e = {
      .dtype = s->dt, .out_f32 = s->x_f32, .n_tokens = pass->rows, .d = c->d_model, .vocab = c->vocab_size,
      .ids = s->d_ids, .table = m->embed->data, .table_row_stride = c->d_model,
      .out = s->x, .out_row_stride = c->d_model};
  if (s->cp_st == SF_OK && s->ops->embedding(s->ctx, &e, err) != SF_OK) {
    sf_fail_context(err, "embedding");
    if (!s->cp) return err->code;
    s->cp_st = err->code;
  }
  if (c->arch == SF_ARCH_MAMBA1 && s->cp_st == SF_OK) {
    int done = 0;
    SF_TRY(sf_mamba1_decode_layers(s, pass, &done, err));
    if (done) return SF_OK;
  }
  for (int32_t l = 0; l < c->n_layers; l++) {
    const sf_status before = s->cp_st;
    sf_status rc;
    switch (c->arch) {
      case SF_ARCH_MAMBA1: rc = sf_mamba1_layer_forward(s, pass, l, err); break;
      case SF_ARCH_MAMBA2: rc = sf_mamba2_layer_forward(s, pass, l, err); break;
      case SF_ARCH_TRANSFORMER: rc = sf_transformer_layer_forward(s, pass, l, err); break;
      default: return sf_fail(err, SF_ERR_INTERNAL, "forward: unknown architecture %d", (int)c->arch);
    }
    if (rc != SF_OK && before == SF_OK) {
      sf_fail_context(err, "layer %d", (int)l);
      if (!s->cp) return rc;
      s->cp_st = rc;
    }
    if (s->cp_shared) return rc;
  }
  return s->cp_st;
}

sf_status sf_forward_head(sf_session *s, void *src, int64_t rows, float *logits, sf_error *err) {
  const sf_model *m = s->model;
  const sf_model_config *c = &m->cfg;
  const int layer_norm = c->arch == SF_ARCH_TRANSFORMER;
  sf_norm_params n = sf_engine_norm_of_x(s, layer_norm ? SF_NORM_LAYER : SF_NORM_RMS, src, rows,
                                         m->final_norm_w, layer_norm ? m->final_norm_b : NULL, s->h);
  if (s->ops->norm(s->ctx, &n, err) != SF_OK) return sf_fail_context(err, "final norm");
  sf_gemm_params g = {
      .dtype = s->dt, .out_dtype = SF_F32, .m = rows, .n = c->vocab_size, .k = c->d_model,
      .a = s->h, .lda = c->d_model, .w = m->lm_head->data, .ldw = c->d_model,
      .c = logits, .ldc = c->vocab_size};
  if (s->ops->gemm(s->ctx, &g, err) != SF_OK) return sf_fail_context(err, "lm head");
  return SF_OK;
}
