/* The runner's lifetime and one item from start to result row: the checks
 * that decide an item without running it (kernels on cpu, multi-GPU items,
 * the injected failure), the cached model, the measurement, and the mapping
 * of whatever ended the item to its status. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/backend.h"
#include "devices/devices.h"
#include "parallel/transport_api.h"
#include "runner/runner_internal.h"

double sf_runner_unix_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void sf_runner_result_init(sf_item_result *res, const sf_work_item *item, int rank, int device,
                           const char *host) {
  memset(res, 0, sizeof *res);
  memcpy(res->key, item->key, SF_KEY_LEN);
  res->key[SF_KEY_LEN - 1] = '\0';
  res->status = SF_STATUS_OK;
  res->rank = rank;
  res->device = device;
  snprintf(res->host, sizeof res->host, "%s", host ? host : "");
  res->t_start = res->t_end = sf_runner_unix_now();
  res->ttft_s = res->prefill_tok_s = res->decode_tok_s = res->e2e_tok_s = NAN;
  res->tpot_p50_s = res->tpot_p90_s = res->tpot_p99_s = res->prefill_cv = NAN;
  res->est_bytes = item->est_bytes;
  res->energy_j = res->j_per_token = NAN;
  res->ref_max_rel_err = NAN;
}

void sf_runner_result_set(sf_item_result *res, sf_item_status status, const char *fmt, ...) {
  res->status = status;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->message, sizeof res->message, fmt, ap);
  va_end(ap);
}

/* The GPU's identity (for /devices) and NVML on it, by UUID. */
static sf_status describe_gpu(sf_runner *r, sf_error *err) {
  enum { MAX_GPUS = 64 };
  sf_device_info *info = calloc(MAX_GPUS, sizeof *info);
  if (!info) return sf_fail(err, SF_ERR_NOMEM, "runner: out of host memory");
  int n = 0;
  char why[256];
  sf_status rc = sf_devices_query(info, MAX_GPUS, &n, why, sizeof why, err);
  if (rc == SF_OK && r->cfg.device < n && r->cfg.device < MAX_GPUS) {
    r->gpu = info[r->cfg.device];
    r->nvml = sf_nvml_open(r->gpu.uuid, r->energy_note, (int)sizeof r->energy_note);
  }
  free(info);
  return rc;
}

static sf_status init_backend(sf_runner *r, sf_error *err) {
  const char *b = r->cfg.backend ? r->cfg.backend : "cpu";
  if (sf_backend_init(b, r->cfg.device, r->cfg.num_threads, &r->ctx, err) != SF_OK)
    return sf_fail_context(err, "rank %d", r->cfg.rank);
  r->ctx_ok = 1;
  r->cuda = !strcmp(r->ctx.ops->name, "cuda");
  r->cfg.backend = r->ctx.ops->name; /* static: the caller's string need not outlive create */
  if (!r->cuda) {
    snprintf(r->energy_note, sizeof r->energy_note, "the cpu backend measures no energy");
    return SF_OK;
  }
  return describe_gpu(r, err);
}

sf_status sf_runner_create(const sf_runner_config *cfg, sf_runner **out, sf_error *err) {
  *out = NULL;
  sf_runner *r = calloc(1, sizeof *r);
  if (!r) return sf_fail(err, SF_ERR_NOMEM, "runner: out of host memory");
  r->cfg = *cfg;
  r->fail_member = -1;
  if (cfg->fail_key && cfg->fail_key[0]) {
    r->fail_key = strdup(cfg->fail_key);
    if (!r->fail_key) {
      free(r);
      return sf_fail(err, SF_ERR_NOMEM, "runner: out of host memory");
    }
    char *at = strchr(r->fail_key, '@');
    if (at) {
      *at = '\0';
      r->fail_member = atoi(at + 1);
    }
  }
  r->cfg.fail_key = r->fail_key;
  if (gethostname(r->host, sizeof r->host) != 0) snprintf(r->host, sizeof r->host, "unknown");
  r->host[sizeof r->host - 1] = '\0';
  sf_status rc = init_backend(r, err);
  if (rc != SF_OK) {
    sf_runner_free(r);
    return rc;
  }
  *out = r;
  return SF_OK;
}

