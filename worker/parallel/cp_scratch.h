/* Backend memory the context-parallel algorithms borrow: a list of
 * allocations (slots), and host arrays copied in (sf_seqs start/len and
 * past_len live in backend memory for the ops). A call asks for its buffers
 * in the same order every time, so a scratch kept across calls (keep: one
 * per session and call kind) hands slot i of a call the memory slot i had
 * in the last one, growing it when too small: a decode step then allocates
 * nothing and never waits for the device (freeing a cuda buffer under
 * running kernels needs a sync first). A scratch not kept frees its slots
 * when the call ends. */
#ifndef SCANFLASH_PARALLEL_CP_SCRATCH_H
#define SCANFLASH_PARALLEL_CP_SCRATCH_H

#include "ops/op_table.h"

enum { SF_CP_SCRATCH_MAX = 16 };

typedef struct sf_cp_scratch {
  sf_op_ctx *ctx;
  void *ptr[SF_CP_SCRATCH_MAX];
  size_t cap[SF_CP_SCRATCH_MAX];
  int n;    /* slots handed out in the current call */
  int held; /* slots holding memory */
  int keep; /* the memory outlives the call */
} sf_cp_scratch;

void sf_cp_scratch_init(sf_cp_scratch *s, sf_op_ctx *ctx, int keep);
/* A call's start (slot 0 next) and end (frees everything unless kept). */
void sf_cp_scratch_begin(sf_cp_scratch *s);
void sf_cp_scratch_end(sf_cp_scratch *s);
/* *out = bytes of backend memory (at least 1, so empty shapes need no case),
 * the call's next slot. */
sf_status sf_cp_scratch_alloc(sf_cp_scratch *s, size_t bytes, void **out, sf_error *err);
/* *out = a backend copy of the host array src. */
sf_status sf_cp_scratch_upload(sf_cp_scratch *s, const void *src, size_t bytes, void **out, sf_error *err);
/* dst[0, n) = -inf (fp32, backend memory): the log-sum-exp of no keys at
 * all, an empty accumulator of attention_merge. */
sf_status sf_cp_fill_neg_inf(sf_op_ctx *ctx, float *dst, size_t n, sf_error *err);
/* *out = n such values in new scratch memory. */
sf_status sf_cp_scratch_neg_inf(sf_cp_scratch *s, size_t n, float **out, sf_error *err);
/* Frees every slot (after a sync: the ops may still read them); the scratch
 * is empty and usable again. */
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
