/* One item on this rank: its inputs from the corpus, then the runner; or
 * this rank's part of a context-parallel item, with its group. */
#include <stdio.h>
#include <string.h>

#include "parallel/transport.h"
#include "sched/sched_internal.h"

sf_status sf_sched_execute(sf_rank *rk, const sf_work_item *item, sf_runner_output *out, sf_error *err) {
  memset(out, 0, sizeof *out);
  /* A signal that came while the item travelled: do not even build the model. */
  if (sf_sched_signalled() || rk->aborted) {
    sf_runner_result_init(&out->result, item, rk->rank, -1, rk->host);
    sf_runner_result_set(&out->result, SF_STATUS_INTERRUPTED,
                         "interrupted before it started (a signal, or the driver stopping the sweep); --resume runs it");
    return SF_OK;
  }
  if (item->model_index < 0 || item->model_index >= rk->spec->n_models)
    return sf_fail(err, SF_ERR_INTERNAL, "item %s names model %d; the spec has %d", item->key, (int)item->model_index,
                   (int)rk->spec->n_models);
  const sf_spec_model *m = &rk->spec->models[item->model_index];
  sf_runner_model model = {.cfg = &m->cfg, .checkpoint = m->checkpoint};
  sf_runner_batch in;
  memset(&in, 0, sizeof in);
  if (item->kind != SF_ITEM_KERNELS && item->gpus <= 1) {
    sf_error e;
    sf_error_clear(&e);
    if (sf_sched_build_batch(rk->spec, &rk->corpus, item, &rk->batch, &in, &e) != SF_OK) {
      /* A context shorter than a prompt, say: this item's failure, not the rank's. */
      sf_runner_result_init(&out->result, item, rk->rank, -1, rk->host);
      sf_runner_result_set(&out->result, e.code == SF_ERR_NOMEM ? SF_STATUS_OOM : SF_STATUS_ERROR, "%s", e.msg);
      return SF_OK;
    }
  }
  return sf_runner_run(rk->runner, item, &model, in.ids ? &in : NULL, out, err);
}

/* The group's communicator (ranks of rk->comm, g->ranks[0] first) and
 * transport over it. Every member calls this; one agreement at the end, on
 * the communicator, so a member that failed fails them all. */
static sf_status make_transport(sf_rank *rk, const sf_wire_group *g, sf_transport **t, sf_error *err) {
  *t = NULL;
  MPI_Group world, members;
  MPI_Comm comm = MPI_COMM_NULL;
  if (MPI_Comm_group(rk->comm, &world) != MPI_SUCCESS) return sf_fail(err, SF_ERR_MPI, "MPI_Comm_group failed");
  int rc = MPI_Group_incl(world, g->k, g->ranks, &members);
  MPI_Group_free(&world);
  if (rc != MPI_SUCCESS) return sf_fail(err, SF_ERR_MPI, "MPI_Group_incl of the item's %d ranks failed", (int)g->k);
  rc = MPI_Comm_create_group(rk->comm, members, SF_TAG_GROUP_COMM, &comm);
  MPI_Group_free(&members);
  if (rc != MPI_SUCCESS || comm == MPI_COMM_NULL)
    return sf_fail(err, SF_ERR_MPI, "MPI_Comm_create_group of the item's %d ranks failed", (int)g->k);
  sf_status st;
  if (rk->backend == SF_BACKEND_CUDA) {
#ifdef SCANFLASH_HAVE_NCCL
    st = sf_transport_nccl_create(comm, sf_runner_op_ctx(rk->runner), t, err);
#else
    st = sf_fail(err, SF_ERR_UNSUPPORTED,
                 "context-parallel items on the cuda backend need NCCL, and this scanflash was built without it");
#endif
  } else {
    st = sf_transport_mpi_create(comm, t, err);
  }
  int ok = st == SF_OK, all = 0;
  if (MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS) all = 0;
  MPI_Comm_free(&comm);
  if (all) return SF_OK;
  if (*t) sf_transport_destroy(*t); /* NCCL: every member's is destroyed, together */
  *t = NULL;
  return st != SF_OK ? st : sf_fail(err, SF_ERR_DEVICE, "another rank of the group could not set up its transport");
}

sf_status sf_sched_execute_group(sf_rank *rk, const sf_wire_group *g, sf_runner_output *out, int *leads,
                                 sf_error *err) {
  memset(out, 0, sizeof *out);
  const sf_work_item *item = &g->item;
  *leads = g->k > 0 && g->ranks[0] == rk->rank;
  int me = -1;
  for (int i = 0; i < g->k && i < SF_WIRE_MAX_GROUP; i++)
    if (g->ranks[i] == rk->rank) me = i;
  if (g->k < 2 || g->k > SF_WIRE_MAX_GROUP || g->k != item->gpus || me < 0)
    return sf_fail(err, SF_ERR_INTERNAL, "item %s: a group of %d rank(s) for %d GPUs without this rank", item->key,
                   (int)g->k, (int)item->gpus);
  if (item->model_index < 0 || item->model_index >= rk->spec->n_models)
    return sf_fail(err, SF_ERR_INTERNAL, "item %s names model %d; the spec has %d", item->key, (int)item->model_index,
                   (int)rk->spec->n_models);
  sf_runner_result_init(&out->result, item, rk->rank, -1, rk->host);
  sf_error e;
  sf_error_clear(&e);
  sf_transport *t = NULL;
  if (make_transport(rk, g, &t, &e) != SF_OK) {
    sf_runner_result_set(&out->result, SF_STATUS_ERROR, "context-parallel group of %d ranks: %s", (int)g->k, e.msg);
    return SF_OK;
  }
  /* A signal or an abort seen by any member before the start: none starts. */
  int stop = 0;
  sf_status st = t->max_int(t, sf_sched_signalled() || rk->aborted, &stop, &e);
  if (st == SF_OK && stop) {
    sf_runner_result_set(&out->result, SF_STATUS_INTERRUPTED,
                         "interrupted before it started (a signal, or the driver stopping the sweep); --resume runs it");
  } else if (st == SF_OK) {
    const sf_spec_model *m = &rk->spec->models[item->model_index];
    sf_runner_model model = {.cfg = &m->cfg, .checkpoint = m->checkpoint};
    sf_runner_batch in;
    memset(&in, 0, sizeof in);
    /* The same inputs on every member (built from the same corpus). */
    st = sf_sched_build_batch(rk->spec, &rk->corpus, item, &rk->batch, &in, &e);
    st = t->agree(t, st, &e);
    if (st == SF_OK) {
      st = sf_runner_run_group(rk->runner, t, item, &model, &in, out, err);
      if (st != SF_OK) { /* the runner is unusable here: the same arguments fail everywhere */
        sf_transport_destroy(t);
        return st;
      }
    }
  }
  if (st != SF_OK)
    sf_runner_result_set(&out->result, st == SF_ERR_NOMEM ? SF_STATUS_OOM : SF_STATUS_ERROR, "%s", e.msg);
  sf_transport_destroy(t);
  return SF_OK;
}
