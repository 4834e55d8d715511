/* Sweep specs: what a run measures, from a YAML file (libyaml) or from
 * quick-sweep flags in the spirit of nccl-tests; both produce the same
 * sf_spec, through one parser for values, lists and ranges. A spec expands
 * into an ordered list of work items, each with a stable key, a memory
 * estimate, a cost estimate and an OOM prediction (scanflash plan shows them;
 * scanflash run schedules them largest cost first).
 *
 * YAML (every key optional except as noted; defaults in brackets):
 *
 *   name: quick                # label of the sweep [the file's basename]
 *   kinds: [generate]          # generate | prefill | kernels  [generate]
 *   archs: [mamba1, transformer]  # optional: restricts the sweep to these
 *                              # architectures; without models, each arch
 *                              # runs its default preset (mamba-130m,
 *                              # mamba2-130m, pythia-160m)
 *   models:                    # [the archs' default presets]
 *     - mamba-130m             # a preset (its arch comes from the preset)
 *     - preset: mamba-370m     # custom shape: a preset (or `arch:` for that
 *       name: mamba-370m-l24   #   arch's smallest preset) with overrides;
 *       n_layers: 24           #   a custom shape needs its own name
 *     - checkpoint: /models/mamba-130m-hf   # weights from a Hugging Face
 *       preset: mamba-130m     #   folder; its shape (preset + overrides)
 *       name: mamba-130m-hf    #   plans memory and cost [name: folder name]
 *   contexts: [2k, 8k]         # tokens per sequence; 0 = natural prompt;
 *                              # "2k:1M:x2" geometric, "1k:4k:+1k" arithmetic [2k]
 *   batches: "1:128:x2"        # sequences per item [1]
 *   gens: [128, canonical]     # new tokens; canonical = the solution's length [128]
 *   problems: all              # all | 0-19 | [0, 5, "10-19", HumanEval/42] [all]
 *   repeats: 5                 # timed repeats per item [3]
 *   warmup: 2                  # untimed runs before them [1]
 *   seed: 0                    # weights and prompt order [0]
 *   dtype: bf16                # bf16 | f16 | f32 [bf16]
 *   gpus: 1                    # GPUs per item, or rules, first match wins:
 *                              #   gpus: [1, "transformer>=512k:4"]
 *                              #   gpus: {default: 1, rules: [{arch: transformer,
 *                              #          min_context: 512k, gpus: 4}]}
 *   item_timeout: 30m          # seconds (or s/m/h suffix); 0 = none [0]
 *   device_mem: 80G            # bytes per GPU for OOM prediction [80G]
 *   prefill_chunk: 0           # prefill tokens per sequence per step; 0 = all [0]
 *   kernels: [selective_scan, attention]   # ops for kind kernels
 *
 * Quick-sweep flags, one per key: --name --kind --arch --model --context
 * --batch --gen --problems --repeats --warmup --seed --dtype --gpus
 * --item-timeout --device-mem --prefill-chunk --kernels; the values are the
 * YAML scalars (lists comma-separated: --context 2k:1M:x2 --batch 1,8,64).
 * With a spec file only --device-mem and --item-timeout may be added (they
 * override the file).
 *
 * Item order (index): archs (mamba1, mamba2, transformer) x models (spec
 * order) x contexts x batches x kinds (generate, prefill, kernels); within
 * generate: gens x problem groups; prefill: problem groups; kernels: ops (spec
 * order, those that apply to the model's arch). Problem groups cut the
 * selection into consecutive runs of `batch` problems; the last one wraps
 * around to the start of the selection.
 *
 * Item conventions: first_problem is a position in spec->problems (the
 * selection, which equals the problem index when the selection is "all");
 * sequence g of the item uses problems[(first_problem + g) % n_problems]
 * (sf_plan_item_problems). Prefill items have gen 0. Kernels items run on
 * random inputs with one layer's shapes of the model: gen 0, first_problem
 * -1, gpus 1, and the op in sf_plan_item.kernel_op (part of the key).
 * est_bytes is per GPU: the weights whole, cache, activations and workspace
 * divided by the item's gpus. Natural prompts and canonical generation
 * lengths are planned at SF_SPEC_NATURAL_TOKENS / SF_SPEC_CANONICAL_TOKENS. */
#ifndef SCANFLASH_SPEC_H
#define SCANFLASH_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "scanflash/error.h"
#include "scanflash/records.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  SF_SPEC_PROBLEMS = 164,         /* HumanEval+ v0.1.10; the run checks the dataset */
  SF_SPEC_MAX_LIST = 4096,        /* values in one list (after range expansion) */
  SF_SPEC_MAX_ITEMS = 1000000,    /* items one spec may expand to */
  SF_SPEC_MAX_GPU_RULES = 16
};
/* Planning bounds where lengths depend on the data (the run re-estimates
 * with the real lengths): natural prompts and canonical solutions. */
