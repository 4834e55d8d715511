/* The activation epilogue of sf_gemm_params (ops/basic.h) run as the ops it
 * stands for, on whatever backend ctx is: what a backend does when it has
 * no fused kernel for a problem, and the cpu backend's definition of the
 * fused result. */
#include "ops/op_table.h"

sf_status sf_gemm_check_epilogue(const sf_gemm_params *p, sf_error *err) {
  if (p->has_act && p->accumulate)
    return sf_fail(err, SF_ERR_ARG, "gemm: an activation epilogue (has_act) cannot be combined with accumulate");
  if (p->has_act && p->act != SF_ACT_GELU && p->act != SF_ACT_SILU && p->act != SF_ACT_SOFTPLUS)
    return sf_fail(err, SF_ERR_ARG, "gemm: unknown activation %d", (int)p->act);
  return SF_OK;
}

sf_status sf_gemm_unfused(sf_op_ctx *ctx, const sf_gemm_params *p,
                          sf_status (*plain)(sf_op_ctx *, const sf_gemm_params *, sf_error *), sf_error *err) {
  SF_TRY(sf_gemm_check_epilogue(p, err));
  sf_gemm_params g = *p;
  g.has_act = 0;
  SF_TRY(plain(ctx, &g, err));
  if (p->has_act && p->m > 0 && p->n > 0) {
    sf_activation_params a = {.kind = p->act, .dtype = p->out_dtype, .n_rows = p->m, .d = p->n, .x = p->c,
                              .x_row_stride = p->ldc, .out = p->c, .out_row_stride = p->ldc};
    if (ctx->ops->activation(ctx, &a, err) != SF_OK) return sf_fail_context(err, "gemm (its activation)");
  }
  return SF_OK;
}
