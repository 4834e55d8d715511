/* Tensor-core attention prefill, head_dim 64 (see attention_mma.cuh): the
 * variant table. SF_AMMA_D64_DEFAULT is what the op runs on the mma.sync path
 * (sm_80+; on cc 9.0 the op takes the wgmma path, attention_wgmma.cu, where
 * it applies); the others are kept for tuning with bench_attention (all for
 * bf16 and f16). Measured on an H100 in bench/notes-attention.md. */
#include "attention_mma.cuh"

/* variant: warps, m16 tiles per warp, key tile, Q in registers, min blocks
 * per SM, flags (1 = one barrier per tile, 2 = skip unneeded rescales), f16 */
#define SF_AMMA_D64_VARIANTS(X) \
  X(0, 8, 1, 64, true, 2, 0, 1) \
  X(1, 4, 1, 64, true, 4, 0, 1) \
  X(2, 4, 2, 64, true, 2, 0, 1) \
  X(3, 4, 2, 64, true, 2, 1, 1) \
  X(4, 4, 2, 64, true, 2, 3, 1) \
  X(5, 4, 2, 32, true, 2, 3, 1) \
  X(6, 8, 1, 64, true, 2, 3, 1)

/* Default v3: the best at every measured L on an H100 (causal 322-349
 * TFLOP/s, non-causal 335-345 at L 4k-16k); v4's rescale skip costs 5-10%
 * here. */
enum { SF_AMMA_D64_DEFAULT = 3 };

int sf_attn_mma_default_d64(void) { return SF_AMMA_D64_DEFAULT; }

sf_attn_mma_info sf_attn_mma_info_d64(int variant) {
  switch (variant) {
#define X(v, W, MT, BK, QR, MB, FL, H) \
  case v: return sf_attn_mma_info{W * 16 * MT, BK, W, FL, H};
    SF_AMMA_D64_VARIANTS(X)
#undef X
  }
  return sf_attn_mma_info{0, 0, 0, 0, 0};
}

sf_status sf_attn_mma_d64(sf_op_ctx *ctx, const sf_attention_params *p, int variant, sf_error *err) {
  if (p->dtype == SF_F16) {
    switch (variant) {
#define X(v, W, MT, BK, QR, MB, FL, H) \
  case v: return sf_attn_mma_run<__half, 64, W, MT, BK, QR, MB, FL>(ctx, p, err);
      SF_AMMA_D64_VARIANTS(X)
#undef X
    }
  } else if (p->dtype == SF_BF16) {
    switch (variant) {
#define X(v, W, MT, BK, QR, MB, FL, H) \
  case v: return sf_attn_mma_run<__nv_bfloat16, 64, W, MT, BK, QR, MB, FL>(ctx, p, err);
      SF_AMMA_D64_VARIANTS(X)
#undef X
    }
  }
  return sf_fail(err, SF_ERR_UNSUPPORTED, "attention: no tensor-core variant %d for head_dim 64 %s", variant,
                 sf_dtype_name(p->dtype));
}