enum { SF_SPEC_NATURAL_TOKENS = 1024, SF_SPEC_CANONICAL_TOKENS = 512 };

#define SF_SPEC_DEFAULT_DEVICE_MEM (80LL << 30)

/* Ops a kernels item benchmarks (names as in the op table). */
typedef enum sf_kernel_op {
  SF_KOP_SELECTIVE_SCAN = 0,
  SF_KOP_SELECTIVE_SCAN_NAIVE,
  SF_KOP_SSD,
  SF_KOP_SSD_NAIVE,
  SF_KOP_CONV1D,
  SF_KOP_ATTENTION,
  SF_KOP_ATTENTION_NAIVE,
  SF_KOP_ATTENTION_DECODE,
  SF_KOP_COUNT
} sf_kernel_op;

const char *sf_kernel_op_name(sf_kernel_op op);
/* True when op runs on models of arch (conv1d: both Mamba archs). */
int sf_kernel_op_applies(sf_kernel_op op, sf_arch arch);

/* One model of the sweep. */
typedef struct sf_spec_model {
  char name[SF_NAME_LEN];      /* label in items and results */
  char preset[SF_NAME_LEN];    /* the preset the shape starts from */
  int custom;                  /* shape overrides were given */
  char *checkpoint;            /* Hugging Face folder (malloc'd), or NULL: random weights */
  sf_model_config cfg;         /* the shape: plans memory and cost, part of the key */
} sf_spec_model;

/* GPUs per item: first rule whose arch and min_context match, else default. */
typedef struct sf_gpu_rule {
  int arch;                    /* sf_arch, or -1 for any */
  int64_t min_context;
  int32_t gpus;
} sf_gpu_rule;

typedef struct sf_spec {
  char name[SF_NAME_LEN];
  int32_t n_kinds;
  int32_t kinds[3];            /* sf_item_kind, in canonical order, no duplicates */
  int32_t n_archs;             /* 0: no restriction */
  int32_t archs[3];            /* sf_arch */
  int32_t n_models;
  sf_spec_model *models;
  int32_t n_contexts;
  int64_t *contexts;           /* 0 = natural prompt */
  int32_t n_batches;
  int32_t *batches;
  int32_t n_gens;
  int32_t *gens;               /* or SF_GEN_CANONICAL */
  int32_t n_problems;
  int32_t *problems;           /* problem indices in selection order */
  int problems_all;            /* the selection was "all" */
  int32_t repeats, warmup;
  uint64_t seed;
  sf_dtype dtype;
  int32_t gpus_default;
  int32_t n_gpu_rules;
  sf_gpu_rule gpu_rules[SF_SPEC_MAX_GPU_RULES];
  double item_timeout_s;       /* 0 = none */
  int64_t device_mem;          /* bytes per GPU, for OOM prediction */
  int64_t prefill_chunk;       /* 0 = the whole prompt in one step */
  int32_t n_kernel_ops;
  int32_t kernel_ops[SF_KOP_COUNT]; /* sf_kernel_op, spec order */

  char *source_path;           /* the YAML file, or NULL for flags */
  char *source_text;           /* the file's bytes, or the flags as one line */
  char *canonical;             /* normalised YAML of every field (defaults
                                  included): parses back to the same spec;
                                  kept with results for provenance */
} sf_spec;

void sf_spec_free(sf_spec *spec);

/* A YAML spec from a file / from text (where names the text in errors).
 * Errors are one line, "WHERE:LINE:COL: key 'contexts': ...". */
sf_status sf_spec_load_file(const char *path, sf_spec *spec, sf_error *err);
sf_status sf_spec_parse_yaml(const char *text, size_t len, const char *where, sf_spec *spec,
                             sf_error *err);

/* The spec of a command line: argv[0] is the subcommand; the arguments are a
 * YAML path (the one positional argument) or quick-sweep flags (--flag V or
 * --flag=V), plus --device-mem / --item-timeout with either. Every argument
 * that is not the spec's goes to rest_argv (capacity argc + 1; rest_argv[0] =
 * argv[0], NULL-terminated), in order, for the command's own getopt;
 * caller_value_opts (NULL-terminated, may be NULL) names the command's
 * options that take a separate value ("-o", "--format") so their values are
 * not mistaken for a spec path. Neither a path nor a flag: SF_ERR_ARG. */
sf_status sf_spec_from_args(int argc, char **argv, const char *const *caller_value_opts, sf_spec *spec,
                            int *rest_argc, char **rest_argv, sf_error *err);
/* One-paragraph help for the quick-sweep flags, for --help texts. */
const char *sf_spec_flags_help(void);

