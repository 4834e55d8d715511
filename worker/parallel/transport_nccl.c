/* The NCCL transport: device buffers, every call enqueued on the cuda op
 * context's stream (so it is ordered with the ops around it and the host
 * does not wait). Group rank 0 makes the ncclUniqueId and broadcasts it over
 * a duplicate of the MPI communicator, which also carries the barrier.
 * Built only when CUDA and NCCL are found (SCANFLASH_HAVE_NCCL). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <nccl.h>

#include "ops/op_table.h"
#include "parallel/transport_internal.h"

typedef struct nccl_impl {
  ncclComm_t comm;
  cudaStream_t stream;
  MPI_Comm mpi;
} nccl_impl;

static nccl_impl *impl_of(sf_transport *t) { return t->impl; }

static sf_status nccl_fail(sf_error *err, ncclResult_t rc, const char *what) {
  return sf_fail(err, SF_ERR_DEVICE, "transport nccl: %s: %s", what, ncclGetErrorString(rc));
}

static sf_status cuda_fail(sf_error *err, cudaError_t rc, const char *what) {
  return sf_fail(err, rc == cudaErrorMemoryAllocation ? SF_ERR_NOMEM : SF_ERR_DEVICE,
                 "transport nccl: %s: %s", what, cudaGetErrorString(rc));
}

static sf_status nccl_send(sf_transport *t, const void *buf, size_t bytes, int peer, sf_error *err) {
  SF_TRY(sf_transport_check_peer(t, peer, "send", err));
  nccl_impl *m = impl_of(t);
  const ncclResult_t rc = ncclSend(buf, bytes, ncclUint8, peer, m->comm, m->stream);
  return rc == ncclSuccess ? SF_OK : nccl_fail(err, rc, "ncclSend");
}

static sf_status nccl_recv(sf_transport *t, void *buf, size_t bytes, int peer, sf_error *err) {
  SF_TRY(sf_transport_check_peer(t, peer, "recv", err));
  nccl_impl *m = impl_of(t);
  const ncclResult_t rc = ncclRecv(buf, bytes, ncclUint8, peer, m->comm, m->stream);
  return rc == ncclSuccess ? SF_OK : nccl_fail(err, rc, "ncclRecv");
}

static sf_status nccl_sendrecv(sf_transport *t, const void *sendbuf, int dst, void *recvbuf, int src,
                               size_t bytes, sf_error *err) {
  SF_TRY(sf_transport_check_peer(t, dst, "sendrecv", err));
  SF_TRY(sf_transport_check_peer(t, src, "sendrecv", err));
  nccl_impl *m = impl_of(t);
  /* One group: the send and the receive progress together (no deadlock
   * around the ring). */
  ncclResult_t rc = ncclGroupStart();
  if (rc == ncclSuccess) rc = ncclSend(sendbuf, bytes, ncclUint8, dst, m->comm, m->stream);
  if (rc == ncclSuccess) rc = ncclRecv(recvbuf, bytes, ncclUint8, src, m->comm, m->stream);
  const ncclResult_t end = ncclGroupEnd();
  if (rc == ncclSuccess) rc = end;
  return rc == ncclSuccess ? SF_OK : nccl_fail(err, rc, "sendrecv");
}

static sf_status nccl_allgather(sf_transport *t, const void *sendbuf, void *recvbuf, size_t bytes,
                                sf_error *err) {
  nccl_impl *m = impl_of(t);
  const ncclResult_t rc = ncclAllGather(sendbuf, recvbuf, bytes, ncclUint8, m->comm, m->stream);
  return rc == ncclSuccess ? SF_OK : nccl_fail(err, rc, "ncclAllGather");
}

/* The stream drained, then the ranks meet over MPI; NCCL errors raised
 * asynchronously (a peer gone) surface here. */
static sf_status nccl_barrier(sf_transport *t, sf_error *err) {
  nccl_impl *m = impl_of(t);
  const cudaError_t ce = cudaStreamSynchronize(m->stream);
  if (ce != cudaSuccess) return cuda_fail(err, ce, "cudaStreamSynchronize");
  ncclResult_t async = ncclSuccess;
  const ncclResult_t rc = ncclCommGetAsyncError(m->comm, &async);
  if (rc != ncclSuccess) return nccl_fail(err, rc, "ncclCommGetAsyncError");
  if (async != ncclSuccess) return nccl_fail(err, async, "communicator");
  const int mrc = MPI_Barrier(m->mpi);
  return mrc == MPI_SUCCESS ? SF_OK : sf_transport_mpi_fail(err, mrc, "barrier");
}

/* Errors of the stream (a failed kernel) and of the communicator count as
 * this rank's own. */
