/* The work queue: the plan's items that this run must record (its shard,
 * not finished before), in the order they are handed out. */
#include "sched/sched_internal.h"

void sf_sched_queue(sf_plan *plan, int32_t shard_index, int32_t shard_count, sf_sched_skip_fn skip, void *user,
                    int32_t *n_skipped, int32_t *n_other_shards) {
  int32_t kept = 0, skipped = 0, other = 0;
  for (int32_t i = 0; i < plan->n_items; i++) {
    const sf_work_item *w = &plan->items[i].item;
    /* Shards follow the canonical index, so they do not depend on costs or on what is finished. */
    if (shard_count > 0 && w->index % shard_count != shard_index) {
      other++;
      continue;
    }
    if (skip && skip(user, w)) {
      skipped++;
      continue;
    }
    plan->items[kept++] = plan->items[i];
  }
  plan->n_items = kept;
  sf_plan_sort_by_cost(plan);
  if (n_skipped) *n_skipped = skipped;
  if (n_other_shards) *n_other_shards = other;
}
