/* The state passing of cp_mamba.h: rank r - 1 -> r -> r + 1, conv state
 * first, then the SSM state (both transports keep a peer's messages in
 * order). */
#include "parallel/cp_mamba.h"

sf_status sf_cp_mamba_layer_begin(sf_transport *t, const sf_cp_mamba_state *st, int own_initial_state,
                                  int *has_initial_state, sf_error *err) {
  if (t->rank == 0) {
    *has_initial_state = own_initial_state;
    return SF_OK;
  }
  *has_initial_state = 1;
  if ((st->conv_bytes && t->recv(t, st->conv, st->conv_bytes, t->rank - 1, err) != SF_OK) ||
      t->recv(t, st->ssm, st->ssm_bytes, t->rank - 1, err) != SF_OK)
    return sf_fail_context(err, "context-parallel mamba: states from rank %d", t->rank - 1);
  return SF_OK;
}

sf_status sf_cp_mamba_layer_end(sf_transport *t, const sf_cp_mamba_state *st, sf_error *err) {
  if (t->rank == t->size - 1) return SF_OK;
  if ((st->conv_bytes && t->send(t, st->conv, st->conv_bytes, t->rank + 1, err) != SF_OK) ||
      t->send(t, st->ssm, st->ssm_bytes, t->rank + 1, err) != SF_OK)
    return sf_fail_context(err, "context-parallel mamba: states to rank %d", t->rank + 1);
  return SF_OK;
}
