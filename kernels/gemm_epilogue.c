/* The epilogues of sf_gemm_params (ops/basic.h: an activation, a Mamba conv
 * update) run as the ops they stand for, on whatever backend ctx is: what a
 * backend does when it has no fused kernel for a problem, and the cpu
 * backend's definition of the fused result. */
#include "ops/op_table.h"

int sf_gemm_has_epilogue(const sf_gemm_params *p) { return p->has_act || p->conv_update != NULL; }

/* Whether conv_update's x is the view of c the contract asks for. */
static sf_status check_conv_view(const sf_gemm_params *p, sf_error *err) {
  const sf_conv1d_update_params *cv = p->conv_update;
  if (p->has_act || p->accumulate)
    return sf_fail(err, SF_ERR_ARG, "gemm: a conv update epilogue cannot be combined with an activation or accumulate");
  if (cv->dtype != p->dtype || p->out_dtype != p->dtype)
    return sf_fail(err, SF_ERR_ARG, "gemm: the conv update epilogue needs one dtype (a %s, c %s, conv %s)",
                   sf_dtype_name(p->dtype), sf_dtype_name(p->out_dtype), sf_dtype_name(cv->dtype));
  const size_t esz = sf_dtype_size(p->dtype);
  const char *c = (const char *)p->c, *x = (const char *)cv->x;
  const ptrdiff_t off = x && c ? x - c : -1;
  if (off < 0 || off % (ptrdiff_t)esz != 0 || (int64_t)(off / (ptrdiff_t)esz) + cv->dim > p->n ||
      cv->x_batch_stride != p->ldc || cv->batch != p->m)
    return sf_fail(err, SF_ERR_ARG,
                   "gemm: the conv update's x must be columns of c (offset %lld bytes, dim %lld, n %lld, "
                   "x_batch_stride %lld vs ldc %lld, batch %d vs m %lld)",
                   (long long)off, (long long)cv->dim, (long long)p->n, (long long)cv->x_batch_stride,
                   (long long)p->ldc, (int)cv->batch, (long long)p->m);
  return SF_OK;
}

sf_status sf_gemm_check_epilogue(const sf_gemm_params *p, sf_error *err) {
  if (p->has_act && p->accumulate)
    return sf_fail(err, SF_ERR_ARG, "gemm: an activation epilogue (has_act) cannot be combined with accumulate");
  if (p->has_act && p->act != SF_ACT_GELU && p->act != SF_ACT_SILU && p->act != SF_ACT_SOFTPLUS)
    return sf_fail(err, SF_ERR_ARG, "gemm: unknown activation %d", (int)p->act);
  if (p->conv_update) return check_conv_view(p, err);
  return SF_OK;
}

sf_status sf_gemm_unfused(sf_op_ctx *ctx, const sf_gemm_params *p,
                          sf_status (*plain)(sf_op_ctx *, const sf_gemm_params *, sf_error *), sf_error *err) {
  SF_TRY(sf_gemm_check_epilogue(p, err));
  sf_gemm_params g = *p;
  g.has_act = 0;
  g.conv_update = NULL;
  SF_TRY(plain(ctx, &g, err));
  if (p->has_act && p->m > 0 && p->n > 0) {
    sf_activation_params a = {.kind = p->act, .dtype = p->out_dtype, .n_rows = p->m, .d = p->n, .x = p->c,
                              .x_row_stride = p->ldc, .out = p->c, .out_row_stride = p->ldc};
    if (ctx->ops->activation(ctx, &a, err) != SF_OK) return sf_fail_context(err, "gemm (its activation)");
  }
  if (p->conv_update && ctx->ops->conv1d_update(ctx, p->conv_update, err) != SF_OK)
    return sf_fail_context(err, "gemm (its conv update)");
  return SF_OK;
}