static sf_status nccl_agree(sf_transport *t, sf_status mine, sf_error *err) {
  nccl_impl *m = impl_of(t);
  if (mine == SF_OK) {
    const cudaError_t ce = cudaStreamSynchronize(m->stream);
    ncclResult_t async = ncclSuccess;
    if (ce != cudaSuccess) mine = cuda_fail(err, ce, "cudaStreamSynchronize");
    else if (ncclCommGetAsyncError(m->comm, &async) == ncclSuccess && async != ncclSuccess)
      mine = nccl_fail(err, async, "communicator");
  }
  return sf_transport_mpi_agree(t, m->mpi, mine, err);
}

/* A host-side vote over the MPI duplicate; the stream is left alone. */
static sf_status nccl_max_int(sf_transport *t, int mine, int *out, sf_error *err) {
  const int rc = MPI_Allreduce(&mine, out, 1, MPI_INT, MPI_MAX, impl_of(t)->mpi);
  return rc == MPI_SUCCESS ? SF_OK : sf_transport_mpi_fail(err, rc, "max_int");
}

static void nccl_destroy(sf_transport *t) {
  nccl_impl *m = impl_of(t);
  if (m->comm) ncclCommDestroy(m->comm);
  if (m->mpi != MPI_COMM_NULL) MPI_Comm_free(&m->mpi);
  free(m);
  free(t);
}

/* Every rank learns whether every rank got this far, so that one rank's
 * failure before ncclCommInitRank fails the whole group instead of leaving
 * the others waiting in it. */
static sf_status all_ok(MPI_Comm comm, int ok, sf_error *err) {
  int all = 0;
  const int rc = MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm);
  if (rc != MPI_SUCCESS) return sf_transport_mpi_fail(err, rc, "MPI_Allreduce");
  if (!all && ok) return sf_fail(err, SF_ERR_DEVICE, "transport nccl: another rank of the group failed to set up");
  return SF_OK;
}

static sf_status init(sf_transport *t, nccl_impl *m, MPI_Comm comm, sf_op_ctx *ctx, sf_error *err) {
  int rc = MPI_Comm_dup(comm, &m->mpi);
  if (rc != MPI_SUCCESS) return sf_transport_mpi_fail(err, rc, "MPI_Comm_dup");
  MPI_Comm_set_errhandler(m->mpi, MPI_ERRORS_RETURN);
  MPI_Comm_rank(m->mpi, &t->rank);
  MPI_Comm_size(m->mpi, &t->size);
  m->stream = (cudaStream_t)ctx->stream;

  /* Rank 0's id travels with a flag saying whether it could make one. */
  struct { int ok; ncclUniqueId id; } msg;
  memset(&msg, 0, sizeof msg);
  sf_status st = SF_OK;
  if (t->rank == 0) {
    const ncclResult_t nr = ncclGetUniqueId(&msg.id);
    msg.ok = nr == ncclSuccess;
    if (!msg.ok) st = nccl_fail(err, nr, "ncclGetUniqueId");
  }
  rc = MPI_Bcast(&msg, (int)sizeof msg, MPI_BYTE, 0, m->mpi);
  if (rc != MPI_SUCCESS) return sf_transport_mpi_fail(err, rc, "MPI_Bcast of the ncclUniqueId");
  if (!msg.ok) return st != SF_OK ? st : sf_fail(err, SF_ERR_DEVICE, "transport nccl: rank 0 could not create an ncclUniqueId");

  const cudaError_t ce = cudaSetDevice(ctx->device);
  if (ce != cudaSuccess) st = cuda_fail(err, ce, "cudaSetDevice");
  SF_TRY(all_ok(m->mpi, st == SF_OK, err));
  if (st != SF_OK) return st;
  const ncclResult_t nr = ncclCommInitRank(&m->comm, t->size, msg.id, t->rank);
  if (nr != ncclSuccess) {
    m->comm = NULL;
    return nccl_fail(err, nr, "ncclCommInitRank");
  }
  return SF_OK;
}

sf_status sf_transport_nccl_create(MPI_Comm comm, sf_op_ctx *ctx, sf_transport **out, sf_error *err) {
  *out = NULL;
  if (!ctx || !ctx->ops || strcmp(ctx->ops->name, "cuda") != 0)
    return sf_fail(err, SF_ERR_ARG, "transport nccl: needs a cuda op context");
  sf_transport *t = calloc(1, sizeof *t);
  nccl_impl *m = calloc(1, sizeof *m);
  if (!t || !m) {
    free(t);
    free(m);
    return sf_fail(err, SF_ERR_NOMEM, "transport nccl: cannot allocate the transport");
  }
  m->mpi = MPI_COMM_NULL;
  t->name = "nccl";
  t->send = nccl_send;
  t->recv = nccl_recv;
  t->sendrecv = nccl_sendrecv;
  t->allgather = nccl_allgather;
  t->barrier = nccl_barrier;
  t->agree = nccl_agree;
  t->max_int = nccl_max_int;
  t->destroy = nccl_destroy;
  t->impl = m;
  const sf_status st = init(t, m, comm, ctx, err);
  if (st != SF_OK) {
    nccl_destroy(t);
    return st;
  }
  *out = t;
  return SF_OK;
}