/* Shared value parsers (YAML scalars and flag values go through these).
 * A list is comma-separated terms; a term is one value or a range
 * START:END:xFACTOR (geometric, integer factor >= 2) or START:END:+STEP
 * (arithmetic); END must be >= START and values never pass END. Counts take
 * k/M/G suffixes. No value twice. Appends to *vals (NULL, or an array an
 * earlier call returned; *n values; the caller frees it); errors name the
 * term, not the key (callers add "--context: " or "FILE:L:C: key 'contexts': "). */
typedef enum sf_spec_value_kind {
  SF_VAL_CONTEXT,              /* >= 0 tokens */
  SF_VAL_BATCH,                /* >= 1 */
  SF_VAL_GEN                   /* >= 1, or "canonical" (SF_GEN_CANONICAL) */
} sf_spec_value_kind;
sf_status sf_spec_parse_list(const char *text, sf_spec_value_kind kind, int64_t **vals, int32_t *n,
                             sf_error *err);
/* Problem selection: "all", or comma-separated indices, "A-B" ranges (A <=
 * B), "HumanEval/N" task ids and START:END:+STEP ranges, each within
 * 0..SF_SPEC_PROBLEMS-1, no problem twice. all=1 when the selection is "all". */
sf_status sf_spec_parse_problems(const char *text, int32_t **ids, int32_t *n, int *all, sf_error *err);

/* ---- expansion -------------------------------------------------------- */

typedef struct sf_plan_item {
  sf_work_item item;           /* index = position in canonical order */
  int32_t kernel_op;           /* sf_kernel_op for kernels items, else -1 */
  sf_memory_estimate mem;      /* per GPU (sharded parts divided by gpus) */
  double est_flops;            /* one run (one repeat) */
  double est_bytes_moved;      /* one run: device memory traffic */
} sf_plan_item;

typedef struct sf_plan {
  int32_t n_items;
  sf_plan_item *items;
  int32_t n_oom_predicted;
  double total_cost;           /* est_cost summed over items not predicted to OOM */
  double total_cost_all;       /* over every item */
} sf_plan;

/* Expands the spec (canonical order: items[i].item.index == i). */
sf_status sf_spec_expand(const sf_spec *spec, sf_plan *plan, sf_error *err);
/* Reorders for scheduling: est_cost descending, ties by index. */
void sf_plan_sort_by_cost(sf_plan *plan);
void sf_plan_free(sf_plan *plan);

/* The problems of an item's sequences (batch of them), in order. */
void sf_plan_item_problems(const sf_spec *spec, const sf_plan_item *it, int32_t *out);

/* The canonical string an item's key hashes (format v1, one "field=value"
 * line each, in this order, '\n' after each):
 *   scanflash-item-v1
 *   kind=generate|prefill|kernels
 *   arch=mamba1|mamba2|transformer
 *   model=NAME
 *   weights=random|checkpoint      (the checkpoint's path is not part of it)
 *   shape=ARCH:field=v,...         (see sf_spec_shape_string)
 *   dtype=bf16|f16|f32
 *   context=N
 *   batch=N
 *   gen=N|canonical                (0 for prefill and kernels)
 *   problems=I,J,...               (the sequences' problem indices; - for kernels)
 *   op=NAME                        (- unless kernels)
 *   repeats=N
 *   warmup=N
 *   seed=N
 *   gpus=N
 *   prefill_chunk=N
 * Integers in decimal; no estimates, timeouts, index, rank or path in it, so
 * the key is the same on every run, machine and rank count.
 * key = the first 16 hex digits of sha256(canonical string).
 * Returns a malloc'd string (NULL when out of memory). */
char *sf_plan_item_canonical(const sf_spec *spec, const sf_plan_item *it);
/* The shape part: mamba1:n_layers=24,d_model=768,... (fields per arch;
 * floats as %.9g). Returns the length it needs, like snprintf. */
int sf_spec_shape_string(const sf_model_config *cfg, char *buf, size_t size);
/* key = first 16 hex of sha256(canonical). */
void sf_spec_key_of(const char *canonical, char key[SF_KEY_LEN]);

/* Cost model: estimated seconds on a reference GPU (roofline at
 * SF_REF_FLOPS and SF_REF_BYTES_S, plus SF_REF_STEP_S per layer and decode
 * step), times repeats + warmup; relative, for largest-first scheduling.
 * prefill FLOPs: 2 * params * tokens, + Transformer attention 4*b*L^2*h*d/2
 * per layer (causal), + Mamba scan 9*b*L*d_inner*d_state (SSD: chunked
 * terms) per layer; decode: 2 * params per token, + per layer the cache it
 * reads (KV: 4*h*d*position FLOPs and its bytes; SSM: the state). */
#define SF_REF_FLOPS 4.0e14
#define SF_REF_BYTES_S 2.5e12
#define SF_REF_STEP_S 1.0e-5

#ifdef __cplusplus
}
#endif
#endif
