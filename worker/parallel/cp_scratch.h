/* Backend memory the context-parallel algorithms borrow for one call: a
 * list of allocations freed together, and host arrays copied in (sf_seqs
 * start/len and past_len live in backend memory for the ops). */
#ifndef SCANFLASH_PARALLEL_CP_SCRATCH_H
#define SCANFLASH_PARALLEL_CP_SCRATCH_H

#include "ops/op_table.h"

enum { SF_CP_SCRATCH_MAX = 16 };

typedef struct sf_cp_scratch {
  sf_op_ctx *ctx;
  void *ptr[SF_CP_SCRATCH_MAX];
  int n;
} sf_cp_scratch;

/* *out = bytes of backend memory (at least 1, so empty shapes need no case). */
sf_status sf_cp_scratch_alloc(sf_cp_scratch *s, size_t bytes, void **out, sf_error *err);
/* *out = a backend copy of the host array src. */
sf_status sf_cp_scratch_upload(sf_cp_scratch *s, const void *src, size_t bytes, void **out, sf_error *err);
/* dst[0, n) = -inf (fp32, backend memory): the log-sum-exp of no keys at
 * all, an empty accumulator of attention_merge. */
sf_status sf_cp_fill_neg_inf(sf_op_ctx *ctx, float *dst, size_t n, sf_error *err);
/* *out = n such values in new scratch memory. */
sf_status sf_cp_scratch_neg_inf(sf_cp_scratch *s, size_t n, float **out, sf_error *err);
/* Frees every allocation (after a sync: the ops may still read them). */
void sf_cp_scratch_free(sf_cp_scratch *s);

/* Byte arithmetic on backend pointers: element i of a tensor of dtype t. */
static inline void *sf_cp_elem(const void *base, int64_t i, sf_dtype t) {
  return (char *)base + i * (int64_t)sf_dtype_size(t);
}

/* Whether k partial attentions of dtype t are merged through an f32
 * accumulator (then one last merge into the output) rather than into the
 * output itself. Each merge into a 16-bit output rounds it once more, so k
 * parts merged straight in round k-1 times (the first is a copy) against
 * once through f32; with k <= 2 both round once and give the same bits, so
 * the accumulator (rows x heads x head_dim x 4 bytes) is only paid for
 * k > 2. Every rank decides alike (same dtype, same k). */
static inline int sf_cp_f32_acc(sf_dtype t, int k) { return t != SF_F32 && k > 2; }

#endif