void sf_runner_drop_model(sf_runner *r) {
  if (!r || !r->have_model) return;
  sf_model_free(&r->model);
  r->have_model = 0;
  free(r->model_checkpoint);
  r->model_checkpoint = NULL;
}

void sf_runner_free(sf_runner *r) {
  if (!r) return;
  sf_runner_drop_model(r);
  sf_nvml_close(r->nvml);
  if (r->kbench) {
    sf_kbench_ctx_destroy(r->kbench);
    free(r->kbench);
  }
  if (r->ctx_ok) sf_backend_destroy(&r->ctx);
  free(r->repeats);
  free(r->steps);
  free(r->fail_key);
  free(r);
}

/* "model name : Intel(R) Xeon(R) ..." from /proc/cpuinfo, else "cpu". */
static void cpu_name(char *out, size_t size) {
  snprintf(out, size, "cpu");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10)) continue;
    const char *v = strchr(line, ':');
    if (!v) break;
    v++;
    while (*v == ' ' || *v == '\t') v++;
    size_t n = strcspn(v, "\n");
    snprintf(out, size, "%.*s", (int)n, v);
    break;
  }
  fclose(f);
}

void sf_runner_describe(const sf_runner *r, sf_runner_device *out) {
  memset(out, 0, sizeof *out);
  out->backend = r->ctx.ops ? r->ctx.ops->name : "cpu";
  snprintf(out->energy_note, sizeof out->energy_note, "%s", r->energy_note);
  if (r->cuda) {
    out->device = r->cfg.device;
    snprintf(out->name, sizeof out->name, "%.95s", r->gpu.name);
    snprintf(out->uuid, sizeof out->uuid, "%s", r->gpu.uuid);
    out->memory_bytes = r->gpu.total_mem_bytes;
    out->gpu = r->gpu;
    sf_nvml_max_clocks(r->nvml, &out->max_sm_clock_mhz, &out->max_mem_clock_mhz);
    return;
  }
  out->device = -1;
  cpu_name(out->name, sizeof out->name);
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  out->memory_bytes = pages > 0 && page > 0 ? (int64_t)pages * page : 0;
  out->num_threads = r->cfg.num_threads;
}

sf_status rn_push_repeat(sf_runner *r, const sf_repeat_result *rep, sf_error *err) {
  if (r->n_repeats == r->cap_repeats) {
    int64_t c = r->cap_repeats ? 2 * r->cap_repeats : 16;
    sf_repeat_result *p = realloc(r->repeats, (size_t)c * sizeof *p);
    if (!p) return sf_fail(err, SF_ERR_NOMEM, "runner: out of host memory for the repeat records");
    r->repeats = p;
    r->cap_repeats = c;
  }
  r->repeats[r->n_repeats++] = *rep;
  return SF_OK;
}

sf_status rn_push_step(sf_runner *r, const sf_step_result *st, sf_error *err) {
  if (r->n_steps == r->cap_steps) {
    int64_t c = r->cap_steps ? 2 * r->cap_steps : 256;
    sf_step_result *p = realloc(r->steps, (size_t)c * sizeof *p);
    if (!p) return sf_fail(err, SF_ERR_NOMEM, "runner: out of host memory for the decode step records");
    r->steps = p;
    r->cap_steps = c;
  }
  r->steps[r->n_steps++] = *st;
  return SF_OK;
}

static int same_model(const sf_runner *r, const sf_runner_model *m, uint64_t seed) {
  if (!r->have_model || memcmp(&r->model_cfg, m->cfg, sizeof r->model_cfg)) return 0;
  if (!m->checkpoint != !r->model_checkpoint) return 0;
  if (m->checkpoint) return !strcmp(m->checkpoint, r->model_checkpoint);
  return r->model_seed == seed; /* a checkpoint's weights do not depend on the seed */
}

/* The model for the item: the cached one when it matches, else built (the
 * old one is freed first, so two models never hold memory at once). */
