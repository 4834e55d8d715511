/* Tensor-core attention prefill, head_dim 128 (see attention_mma.cuh): the
 * variant table. SF_AMMA_D128_DEFAULT is what the op runs on the mma.sync path
 * (sm_80+; on cc 9.0 the op takes the wgmma path, attention_wgmma.cu, where
 * it applies); the others are kept for tuning with bench_attention (all for
 * bf16 and f16). Measured on an H100 in bench/notes-attention.md. */
#include "attention_mma.cuh"

/* variant: warps, m16 tiles per warp, key tile, Q in registers, min blocks
 * per SM, flags (1 = one barrier per tile, 2 = skip unneeded rescales), f16 */
#define SF_AMMA_D128_VARIANTS(X) \
  X(0, 8, 1, 64, true, 1, 0, 1) \
  X(1, 4, 1, 64, true, 2, 0, 1) \
  X(2, 4, 2, 64, false, 2, 0, 1) \
  X(3, 4, 2, 64, false, 2, 1, 1) \
  X(4, 4, 2, 64, false, 2, 3, 1) \
  X(5, 4, 2, 32, false, 2, 3, 1) \
  X(6, 4, 1, 64, true, 2, 3, 1)

/* Default v4: causal 345-358 TFLOP/s, non-causal 338-352 at L 8k-16k on an
 * H100; v3 is within run-to-run noise of it (about 5%). */
enum { SF_AMMA_D128_DEFAULT = 4 };

int sf_attn_mma_default_d128(void) { return SF_AMMA_D128_DEFAULT; }

sf_attn_mma_info sf_attn_mma_info_d128(int variant) {
  switch (variant) {
#define X(v, W, MT, BK, QR, MB, FL, H) \
  case v: return sf_attn_mma_info{W * 16 * MT, BK, W, FL, H};
    SF_AMMA_D128_VARIANTS(X)
#undef X
  }
  return sf_attn_mma_info{0, 0, 0, 0, 0};
}

sf_status sf_attn_mma_d128(sf_op_ctx *ctx, const sf_attention_params *p, int variant, sf_error *err) {
  if (p->dtype == SF_F16) {
    switch (variant) {
#define X(v, W, MT, BK, QR, MB, FL, H) \
  case v: return sf_attn_mma_run<__half, 128, W, MT, BK, QR, MB, FL>(ctx, p, err);
      SF_AMMA_D128_VARIANTS(X)
#undef X
    }
  } else if (p->dtype == SF_BF16) {
    switch (variant) {
#define X(v, W, MT, BK, QR, MB, FL, H) \
  case v: return sf_attn_mma_run<__nv_bfloat16, 128, W, MT, BK, QR, MB, FL>(ctx, p, err);
      SF_AMMA_D128_VARIANTS(X)
#undef X
    }
  }
  return sf_fail(err, SF_ERR_UNSUPPORTED, "attention: no tensor-core variant %d for head_dim 128 %s", variant,
                 sf_dtype_name(p->dtype));
}
