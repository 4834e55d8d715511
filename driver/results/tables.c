/* Schema v1: the six tables, their fields and units. docs/results-schema.md
 * documents the same list; keep them in step. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "results/results_internal.h"

#define FLD(T, m, k, u) {#m, offsetof(T, m), sizeof(((T *)0)->m), k, u}
#define FLDN(name, T, m, k, u) {name, offsetof(T, m), sizeof(((T *)0)->m), k, u}

static const rs_field devices_f[] = {
    FLD(sf_results_device, rank, FK_I32, NULL),
    FLD(sf_results_device, host, FK_STR, NULL),
    FLD(sf_results_device, device, FK_I32, NULL),
    FLD(sf_results_device, backend, FK_STR, NULL),
    FLD(sf_results_device, name, FK_STR, NULL),
    FLD(sf_results_device, uuid, FK_STR, NULL),
    FLD(sf_results_device, cc_major, FK_I32, NULL),
    FLD(sf_results_device, cc_minor, FK_I32, NULL),
    FLD(sf_results_device, sm_count, FK_I32, NULL),
    FLD(sf_results_device, sm_clock_mhz, FK_I32, "MHz"),
    FLD(sf_results_device, mem_clock_mhz, FK_I32, "MHz"),
    FLD(sf_results_device, mem_bus_width_bits, FK_I32, "bit"),
    FLD(sf_results_device, memory_bytes, FK_I64, "B"),
    FLD(sf_results_device, l2_bytes, FK_I64, "B"),
    FLD(sf_results_device, driver_version, FK_I32, NULL),
    FLD(sf_results_device, runtime_version, FK_I32, NULL),
};

static const rs_field problems_f[] = {
    FLD(sf_results_problem, index, FK_I32, NULL),
    FLD(sf_results_problem, task_id, FK_STR, NULL),
    FLD(sf_results_problem, prompt_tokens, FK_I64, "token"),
    FLD(sf_results_problem, solution_tokens, FK_I64, "token"),
    FLD(sf_results_problem, prompt_sha256, FK_STR, NULL),
};

#define IT(m, k, u) FLDN(#m, sf_results_item, item.m, k, u)
#define RS(m, k, u) FLDN(#m, sf_results_item, result.m, k, u)
static const rs_field items_f[] = {
    IT(key, FK_STR, NULL),
    IT(index, FK_I32, NULL),
    IT(kind, FK_KIND, NULL),
    IT(arch, FK_STR, NULL),
    IT(model, FK_STR, NULL),
    IT(model_index, FK_I32, NULL),
    IT(op, FK_STR, NULL),
    IT(dtype, FK_STR, NULL),
    IT(context, FK_I64, "token"),
    IT(prefill_chunk, FK_I64, "token"),
    IT(batch, FK_I32, "sequence"),
    IT(gen, FK_I32, "token"),
    IT(first_problem, FK_I32, NULL),
    IT(oom_predicted, FK_I32, NULL),
    IT(repeats, FK_I32, NULL),
    IT(warmup, FK_I32, NULL),
    IT(gpus, FK_I32, NULL),
    IT(seed, FK_U64, NULL),
    IT(timeout_s, FK_F64, "s"),
    IT(est_cost, FK_F64, "1"),
    IT(est_bytes, FK_I64, "B"),
    RS(status, FK_STATUS, NULL),
    RS(message, FK_STR, NULL),
    RS(rank, FK_I32, NULL),
    RS(device, FK_I32, NULL),
    RS(host, FK_STR, NULL),
    RS(t_start, FK_F64, "s since 1970-01-01T00:00:00Z"),
    RS(t_end, FK_F64, "s since 1970-01-01T00:00:00Z"),
    RS(prompt_tokens, FK_I64, "token"),
    RS(generated_tokens, FK_I64, "token"),
    RS(ttft_s, FK_F64, "s"),
    RS(prefill_tok_s, FK_F64, "token/s"),
    RS(decode_tok_s, FK_F64, "token/s"),
    RS(e2e_tok_s, FK_F64, "token/s"),
    RS(tpot_p50_s, FK_F64, "s"),
    RS(tpot_p90_s, FK_F64, "s"),
    RS(tpot_p99_s, FK_F64, "s"),
    RS(prefill_cv, FK_F64, "1"),
    RS(peak_bytes, FK_I64, "B"),
    RS(weights_bytes, FK_I64, "B"),
    RS(kv_cache_bytes, FK_I64, "B"),
    RS(state_bytes, FK_I64, "B"),
    FLDN("mem_est_bytes", sf_results_item, result.est_bytes, FK_I64, "B"),
    RS(energy_j, FK_F64, "J"),
    RS(j_per_token, FK_F64, "J/token"),
    RS(sm_clock_mhz, FK_I32, "MHz"),
    RS(mem_clock_mhz, FK_I32, "MHz"),
    RS(ref_max_rel_err, FK_F64, "1"),
};

static const rs_field repeats_f[] = {
    FLD(sf_repeat_result, key, FK_STR, NULL),
    FLD(sf_repeat_result, repeat, FK_I32, NULL),
    FLD(sf_repeat_result, prefill_s, FK_F64, "s"),
    FLD(sf_repeat_result, decode_s, FK_F64, "s"),
    FLD(sf_repeat_result, total_s, FK_F64, "s"),
    FLD(sf_repeat_result, prompt_tokens, FK_I64, "token"),
    FLD(sf_repeat_result, generated_tokens, FK_I64, "token"),
    FLD(sf_repeat_result, energy_j, FK_F64, "J"),
};

static const rs_field steps_f[] = {
    FLD(sf_step_result, key, FK_STR, NULL),
    FLD(sf_step_result, repeat, FK_I32, NULL),
    FLD(sf_step_result, step, FK_I32, NULL),
    FLD(sf_step_result, position, FK_I64, "token"),
    FLD(sf_step_result, latency_s, FK_F64, "s"),
};

static const rs_field kernels_f[] = {
    FLD(sf_kernel_result, key, FK_STR, NULL),
    FLD(sf_kernel_result, op, FK_STR, NULL),
    FLD(sf_kernel_result, impl, FK_STR, NULL),
    FLD(sf_kernel_result, dtype, FK_STR, NULL),
    FLD(sf_kernel_result, batch, FK_I32, "sequence"),
    FLD(sf_kernel_result, heads, FK_I32, NULL),
    FLD(sf_kernel_result, head_dim, FK_I32, NULL),
    FLD(sf_kernel_result, d_state, FK_I32, NULL),
    FLD(sf_kernel_result, seqlen, FK_I64, "token"),
    FLD(sf_kernel_result, dim, FK_I64, NULL),
    FLD(sf_kernel_result, median_s, FK_F64, "s"),
    FLD(sf_kernel_result, p10_s, FK_F64, "s"),
    FLD(sf_kernel_result, p90_s, FK_F64, "s"),
    FLD(sf_kernel_result, tflops, FK_F64, "TFLOP/s"),
    FLD(sf_kernel_result, gbps, FK_F64, "GB/s"),
    FLD(sf_kernel_result, pct_flops_roof, FK_F64, "%"),
    FLD(sf_kernel_result, pct_bw_roof, FK_F64, "%"),
    FLD(sf_kernel_result, n_wrong, FK_I64, NULL),
    FLD(sf_kernel_result, max_rel_err, FK_F64, "1"),
};

#define NF(a) (int)(sizeof a / sizeof a[0])
const rs_table_desc rs_tables[T_COUNT] = {
    [T_DEVICES] = {"devices", "the devices ranks ran on, one row per (rank, host, device, uuid)",
                   sizeof(sf_results_device), devices_f, NF(devices_f), 64},
    [T_PROBLEMS] = {"problems", "the HumanEval+ problems the sweep used", sizeof(sf_results_problem),
                    problems_f, NF(problems_f), 256},
    [T_ITEMS] = {"items", "one row per work item key: its config and its latest result",
                 sizeof(sf_results_item), items_f, NF(items_f), 512},
    [T_REPEATS] = {"repeats", "one row per timed repeat of an item (after warm-ups)",
                   sizeof(sf_repeat_result), repeats_f, NF(repeats_f), 4096},
    [T_STEPS] = {"decode_steps", "one row per decode step of a repeat: latency vs position",
                 sizeof(sf_step_result), steps_f, NF(steps_f), 16384},
    [T_KERNELS] = {"kernels", "one row per kernel benchmark", sizeof(sf_kernel_result), kernels_f,
                   NF(kernels_f), 1024},
};

void rs_row_copy(rs_table t, void *dst, const void *src) {
  const rs_table_desc *d = &rs_tables[t];
  memset(dst, 0, d->row_size);
  for (int i = 0; i < d->n_fields; i++) {
    const rs_field *f = &d->fields[i];
    char *o = (char *)dst + f->offset;
    const char *in = (const char *)src + f->offset;
    if (f->kind == FK_STR) {
      size_t n = strnlen(in, f->size - 1);
      memcpy(o, in, n); /* the rest stays zero */
    } else {
      memcpy(o, in, f->size);
    }
  }
  if (t == T_ITEMS) { /* result.key is item.key in the file */
    sf_results_item *it = dst;
    memcpy(it->result.key, it->item.key, SF_KEY_LEN);
  }
}