static sf_status ensure_model(sf_runner *r, const sf_runner_model *m, uint64_t seed, sf_error *err) {
  if (same_model(r, m, seed)) return SF_OK;
  sf_runner_drop_model(r);
  r->ctx.mem_peak = r->ctx.mem_live; /* the old model's memory is not this item's */
  sf_status rc;
  if (m->checkpoint) {
    rc = sf_model_load(m->checkpoint, &r->ctx, &r->model, err);
    if (rc == SF_OK) {
      const sf_model_config *a = &r->model.cfg, *b = m->cfg;
      if (a->arch != b->arch || a->n_layers != b->n_layers || a->d_model != b->d_model ||
          a->vocab_size != b->vocab_size) {
        rc = sf_fail(err, SF_ERR_FORMAT,
                     "checkpoint %s is a %s model with %d layers, d_model %d, vocab %d; the spec's "
                     "shape says %s, %d, %d, %d",
                     m->checkpoint, sf_arch_name(a->arch), a->n_layers, a->d_model, a->vocab_size,
                     sf_arch_name(b->arch), b->n_layers, b->d_model, b->vocab_size);
        sf_model_free(&r->model);
      }
    }
  } else {
    rc = sf_model_init_random(m->cfg, &r->ctx, seed, &r->model, err);
  }
  if (rc != SF_OK) return rc;
  if (m->checkpoint && !(r->model_checkpoint = strdup(m->checkpoint))) {
    sf_model_free(&r->model);
    return sf_fail(err, SF_ERR_NOMEM, "runner: out of host memory");
  }
  memcpy(&r->model_cfg, m->cfg, sizeof r->model_cfg); /* bytes, padding included: same_model memcmps */
  r->model_seed = seed;
  r->have_model = 1;
  return SF_OK;
}

static int64_t weights_bytes(const sf_model *m) {
  int64_t total = 0;
  for (int32_t i = 0; i < m->n_tensors; i++)
    total += sf_tensor_numel(&m->tensors[i]) * (int64_t)sf_dtype_size(m->tensors[i].dtype);
  return total;
}

static sf_status check_input(const sf_work_item *item, const sf_runner_batch *in, sf_error *err) {
  if (!in || !in->ids || !in->lens || in->batch != item->batch || item->batch < 1)
    return sf_fail(err, SF_ERR_ARG, "runner: item %s: the batch's sequences are missing", item->key);
  for (int32_t b = 0; b < in->batch; b++) {
    if (in->lens[b] < 1)
      return sf_fail(err, SF_ERR_ARG, "runner: item %s: sequence %d has an empty prompt", item->key, (int)b);
    if (item->kind == SF_ITEM_GENERATE && (!in->gen || in->gen[b] < 1))
      return sf_fail(err, SF_ERR_ARG, "runner: item %s: sequence %d generates no tokens", item->key, (int)b);
  }
  return SF_OK;
}

/* Peak and cache bytes of the item, and the estimate with its real lengths
 * (per rank of a group: the cache, activations and workspace divided by k,
 * as the plan does). */
static void fill_memory(const sf_runner *r, const sf_work_item *item, const sf_runner_batch *in,
                        const rn_memory *mem, sf_item_result *res) {
  const sf_model_config *c = &r->model.cfg;
  int64_t max_prompt = 0, gmax = 0;
  for (int32_t b = 0; b < in->batch; b++) {
    if (in->lens[b] > max_prompt) max_prompt = in->lens[b];
    if (item->kind == SF_ITEM_GENERATE && in->gen[b] > gmax) gmax = in->gen[b];
  }
  res->weights_bytes = weights_bytes(&r->model);
  if (c->arch == SF_ARCH_TRANSFORMER) res->kv_cache_bytes = mem->state_bytes;
  else res->state_bytes = mem->state_bytes;
  /* The backend's own count where it keeps one (cuda: every allocation,
   * workspaces included), else what the engine holds. */
  res->peak_bytes = r->ctx.mem_peak > 0 ? r->ctx.mem_peak
                                        : res->weights_bytes + mem->state_bytes + mem->scratch_bytes;
  sf_memory_estimate e;
  sf_model_estimate_memory(c, r->ctx.ops->act_dtype, in->batch, max_prompt, gmax,
                           item->prefill_chunk > 0 && mem->cp_k <= 1 ? item->prefill_chunk : 0, &e);
  const int64_t k = mem->cp_k > 1 ? mem->cp_k : 1;
  res->est_bytes = e.weights + (e.cache + k - 1) / k + (e.activations + k - 1) / k + (e.workspace + k - 1) / k;
}

/* A kernels item: the harness times the op on the item's shape and checks
 * it against the cpu reference; its status maps onto the item's. */
