/* Warp-level tensor-core and async-copy helpers, first written for the
 * chunked SSD kernels (ssd_chunked.cu) and shared with the selective scan
 * (selective_scan.cu) and the mma.sync attention (attention_mma.cuh: the
 * mma and packing of sfm<T>): mma.sync m16n8k16 (bf16/f16 in, fp32
 * accumulate), ldmatrix, cp.async with zero fill, bf16x2/f16x2 packing and
 * products, and the fast base-2 exponential. CUDA C++, included by .cu files only.
 *
 * Fragment layouts of mma.m16n8k16 (g = lane / 4, t = lane % 4):
 *   A 16x16 (row-major m x k): a0 = (g, 2t..2t+1), a1 = (g+8, 2t..),
 *                              a2 = (g, 2t+8..),   a3 = (g+8, 2t+8..)
 *   B 16x8  (k x n):           b0 = (k 2t..2t+1, n g), b1 = (k 2t+8.., n g)
 *   C 16x8  (m x n):           c0,c1 = (g, 2t..2t+1), c2,c3 = (g+8, 2t..)
 * Two C tiles side by side (n 0..7, 8..15), packed to 16 bits, are exactly
 * an A fragment: {c01(n0), c23(n0), c01(n1), c23(n1)}. */
#ifndef SCANFLASH_KERNELS_CUDA_SSD_MMA_CUH
#define SCANFLASH_KERNELS_CUDA_SSD_MMA_CUH

#include "cuda_common.cuh"

#define SFM_LOG2E 1.4426950408889634f

template <typename T> struct sfm;

template <> struct sfm<__nv_bfloat16> {
  static __device__ __forceinline__ void mma(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
  }
  static __device__ __forceinline__ float2 unpack(uint32_t u) {
    return make_float2(__uint_as_float(u << 16), __uint_as_float(u & 0xffff0000u));
  }
  /* element-wise product of two bf16x2 words, rounded once (fma.rn.bf16x2 on sm_80) */
  static __device__ __forceinline__ uint32_t mul2(uint32_t a, uint32_t b) {
    __nv_bfloat162 r = __hmul2(*reinterpret_cast<__nv_bfloat162 *>(&a), *reinterpret_cast<__nv_bfloat162 *>(&b));
    return *reinterpret_cast<uint32_t *>(&r);
  }
};

template <> struct sfm<__half> {
  static __device__ __forceinline__ void mma(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
  }
  static __device__ __forceinline__ float2 unpack(uint32_t u) {
    __half2 v = *reinterpret_cast<__half2 *>(&u);
    return __half22float2(v);
  }
  static __device__ __forceinline__ uint32_t mul2(uint32_t a, uint32_t b) {
    __half2 r = __hmul2(*reinterpret_cast<__half2 *>(&a), *reinterpret_cast<__half2 *>(&b));
    return *reinterpret_cast<uint32_t *>(&r);
  }
};

/* 2^x on the special-function unit (relative error ~2^-22; -inf -> 0). */
__device__ __forceinline__ float sfm_ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

/* 16-byte global store (the compiler splits some uint4 stores in four). */
__device__ __forceinline__ void sfm_st16(void *gmem, uint4 v) {
  asm volatile("st.global.v4.b32 [%0], {%1,%2,%3,%4};\n" ::"l"(gmem), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
               : "memory");
}

__device__ __forceinline__ unsigned sfm_smem(const void *p) {
  return (unsigned)__cvta_generic_to_shared(p);
}

/* 16 bytes global -> shared, bypassing L1; zero-filled when !pred. */
__device__ __forceinline__ void sfm_cp16(void *smem, const void *gmem, bool pred) {
  const int n = pred ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(sfm_smem(smem)), "l"(gmem), "r"(n)
               : "memory");
}
__device__ __forceinline__ void sfm_cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void sfm_cp_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void sfm_ldsm4(uint32_t r[4], const void *smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(sfm_smem(smem))
               : "memory");
}
__device__ __forceinline__ void sfm_ldsm4_t(uint32_t r[4], const void *smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(sfm_smem(smem))
               : "memory");
}

/* Per-lane smem addresses for ldmatrix.x4 (lane l, r = l % 8), element
 * offsets (row, col) within a 16x16 tile at (0, 0):
 *  - A fragment from row-major A[m][k]:           (l & 15, 8 (l >> 4))
 *  - A fragment from At[k][m] (A = Atᵀ), .trans:   (r + 8 (l >> 4), 8 ((l >> 3) & 1))
 *  - B fragments of two n-tiles from Bt[n][k]:     (r + 8 (l >> 4), 8 ((l >> 3) & 1))
 *    -> {b0(n 0..7), b1(n 0..7), b0(n 8..15), b1(n 8..15)}
 *  - B fragments of two n-tiles from B[k][n], .trans: (r + 8 ((l >> 3) & 1), 8 (l >> 4))
 *    -> {b0(n 0..7), b1(n 0..7), b0(n 8..15), b1(n 8..15)} */
__device__ __forceinline__ int sfm_row_a(int l) { return l & 15; }
__device__ __forceinline__ int sfm_col_a(int l) { return (l >> 4) << 3; }
__device__ __forceinline__ int sfm_row_x(int l) { return (l & 7) + ((l >> 4) << 3); }   /* At.trans, Bt */
__device__ __forceinline__ int sfm_col_x(int l) { return ((l >> 3) & 1) << 3; }
__device__ __forceinline__ int sfm_row_bt(int l) { return (l & 7) + (((l >> 3) & 1) << 3); } /* B[k][n].trans */
__device__ __forceinline__ int sfm_col_bt(int l) { return (l >> 4) << 3; }

#endif
