/* Internals shared by the spec sources: the key table, where each key was
 * given (for errors that span keys), and the setters both the YAML reader
 * and the flag reader call, so a value means the same in either. */
#ifndef SCANFLASH_SPEC_INTERNAL_H
#define SCANFLASH_SPEC_INTERNAL_H

#include "spec/spec.h"

typedef enum sf_spec_key {
  K_NAME = 0,
  K_KINDS,
  K_ARCHS,
  K_MODELS,
  K_CONTEXTS,
  K_BATCHES,
  K_GENS,
  K_PROBLEMS,
  K_REPEATS,
  K_WARMUP,
  K_SEED,
  K_DTYPE,
  K_GPUS,
  K_ITEM_TIMEOUT,
  K_DEVICE_MEM,
  K_PREFILL_CHUNK,
  K_KERNELS,
  K_COUNT
} sf_spec_key;

typedef struct sf_spec_key_info {
  const char *yaml;       /* "contexts" */
  const char *flag;       /* "--context" */
  int is_list;            /* a YAML sequence is accepted (each element is a term list) */
  const char *expect;     /* "a list of token counts", for type errors */
} sf_spec_key_info;

extern const sf_spec_key_info sf_spec_keys[K_COUNT];
/* The key named s (YAML name), or -1. */
int sf_spec_key_by_yaml(const char *s);
/* The closest of names[0..n) to s within edit distance 2, or NULL. */
const char *sf_spec_suggest(const char *s, const char *const *names, int n);

/* Where each key was given: "FILE:L:C: key 'contexts'" or "--context";
 * empty when it takes its default. */
typedef struct sf_spec_where {
  int set[K_COUNT];
  char at[K_COUNT][200];
  sf_status code;         /* error code for values: SF_ERR_FORMAT (file) or SF_ERR_ARG (flags) */
} sf_spec_where;

/* Starts an empty spec (nothing set, no defaults yet). */
void sf_spec_begin(sf_spec *s, sf_spec_where *w, sf_status code);

/* Applies one scalar text to a key: list keys append (the text may be a
 * comma-separated list of terms), scalar keys set. Errors name the value,
 * not the key (callers prepend where it came from). */
sf_status sf_spec_set_text(sf_spec *s, sf_spec_key key, const char *text, sf_error *err);

/* Models: one preset by name (scalar form), or a full entry. */
sf_status sf_spec_add_model(sf_spec *s, const sf_spec_model *m, sf_error *err);

/* Custom shapes: applies explicit overrides to a preset's config and
 * re-derives what was not given (d_inner, dt_rank, ssm_heads, head_dim,
 * rot_dim, d_ff). */
enum {
  SF_SHAPE_N_LAYERS = 0,
  SF_SHAPE_D_MODEL,
  SF_SHAPE_VOCAB_SIZE,
  SF_SHAPE_EXPAND,
  SF_SHAPE_D_INNER,
  SF_SHAPE_D_STATE,
  SF_SHAPE_D_CONV,
  SF_SHAPE_DT_RANK,
  SF_SHAPE_SSM_HEADS,
  SF_SHAPE_SSM_HEAD_DIM,
  SF_SHAPE_N_GROUPS,
  SF_SHAPE_CHUNK_SIZE,
  SF_SHAPE_N_HEADS,
  SF_SHAPE_N_KV_HEADS,
  SF_SHAPE_HEAD_DIM,
  SF_SHAPE_ROT_DIM,
  SF_SHAPE_D_FF,
  SF_SHAPE_COUNT
};
extern const char *const sf_shape_field_names[SF_SHAPE_COUNT];
/* True when the field belongs to arch's shape. */
int sf_shape_field_applies(int field, sf_arch arch);
typedef struct sf_shape_overrides {
  int set[SF_SHAPE_COUNT];
  int64_t v[SF_SHAPE_COUNT];
} sf_shape_overrides;
sf_status sf_shape_apply(sf_model_config *cfg, const sf_shape_overrides *o, sf_error *err);
/* The arch's default preset (mamba-130m, mamba2-130m, pythia-160m). */
const char *sf_arch_default_preset(sf_arch a);
/* "mamba1" -> SF_ARCH_MAMBA1; -1 when unknown. */
int sf_arch_parse(const char *s);

/* Reads YAML text into s (no defaults, no finish). */
sf_status sf_spec_yaml_build(const char *text, size_t len, const char *where, sf_spec *s, sf_spec_where *w,
                             sf_error *err);
/* Begins s from a YAML file: source_path, source_text and a default name
 * (the file's base name) set; no finish. */
sf_status sf_spec_file_build(const char *path, sf_spec *s, sf_spec_where *w, sf_error *err);

/* Applies defaults, checks what spans keys, renders the canonical text. */
sf_status sf_spec_finish(sf_spec *s, const sf_spec_where *w, sf_error *err);

/* A duration: seconds, or with an s/m/h suffix; >= 0. */
sf_status sf_spec_parse_duration(const char *text, double *out, sf_error *err);

/* Growable string buffer (canonical text, flag lines). */
typedef struct sf_strbuf {
  char *s;
  size_t len, cap;
  int oom;
} sf_strbuf;
void sf_sb_printf(sf_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sf_sb_quoted(sf_strbuf *b, const char *s); /* a YAML double-quoted scalar */
char *sf_sb_take(sf_strbuf *b);                 /* NULL when an append failed */

#endif
