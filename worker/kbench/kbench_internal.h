/* kbench internals: each op's tensors (what is allocated, how it is filled,
 * whether it is read, written or both) and how they bind to the op's params
 * struct. The same layout serves the timed run (device pointers), the
 * check (host f32 pointers for the cpu backend, device pointers for the
 * cuda one) and the minimum-byte count (a cross-check of the formulas). */
#ifndef SCANFLASH_KBENCH_INTERNAL_H
#define SCANFLASH_KBENCH_INTERNAL_H

#include "kbench/kbench.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kb_elem { KB_ACT, KB_F32, KB_I32, KB_I64 } kb_elem;   /* ACT: the shape's dtype */
typedef enum kb_init {
  KB_UNIFORM,      /* uniform in [a, b] */
  KB_A_SCAN,       /* Mamba-1 A[c, n] = -(1 + n) * U(0.5, 1.5), n = i % d_state */
  KB_SEQ_START,    /* int64 start[b] = b * seqlen (padded batch) */
  KB_CONST,        /* every element a (int32 lengths, cache lengths) */
  KB_NONE          /* outputs: not filled for timing, NaN for the check */
} kb_init;
typedef enum kb_role { KB_META, KB_IN, KB_OUT, KB_INOUT } kb_role; /* META: sequence layout, not counted */

typedef struct kb_tensor {
  const char *name;
  int64_t n;                 /* elements */
  kb_elem elem;
  kb_init init;
  float a, b;
  kb_role role;
} kb_tensor;

enum { KB_MAX_T = 16 };

typedef struct kb_layout {
  kb_tensor t[KB_MAX_T];
  int nt;
} kb_layout;

typedef union kb_params {
  sf_attention_params att;
  sf_attention_decode_params dec;
  sf_selective_scan_params scan;
  sf_selective_state_update_params su;
  sf_ssd_params ssd;
  sf_ssd_update_params ssu;
  sf_conv1d_params conv;
  sf_conv1d_update_params cu;
  sf_gemm_params gemm;
} kb_params;

/* The tensors of shape s, in a fixed order per op. */
void kb_declare(const sf_kbench_shape *s, kb_layout *lay);
/* Params for s with ptr[i] the i-th tensor's data, computing in dtype
 * (the cpu backend: SF_F32 over host copies). */
void kb_bind(const sf_kbench_shape *s, sf_dtype dtype, void *const *ptr, kb_params *p);
/* Calls the op table entry of s's op and impl. */
sf_status kb_call(const sf_ops *ops, sf_op_ctx *ctx, const sf_kbench_shape *s, const kb_params *p,
                  sf_error *err);
/* Bytes of element type e in dtype dt. */
size_t kb_elem_size(kb_elem e, sf_dtype dt);
/* Minimum bytes from the layout: inputs once, outputs once, in/out twice. */
double kb_layout_bytes(const kb_layout *lay, sf_dtype dt);

/* Linear interpolation between order statistics of sorted x[0..n). */
double kb_quantile(const double *sorted, int n, double q);

#ifdef __cplusplus
}
#endif
#endif
