/* The parts of the transport interface that do not depend on the library
 * underneath. */
#include <limits.h>
#include <stdio.h>

#include "parallel/transport_internal.h"

void sf_transport_destroy(sf_transport *t) {
  if (t) t->destroy(t);
}

sf_status sf_transport_check_peer(const sf_transport *t, int peer, const char *op, sf_error *err) {
  if (peer < 0 || peer >= t->size)
    return sf_fail(err, SF_ERR_ARG, "transport %s: %s: peer %d outside the group [0, %d)", t->name, op, peer,
                   t->size);
  return SF_OK;
}

sf_status sf_transport_mpi_fail(sf_error *err, int rc, const char *what) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "MPI error %d", rc);
  return sf_fail(err, SF_ERR_MPI, "transport: %s: %s", what, msg);
}

sf_status sf_transport_mpi_agree(const sf_transport *t, MPI_Comm comm, sf_status mine, sf_error *err) {
  /* One allreduce, no buffer: the minimum of rank * 16 + code over the
   * failed ranks names the lowest failed rank and its status (codes < 16). */
  const int none = INT_MAX;
  const int v = mine != SF_OK ? t->rank * 16 + (int)mine : none;
  int lowest = none;
  const int rc = MPI_Allreduce(&v, &lowest, 1, MPI_INT, MPI_MIN, comm);
  if (mine != SF_OK) return mine;
  if (rc != MPI_SUCCESS) return sf_transport_mpi_fail(err, rc, "agree");
  if (lowest == none) return SF_OK;
  const sf_status code = (sf_status)(lowest % 16);
  return sf_fail(err, code, "rank %d of %d failed (%s)", lowest / 16, t->size, sf_status_name(code));
}
