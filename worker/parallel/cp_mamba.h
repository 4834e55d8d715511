/* Context-parallel Mamba prefill (Mamba-1: conv1d + selective_scan;
 * Mamba-2: conv1d + ssd) over k ranks: rank r holds the contiguous piece r
 * of every sequence (sf_cp_piece, cp_shard.h) and everything between the
 * conv and the scan (projections, norms) is token-local, so only two
 * states cross ranks, per layer:
 *   - the conv state: the last d_conv-1 conv inputs (what conv1d writes
 *     back into conv_state; it includes older history when a piece is
 *     shorter than d_conv-1, so short pieces chain correctly);
 *   - the SSM state (what selective_scan / ssd write into state).
 * Per layer l, rank r: sf_cp_mamba_layer_begin receives both from r-1
 * (rank 0 starts from zero), the layer runs its piece with
 * has_initial_state, sf_cp_mamba_layer_end sends the final states to r+1.
 * Run layer by layer, this is a wavefront: rank r starts layer l once rank
 * r-1 has finished it, and goes on to layer l+1 while r+1 does layer l, so
 * a prefill of L layers takes about L + k - 1 layer-pieces (a piece = 1/k
 * of the sequence): L/(L+k-1) of k-fold speed-up, 24-64 layers against
 * k = 2..8. The final states of the whole sequence end on rank k-1, which
 * also holds the last token: decode continues there.
 *
 * The Mamba-2 paper's §8.2 scheme instead runs every rank on the same
 * layer at once: (1) each rank scans its piece from a zero state, giving
 * its outputs and final state, and its total decay; (2) the states pass
 * along the ranks (h_in(r) = decay(r-1) h_in(r-1) + final(r-1): k-1 steps
 * of a state-sized message); (3) each rank corrects its outputs by the
 * term of the incoming state, y_t += C_t decay(0..t) h_in (and its final
 * state by decay h_in). That removes the k-1 layer-pieces of pipeline fill
 * but (3) needs a "state contribution" op the op table does not have: with
 * the existing ops it is a second scan per layer (x = 0, starting from
 * h_in, plus an add), i.e. the scan's share of every layer again, against
 * the wavefront's (k-1)/L of a whole layer; and (1) needs the total decay,
 * a third pass. Both give the same numbers up to rounding; this is the
 * wavefront, with no new op. */
#ifndef SCANFLASH_PARALLEL_CP_MAMBA_H
#define SCANFLASH_PARALLEL_CP_MAMBA_H

#include <stddef.h>

#include "parallel/transport_api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One layer's states, in backend memory, all sequences of the batch: the
 * conv_state buffer of conv1d ([batch][dim][d_conv-1], activation dtype)
 * and the state buffer of selective_scan or ssd (fp32). conv may be NULL
 * with conv_bytes 0 (d_conv 1). */
typedef struct sf_cp_mamba_state {
  void *conv; size_t conv_bytes;
  float *ssm; size_t ssm_bytes;
} sf_cp_mamba_state;

/* Before the layer: rank r > 0 receives rank r-1's final states into st
 * and *has_initial_state = 1; rank 0 keeps st and *has_initial_state =
 * own_initial_state (1 when the caller carries states in, else 0). Pass
 * *has_initial_state to the layer's conv1d and scan. */
sf_status sf_cp_mamba_layer_begin(sf_transport *t, const sf_cp_mamba_state *st, int own_initial_state,
                                  int *has_initial_state, sf_error *err);

/* After the layer's scan: rank r < k-1 sends its final states to r+1.
 * Call it even when the layer failed (it sends what the buffers hold), so
 * the ranks after this one are not left waiting, and pass the forward's
 * status to t->agree after the last layer: then every rank reports the
 * failure. */
sf_status sf_cp_mamba_layer_end(sf_transport *t, const sf_cp_mamba_state *st, sf_error *err);

#ifdef __cplusplus
}
#endif
#endif
