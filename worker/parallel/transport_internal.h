/* What the transport implementations share: the MPI error text and the
 * status agreement over an MPI communicator. */
#ifndef SCANFLASH_PARALLEL_TRANSPORT_INTERNAL_H
#define SCANFLASH_PARALLEL_TRANSPORT_INTERNAL_H

#include "parallel/transport.h"

/* Fails with SF_ERR_MPI: "transport mpi: <what>: <MPI's message for rc>". */
sf_status sf_transport_mpi_fail(sf_error *err, int rc, const char *what);

/* The agree operation of transport.h over comm (t's rank and size). */
sf_status sf_transport_mpi_agree(const sf_transport *t, MPI_Comm comm, sf_status mine, sf_error *err);

#endif