static sf_status run_kernels(sf_runner *r, const sf_work_item *item, const sf_model_config *cfg,
                             sf_runner_output *out, sf_error *err) {
  sf_item_result *res = &out->result;
  sf_error e;
  sf_error_clear(&e);
  if (!r->kbench) {
    r->kbench = calloc(1, sizeof *r->kbench);
    if (!r->kbench) return sf_fail(err, SF_ERR_NOMEM, "runner: out of host memory");
    if (sf_kbench_ctx_init(r->kbench, r->cfg.device, &e) != SF_OK) {
      free(r->kbench);
      r->kbench = NULL;
      sf_runner_result_set(res, SF_STATUS_ERROR, "kernel harness: %s", e.msg);
      return SF_OK;
    }
  }
  int n = 0;
  sf_kbench_info info;
  memset(&info, 0, sizeof info);
  sf_status rc = sf_kbench_run_item_cfg(r->kbench, item, cfg, &r->kernel_row, 1, &n, &info, &e);
  if (n > 0) {
    out->kernels = &r->kernel_row;
    out->n_kernels = n;
    res->ref_max_rel_err = r->kernel_row.max_rel_err;
  }
  if (rc == SF_ERR_NOMEM) sf_runner_result_set(res, SF_STATUS_OOM, "%s", e.msg);
  else if (rc == SF_ERR_UNSUPPORTED) sf_runner_result_set(res, SF_STATUS_SKIPPED, "%s", e.msg);
  else if (rc != SF_OK) sf_runner_result_set(res, SF_STATUS_ERROR, "%s", e.msg);
  else if (info.status != SF_STATUS_OK) sf_runner_result_set(res, info.status, "%s", info.message);
  else
    snprintf(res->message, sizeof res->message, "%.1f%% of the %s roofline; %lld wrong vs the cpu reference",
             info.pct_roof, info.bound ? info.bound : "?", (long long)r->kernel_row.n_wrong);
  return SF_OK;
}

/* The item's own failure injected on this rank (SCANFLASH_FAIL_ITEM):
 * 1 up front (every member decides the same, before any collective), 2 in
 * the measurement (KEY@G on group rank G). */
static int injected(const sf_runner *r, const sf_work_item *item, const sf_transport *t) {
  if (!r->fail_key || strcmp(r->fail_key, item->key)) return 0;
  if (r->fail_member < 0) return 1;
  return r->fail_member == (t ? t->rank : 0) ? 2 : 0;
}