/* ---- key map ---- */

static uint64_t key_hash(const char *key) {
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < SF_KEY_LEN && key[i]; i++) h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
  return h ^ (h >> 29);
}

int64_t rs_keymap_get(const rs_keymap *m, const char *key) {
  if (!m->cap) return -1;
  uint64_t mask = (uint64_t)m->cap - 1;
  for (uint64_t i = key_hash(key) & mask;; i = (i + 1) & mask) {
    if (!m->keys[i][0]) return -1;
    if (!strncmp(m->keys[i], key, SF_KEY_LEN - 1)) return m->vals[i];
  }
}

static void keymap_insert(rs_keymap *m, const char *key, int64_t val) {
  uint64_t mask = (uint64_t)m->cap - 1;
  for (uint64_t i = key_hash(key) & mask;; i = (i + 1) & mask) {
    if (!m->keys[i][0]) {
      size_t n = strnlen(key, SF_KEY_LEN - 1);
      memcpy(m->keys[i], key, n);
      m->keys[i][n] = '\0';
      m->vals[i] = val;
      m->count++;
      return;
    }
    if (!strncmp(m->keys[i], key, SF_KEY_LEN - 1)) {
      m->vals[i] = val;
      return;
    }
  }
}

sf_status rs_keymap_put(rs_keymap *m, const char *key, int64_t val, sf_error *err) {
  if (!key[0]) return sf_fail(err, SF_ERR_INTERNAL, "empty key in the key map");
  if ((m->count + 1) * 2 > m->cap) {
    rs_keymap n = {0};
    n.cap = m->cap ? m->cap * 2 : 64;
    n.keys = calloc((size_t)n.cap, sizeof *n.keys);
    n.vals = calloc((size_t)n.cap, sizeof *n.vals);
    if (!n.keys || !n.vals) {
      free(n.keys);
      free(n.vals);
      return sf_fail(err, SF_ERR_NOMEM, "out of memory (key map of %lld keys)", (long long)n.cap);
    }
    for (int64_t i = 0; i < m->cap; i++)
      if (m->keys[i][0]) keymap_insert(&n, m->keys[i], m->vals[i]);
    rs_keymap_free(m);
    *m = n;
  }
  keymap_insert(m, key, val);
  return SF_OK;
}

void rs_keymap_free(rs_keymap *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}
