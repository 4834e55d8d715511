/* Argument checks shared by several cpu ops (one message per broken rule). */
#include "cpu_common.h"

sf_status sf_cpu_check_seqs(const char *op, const sf_seqs *s, sf_error *err) {
  if (s->batch < 0) return sf_fail(err, SF_ERR_ARG, "%s: seqs.batch must be >= 0, got %d", op, s->batch);
  if (s->max_len < 0)
    return sf_fail(err, SF_ERR_ARG, "%s: seqs.max_len must be >= 0, got %lld", op, (long long)s->max_len);
  if (s->batch > 0 && (!s->start || !s->len))
    return sf_fail(err, SF_ERR_ARG, "%s: seqs.start and seqs.len are required", op);
  for (int32_t b = 0; b < s->batch; b++) {
    if (s->len[b] < 0 || s->len[b] > s->max_len)
      return sf_fail(err, SF_ERR_ARG, "%s: seqs.len[%d] = %d is outside [0, max_len = %lld]", op, b,
                     s->len[b], (long long)s->max_len);
    if (s->start[b] < 0)
      return sf_fail(err, SF_ERR_ARG, "%s: seqs.start[%d] = %lld is negative", op, b, (long long)s->start[b]);
  }
  return SF_OK;
}

sf_status sf_cpu_check_ssd(const char *op, const sf_ssd_params *p, sf_error *err) {
  if (p->n_heads < 1 || p->head_dim < 1 || p->n_groups < 1 || p->d_state < 1)
    return sf_fail(err, SF_ERR_ARG, "%s: n_heads %d, head_dim %d, n_groups %d, d_state %d must all be >= 1", op,
                   p->n_heads, p->head_dim, p->n_groups, p->d_state);
  if (p->n_heads % p->n_groups)
    return sf_fail(err, SF_ERR_ARG, "%s: n_heads %d is not a multiple of n_groups %d", op, p->n_heads,
                   p->n_groups);
  /* The sequential form ignores chunk_size; it is checked for one contract. */
  if (p->chunk_size < 0)
    return sf_fail(err, SF_ERR_ARG, "%s: chunk_size must be >= 1 (0 = default), got %d", op, p->chunk_size);
  if (!(p->dt_min <= p->dt_max))
    return sf_fail(err, SF_ERR_ARG, "%s: dt_min %g > dt_max %g", op, (double)p->dt_min, (double)p->dt_max);
  SF_TRY(sf_cpu_check_seqs(op, &p->seqs, err));
  if (p->seqs.batch > 0 && (!p->x || !p->dt || !p->A || !p->B || !p->C || !p->state || !p->out))
    return sf_fail(err, SF_ERR_ARG, "%s: x, dt, A, B, C, state and out are required", op);
  const int64_t per_seq = (int64_t)p->n_heads * p->head_dim * p->d_state;
  if (p->seqs.batch > 1 && p->state_batch_stride < per_seq)
    return sf_fail(err, SF_ERR_ARG, "%s: state_batch_stride %lld < n_heads * head_dim * d_state = %lld (states overlap)",
                   op, (long long)p->state_batch_stride, (long long)per_seq);
  return SF_OK;
}
