/* One item on this rank: its inputs from the corpus, then the runner. */
#include <string.h>

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
