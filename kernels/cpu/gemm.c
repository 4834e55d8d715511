/* c[m, n] = a[m, k] . w[n, k]^T + bias[n]  (or c += ...), fp32 reference.
 *
 * Both a and w rows are contiguous along k, so every output is a dot product
 * of two contiguous vectors. The output is cut into MC x NC tiles (OpenMP
 * over tiles, so a one-row decode GEMM still spreads over the n columns);
 * inside a tile the k dimension is walked in KC blocks (a's and w's KC-slices
 * of a tile stay in L2) and a 4 x 4 register micro-kernel computes sixteen
 * dot products at once, vectorised along k with an OpenMP simd reduction.
 * Each output element is summed by one thread in a fixed order, so results
 * do not depend on the thread count. No BLAS. */

#include "cpu_ops.h"

enum { MR = 4, NR = 4, MC = 64, NC = 64, KC = 256 };

/* acc[r][c] += sum_kk a_r[kk] * w_c[kk], r < 4, c < 4. */
static inline void micro_4x4(const float *a0, const float *a1, const float *a2, const float *a3,
                             const float *w0, const float *w1, const float *w2, const float *w3,
                             int64_t kc, float acc[MR][NR]) {
  float s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
  float s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
#pragma omp simd reduction(+ : s00, s01, s02, s03, s10, s11, s12, s13, s20, s21, s22, s23, s30, s31, s32, s33)
  for (int64_t kk = 0; kk < kc; kk++) {
    const float x0 = a0[kk], x1 = a1[kk], x2 = a2[kk], x3 = a3[kk];
    const float y0 = w0[kk], y1 = w1[kk], y2 = w2[kk], y3 = w3[kk];
    s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3;
    s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3;
    s20 += x2 * y0; s21 += x2 * y1; s22 += x2 * y2; s23 += x2 * y3;
    s30 += x3 * y0; s31 += x3 * y1; s32 += x3 * y2; s33 += x3 * y3;
  }
  acc[0][0] += s00; acc[0][1] += s01; acc[0][2] += s02; acc[0][3] += s03;
  acc[1][0] += s10; acc[1][1] += s11; acc[1][2] += s12; acc[1][3] += s13;
  acc[2][0] += s20; acc[2][1] += s21; acc[2][2] += s22; acc[2][3] += s23;
  acc[3][0] += s30; acc[3][1] += s31; acc[3][2] += s32; acc[3][3] += s33;
}

/* One MC x NC output tile at (i0, j0) with mt x nt valid elements. */
static void gemm_tile(const sf_gemm_params *p, int64_t i0, int64_t j0, int64_t mt, int64_t nt) {
  const float *a = (const float *)p->a, *w = (const float *)p->w;
  const float *bias = (const float *)p->bias;
  float *c = (float *)p->c;
  float acc[MC][NC];
  for (int64_t i = 0; i < mt; i++)
    for (int64_t j = 0; j < nt; j++) acc[i][j] = 0.0f;

  for (int64_t k0 = 0; k0 < p->k; k0 += KC) {
    const int64_t kc = p->k - k0 < KC ? p->k - k0 : KC;
    for (int64_t i = 0; i < mt; i += MR) {
      /* Rows past the tile edge repeat the tile's first row; their sums are dropped. */
      const float *ar[MR];
      for (int r = 0; r < MR; r++)
        ar[r] = a + (i0 + (i + r < mt ? i + r : 0)) * p->lda + k0;
      for (int64_t j = 0; j < nt; j += NR) {
        const float *wr[NR];
        for (int s = 0; s < NR; s++)
          wr[s] = w + (j0 + (j + s < nt ? j + s : 0)) * p->ldw + k0;
        float blk[MR][NR] = {{0}};
        micro_4x4(ar[0], ar[1], ar[2], ar[3], wr[0], wr[1], wr[2], wr[3], kc, blk);
        for (int r = 0; r < MR && i + r < mt; r++)
          for (int s = 0; s < NR && j + s < nt; s++) acc[i + r][j + s] += blk[r][s];
      }
    }
  }

  for (int64_t i = 0; i < mt; i++) {
    float *crow = c + (i0 + i) * p->ldc + j0;
    for (int64_t j = 0; j < nt; j++) {
      float v = acc[i][j] + (bias ? bias[j0 + j] : 0.0f);
      crow[j] = p->accumulate ? crow[j] + v : v;
    }
  }
}

SF_CPU_OP(gemm, sf_gemm_params) {
  if (sf_gemm_has_epilogue(p)) return sf_gemm_unfused(ctx, p, sf_cpu_gemm, err);
  SF_CPU_REQUIRE_F32("gemm", p->dtype);
  SF_CPU_REQUIRE_F32("gemm (out)", p->out_dtype);
  if (p->m < 0 || p->n < 0 || p->k < 0)
    return sf_fail(err, SF_ERR_ARG, "gemm: negative size (m %lld, n %lld, k %lld)",
                   (long long)p->m, (long long)p->n, (long long)p->k);
  if (p->lda < p->k || p->ldw < p->k || p->ldc < p->n)
    return sf_fail(err, SF_ERR_ARG,
                   "gemm: leading dimensions too small (lda %lld, ldw %lld >= k = %lld; "
                   "ldc %lld >= n = %lld)",
                   (long long)p->lda, (long long)p->ldw, (long long)p->k, (long long)p->ldc,
                   (long long)p->n);
  if (p->m == 0 || p->n == 0) return SF_OK;
  if (!p->c || (p->k > 0 && (!p->a || !p->w)))
    return sf_fail(err, SF_ERR_ARG, "gemm: a, w and c must be non-NULL");

  const int64_t tm = (p->m + MC - 1) / MC, tn = (p->n + NC - 1) / NC;
  const int64_t tiles = tm * tn;
#pragma omp parallel for schedule(dynamic, 1) if (tiles > 1 && p->m * p->n * p->k > 65536)
  for (int64_t t = 0; t < tiles; t++) {
    const int64_t bi = t / tn, bj = t % tn;
    const int64_t i0 = bi * MC, j0 = bj * NC;
    const int64_t mt = p->m - i0 < MC ? p->m - i0 : MC;
    const int64_t nt = p->n - j0 < NC ? p->n - j0 : NC;
    gemm_tile(p, i0, j0, mt, nt);
  }
  return SF_OK;
}
