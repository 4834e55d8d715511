/* The MPI transport: host buffers over a duplicate of the group's
 * communicator. Errors come back as return codes (MPI_ERRORS_RETURN on the
 * duplicate), so a failed call reaches the caller instead of aborting the
 * job. MPI counts are int: point-to-point messages go in pieces of at most
 * 1 GiB (a 1M-token KV shard is several GiB); allgather is for small
 * buffers and refuses more than INT_MAX bytes. */
#include <limits.h>
#include <stdlib.h>

#include "parallel/transport_internal.h"

enum { TAG = 8 };                      /* any fixed tag: the communicator is ours alone */
static const size_t PIECE = (size_t)1 << 30;

typedef struct mpi_impl {
  MPI_Comm comm;
} mpi_impl;

static MPI_Comm comm_of(sf_transport *t) { return ((mpi_impl *)t->impl)->comm; }

static sf_status mpi_send(sf_transport *t, const void *buf, size_t bytes, int peer, sf_error *err) {
  SF_TRY(sf_transport_check_peer(t, peer, "send", err));
  for (size_t off = 0; off < bytes; off += PIECE) {
    const size_t n = bytes - off < PIECE ? bytes - off : PIECE;
    const int rc = MPI_Send((const char *)buf + off, (int)n, MPI_BYTE, peer, TAG, comm_of(t));
    if (rc != MPI_SUCCESS) return sf_transport_mpi_fail(err, rc, "send");
  }
  return SF_OK;
}

static sf_status mpi_recv(sf_transport *t, void *buf, size_t bytes, int peer, sf_error *err) {
  SF_TRY(sf_transport_check_peer(t, peer, "recv", err));
  for (size_t off = 0; off < bytes; off += PIECE) {
    const size_t n = bytes - off < PIECE ? bytes - off : PIECE;
    const int rc = MPI_Recv((char *)buf + off, (int)n, MPI_BYTE, peer, TAG, comm_of(t), MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return sf_transport_mpi_fail(err, rc, "recv");
  }
  return SF_OK;
}

static sf_status mpi_sendrecv(sf_transport *t, const void *sendbuf, int dst, void *recvbuf, int src,
                              size_t bytes, sf_error *err) {
  SF_TRY(sf_transport_check_peer(t, dst, "sendrecv", err));
  SF_TRY(sf_transport_check_peer(t, src, "sendrecv", err));
  for (size_t off = 0; off < bytes; off += PIECE) {
    const size_t n = bytes - off < PIECE ? bytes - off : PIECE;
    const int rc = MPI_Sendrecv((const char *)sendbuf + off, (int)n, MPI_BYTE, dst, TAG,
                                (char *)recvbuf + off, (int)n, MPI_BYTE, src, TAG, comm_of(t),
                                MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return sf_transport_mpi_fail(err, rc, "sendrecv");
  }
  return SF_OK;
}

static sf_status mpi_allgather(sf_transport *t, const void *sendbuf, void *recvbuf, size_t bytes,
                               sf_error *err) {
  if (bytes > INT_MAX)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "transport mpi: allgather of %zu bytes (at most %d)", bytes,
                   INT_MAX);
  const int rc = MPI_Allgather(sendbuf, (int)bytes, MPI_BYTE, recvbuf, (int)bytes, MPI_BYTE, comm_of(t));
  return rc == MPI_SUCCESS ? SF_OK : sf_transport_mpi_fail(err, rc, "allgather");
}

static sf_status mpi_barrier(sf_transport *t, sf_error *err) {
  const int rc = MPI_Barrier(comm_of(t));
  return rc == MPI_SUCCESS ? SF_OK : sf_transport_mpi_fail(err, rc, "barrier");
}

static sf_status mpi_agree(sf_transport *t, sf_status mine, sf_error *err) {
  return sf_transport_mpi_agree(t, comm_of(t), mine, err);
}

static sf_status mpi_max_int(sf_transport *t, int mine, int *out, sf_error *err) {
  const int rc = MPI_Allreduce(&mine, out, 1, MPI_INT, MPI_MAX, comm_of(t));
  return rc == MPI_SUCCESS ? SF_OK : sf_transport_mpi_fail(err, rc, "max_int");
}

static void mpi_destroy(sf_transport *t) {
  mpi_impl *m = t->impl;
  MPI_Comm_free(&m->comm);
  free(m);
  free(t);
}

sf_status sf_transport_mpi_create(MPI_Comm comm, sf_transport **out, sf_error *err) {
  *out = NULL;
  sf_transport *t = calloc(1, sizeof *t);
  mpi_impl *m = calloc(1, sizeof *m);
  if (!t || !m) {
    free(t);
    free(m);
    return sf_fail(err, SF_ERR_NOMEM, "transport mpi: cannot allocate the transport");
  }
  int rc = MPI_Comm_dup(comm, &m->comm);
  if (rc != MPI_SUCCESS) {
    free(t);
    free(m);
    return sf_transport_mpi_fail(err, rc, "MPI_Comm_dup");
  }
  MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(m->comm, &t->rank);
  MPI_Comm_size(m->comm, &t->size);
  t->name = "mpi";
  t->send = mpi_send;
  t->recv = mpi_recv;
  t->sendrecv = mpi_sendrecv;
  t->allgather = mpi_allgather;
  t->barrier = mpi_barrier;
  t->agree = mpi_agree;
  t->max_int = mpi_max_int;
  t->destroy = mpi_destroy;
  t->impl = m;
  *out = t;
  return SF_OK;
}