static sf_status run(sf_runner *r, sf_transport *t, const sf_work_item *item, const sf_runner_model *model,
                     const sf_runner_batch *in, sf_runner_output *out, sf_error *err) {
  if (!r || !item || !out) return sf_fail(err, SF_ERR_ARG, "runner: item and output are required");
  if (t && item->gpus <= 1)
    return sf_fail(err, SF_ERR_ARG, "runner: item %s needs %d GPU(s): no group of %d ranks", item->key,
                   (int)item->gpus, t->size);
  memset(out, 0, sizeof *out);
  r->n_repeats = r->n_steps = 0;
  sf_item_result *res = &out->result;
  sf_runner_result_init(res, item, r->cfg.rank, r->cuda ? r->cfg.device : -1, r->host);
  const double t0 = sf_engine_now();
  const double deadline = item->timeout_s > 0 ? t0 + item->timeout_s : 0;

  if (injected(r, item, t) == 1) {
    sf_runner_result_set(res, SF_STATUS_ERROR, "injected failure (SCANFLASH_FAIL_ITEM)");
  } else if (item->gpus > 1 && (!t || t->size != item->gpus)) {
    sf_runner_result_set(res, SF_STATUS_SKIPPED,
                         "needs %d GPUs: a context-parallel item runs on a group of %d ranks of one node "
                         "(scanflash run hands it to one)",
                         (int)item->gpus, (int)item->gpus);
  } else if (item->kind == SF_ITEM_KERNELS && !r->cuda) {
    sf_runner_result_set(res, SF_STATUS_SKIPPED, "kernel benchmarks need the cuda backend");
  } else if (item->kind == SF_ITEM_KERNELS) {
    if (!model || !model->cfg) return sf_fail(err, SF_ERR_ARG, "runner: item %s has no model", item->key);
    SF_TRY(run_kernels(r, item, model->cfg, out, err));
  } else if (item->kind != SF_ITEM_GENERATE && item->kind != SF_ITEM_PREFILL) {
    sf_runner_result_set(res, SF_STATUS_ERROR, "unknown item kind %d", (int)item->kind);
  } else if (!model || !model->cfg) {
    return sf_fail(err, SF_ERR_ARG, "runner: item %s has no model", item->key);
  } else {
    SF_TRY(check_input(item, in, err));
    res->prompt_tokens = 0;
    res->generated_tokens = 0;
    for (int32_t b = 0; b < in->batch; b++) {
      res->prompt_tokens += in->lens[b];
      if (item->kind == SF_ITEM_GENERATE) res->generated_tokens += in->gen[b];
    }
    sf_error e;
    sf_error_clear(&e);
    rn_stop stop = {.status = SF_STATUS_OK};
    rn_memory mem = {.cp_k = t ? t->size : 1};
    r->ctx.mem_peak = r->ctx.mem_live; /* the item's peak, from here */
    sf_status rc = ensure_model(r, model, item->seed, &e);
    if (rc != SF_OK) sf_fail_context(&e, "building model %s", item->model);
    /* A group goes on together or not at all. */
    if (t) rc = t->agree(t, rc, &e);
    if (rc == SF_OK) rc = rn_measure(r, t, item, in, deadline, &stop, &mem, &e);
    if (rc == SF_ERR_NOMEM) {
      /* Release everything: the next item may fit where this one did not. */
      sf_runner_drop_model(r);
      sf_runner_result_set(res, SF_STATUS_OOM, "%s", e.msg);
    } else if (rc != SF_OK) {
      sf_runner_result_set(res, SF_STATUS_ERROR, "%s", e.msg);
    } else if (stop.status != SF_STATUS_OK) {
      sf_runner_result_set(res, stop.status, "%s", stop.message);
    } else {
      fill_memory(r, item, in, &mem, res);
      rn_metrics(r, item, in, res);
      if (r->nvml) sf_nvml_clocks(r->nvml, &res->sm_clock_mhz, &res->mem_clock_mhz);
      if (t)
        snprintf(res->message, sizeof res->message,
                 "context parallel over %d ranks (%s): prefill in one pass, <= %lld tokens per sequence per "
                 "rank; eager decode steps%s%.80s",
                 t->size, r->model.cfg.arch == SF_ARCH_TRANSFORMER ? "ring attention, KV sharded" : "state passing",
                 (long long)mem.chunk_tokens, r->energy_note[0] ? "; " : "", r->energy_note);
      else
        snprintf(res->message, sizeof res->message, "prefill in %lld chunk(s) of %lld tokens%s%s%s%.120s",
                 (long long)mem.n_chunks, (long long)mem.chunk_tokens,
                 mem.graphs ? "; decode steps replay a CUDA graph" : "",
                 mem.persistent ? "; one persistent kernel a decode step" : "", r->energy_note[0] ? "; " : "",
                 r->energy_note);
    }
    if (res->status != SF_STATUS_OK) r->n_repeats = r->n_steps = 0;
  }
  res->t_end = sf_runner_unix_now();
  out->repeats = r->repeats;
  out->n_repeats = r->n_repeats;
  out->steps = r->steps;
  out->n_steps = r->n_steps;
  for (int64_t i = 0; i < r->n_repeats; i++) memcpy(r->repeats[i].key, item->key, SF_KEY_LEN);
  for (int64_t i = 0; i < r->n_steps; i++) memcpy(r->steps[i].key, item->key, SF_KEY_LEN);
  return SF_OK;
}

sf_status sf_runner_run(sf_runner *r, const sf_work_item *item, const sf_runner_model *model,
                        const sf_runner_batch *in, sf_runner_output *out, sf_error *err) {
  return run(r, NULL, item, model, in, out, err);
}

sf_status sf_runner_run_group(sf_runner *r, sf_transport *t, const sf_work_item *item,
                              const sf_runner_model *model, const sf_runner_batch *in,
                              sf_runner_output *out, sf_error *err) {
  if (!t) return sf_fail(err, SF_ERR_ARG, "runner: a context-parallel item needs its group's transport");
  return run(r, t, item, model, in, out, err);
}

sf_op_ctx *sf_runner_op_ctx(sf_runner *r) { return &r->ctx; }
