/* A backend's op context by name, for the commands and the runner: "cpu"
 * (OpenMP threads) or "cuda" (one device). Keeps the #ifdef on the build's
 * CUDA support in one place. */
#ifndef SCANFLASH_WORKER_BACKEND_H
#define SCANFLASH_WORKER_BACKEND_H

#include "ops/op_table.h"
#include "scanflash/error.h"

/* cpu: threads (0 = the OpenMP default); cuda: device (a CUDA ordinal). */
sf_status sf_backend_init(const char *name, int device, int threads, sf_op_ctx *ctx, sf_error *err);
/* Releases a context sf_backend_init made (no-op on a zeroed one). */
void sf_backend_destroy(sf_op_ctx *ctx);

#endif
