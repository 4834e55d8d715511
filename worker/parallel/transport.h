/* The transports' constructors; the interface is transport_api.h. */
#ifndef SCANFLASH_PARALLEL_TRANSPORT_H
#define SCANFLASH_PARALLEL_TRANSPORT_H

#include <mpi.h>

#include "parallel/transport_api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Frees t and its communicator; NULL is fine. Not collective for MPI;
 * for NCCL call it on every rank (ncclCommDestroy). */
void sf_transport_destroy(sf_transport *t);

/* MPI over host buffers: the group is comm (duplicated, so the group's
 * messages never match anyone else's; comm itself may be freed after). */
sf_status sf_transport_mpi_create(MPI_Comm comm, sf_transport **out, sf_error *err);

#ifdef SCANFLASH_HAVE_NCCL
/* NCCL over device buffers of ctx (a cuda op context): group rank 0 creates
 * the ncclUniqueId and broadcasts it over comm (duplicated, kept for the
 * barrier); every rank of comm must call this together. Collective calls
 * run on ctx->stream. */
sf_status sf_transport_nccl_create(MPI_Comm comm, sf_op_ctx *ctx, sf_transport **out, sf_error *err);
#endif

#ifdef __cplusplus
}
#endif
#endif
