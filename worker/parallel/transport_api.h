/* The transport of a context-parallel group: k ranks that together run one
 * work item (ring attention, LSE merges, Mamba state passing). The
 * algorithms in this folder only see this interface, so the same code runs
 * over MPI on the cpu backend and over NCCL on GPUs.
 *
 * Buffers live where the group's backend keeps its tensors: host memory for
 * the MPI transport (cpu backend), device memory of ctx->device for NCCL.
 * Ordering with the backend's ops: MPI calls have completed when they
 * return; NCCL calls are enqueued on the op context's stream, after the ops
 * enqueued before them and before the ops enqueued after, so a buffer
 * written by an op may be sent at once and a received one read by the next
 * op. Every call is collective over the peers it names (send pairs with a
 * recv on the peer, sendrecv with the neighbours' sendrecv, allgather and
 * barrier with every rank) and returns SF_OK or an error in err; none prints
 * or exits. No globals: each group owns its communicator.
 *
 * This header is the interface alone (no MPI): the engine and the runner
 * drive a group through it; transport.h adds the constructors (MPI, NCCL). */
#ifndef SCANFLASH_PARALLEL_TRANSPORT_API_H
#define SCANFLASH_PARALLEL_TRANSPORT_API_H

#include <stddef.h>

#include "ops/types.h"
#include "scanflash/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_transport sf_transport;

struct sf_transport {
  const char *name;  /* "mpi", "nccl" */
  int rank, size;    /* this rank's place in the group, the group's size k */

  /* bytes from buf to rank peer / from rank peer into buf. */
  sf_status (*send)(sf_transport *t, const void *buf, size_t bytes, int peer, sf_error *err);
  sf_status (*recv)(sf_transport *t, void *buf, size_t bytes, int peer, sf_error *err);
  /* Sends sendbuf to dst while receiving the same number of bytes from src
   * into recvbuf (one ring step: dst = rank + 1, src = rank - 1). The two
   * buffers must not overlap. */
  sf_status (*sendrecv)(sf_transport *t, const void *sendbuf, int dst, void *recvbuf, int src,
                        size_t bytes, sf_error *err);
  /* recvbuf[i * bytes, (i + 1) * bytes) receives rank i's sendbuf, for every
   * rank i (this one included). */
  sf_status (*allgather)(sf_transport *t, const void *sendbuf, void *recvbuf, size_t bytes,
                         sf_error *err);
  /* Returns once every rank has reached it with its earlier calls done. */
  sf_status (*barrier)(sf_transport *t, sf_error *err);
  /* Every rank passes its status so far (host-side; NCCL drains the stream
   * first and counts the communicator's own errors). All return SF_OK when
   * every rank had SF_OK; else every rank returns an error: its own (err
   * untouched) where it failed, elsewhere the status of the lowest failed
   * rank with "rank j of k failed". So one rank's error reaches the whole
   * group instead of leaving the others waiting in a transfer: a rank that
   * fails keeps up with the group's transfers until the next agree. */
  sf_status (*agree)(sf_transport *t, sf_status mine, sf_error *err);
  /* Every rank passes a host int; all get the largest (host-side, like
   * agree, but nothing is drained: a vote, e.g. "stop at this check point"
   * where one rank saw a signal or its deadline). */
  sf_status (*max_int)(sf_transport *t, int mine, int *out, sf_error *err);
  void (*destroy)(sf_transport *t);
  void *impl;
};

/* The group's rank i + d, modulo its size (ring neighbours). */
static inline int sf_transport_peer(const sf_transport *t, int d) {
  return ((t->rank + d) % t->size + t->size) % t->size;
}

#ifdef __cplusplus
}
#endif
#endif
