/* What the transport implementations share: the peer check, the MPI error
 * text and the status agreement over an MPI communicator. */
#ifndef SCANFLASH_PARALLEL_TRANSPORT_INTERNAL_H
#define SCANFLASH_PARALLEL_TRANSPORT_INTERNAL_H

#include "parallel/transport.h"

/* SF_ERR_ARG unless 0 <= peer < t->size: "transport <name>: <op>: peer ...". */
sf_status sf_transport_check_peer(const sf_transport *t, int peer, const char *op, sf_error *err);

/* Fails with SF_ERR_MPI: "transport mpi: <what>: <MPI's message for rc>". */
sf_status sf_transport_mpi_fail(sf_error *err, int rc, const char *what);

/* The agree operation of transport.h over comm (t's rank and size). */
sf_status sf_transport_mpi_agree(const sf_transport *t, MPI_Comm comm, sf_status mine, sf_error *err);

#endif
