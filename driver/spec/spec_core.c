/* The spec struct: keys, setters shared by YAML and flags, custom shapes,
 * defaults, checks that span keys, and the canonical text. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scanflash/parse.h"
#include "spec/spec_internal.h"

const sf_spec_key_info sf_spec_keys[K_COUNT] = {
    [K_NAME] = {"name", "--name", 0, "a name"},
    [K_KINDS] = {"kinds", "--kind", 1, "a list of item kinds (generate, prefill, kernels)"},
    [K_ARCHS] = {"archs", "--arch", 1, "a list of architectures (mamba1, mamba2, transformer)"},
    [K_MODELS] = {"models", "--model", 1, "a list of models"},
    [K_CONTEXTS] = {"contexts", "--context", 1, "a list of token counts"},
    [K_BATCHES] = {"batches", "--batch", 1, "a list of batch sizes"},
    [K_GENS] = {"gens", "--gen", 1, "a list of generation lengths"},
    [K_PROBLEMS] = {"problems", "--problems", 1, "a problem selection"},
    [K_REPEATS] = {"repeats", "--repeats", 0, "a repeat count"},
    [K_WARMUP] = {"warmup", "--warmup", 0, "a warm-up count"},
    [K_SEED] = {"seed", "--seed", 0, "a seed (non-negative integer)"},
    [K_DTYPE] = {"dtype", "--dtype", 0, "a dtype (bf16, f16, f32)"},
    [K_GPUS] = {"gpus", "--gpus", 1, "a GPU count or GPU rules"},
    [K_ITEM_TIMEOUT] = {"item_timeout", "--item-timeout", 0, "a duration"},
    [K_DEVICE_MEM] = {"device_mem", "--device-mem", 0, "a byte count"},
    [K_PREFILL_CHUNK] = {"prefill_chunk", "--prefill-chunk", 0, "a token count"},
    [K_KERNELS] = {"kernels", "--kernels", 1, "a list of kernel ops"},
};

int sf_spec_key_by_yaml(const char *s) {
  for (int k = 0; k < K_COUNT; k++)
    if (!strcmp(s, sf_spec_keys[k].yaml)) return k;
  return -1;
}

static int edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63) return 99;
  int d[64][64];
  for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
      d[i][j] = c;
    }
  return d[la][lb];
}

const char *sf_spec_suggest(const char *s, const char *const *names, int n) {
  const char *best = NULL;
  int bd = 3;
  for (int i = 0; i < n; i++) {
    int dd = edit_distance(s, names[i]);
    if (dd < bd) bd = dd, best = names[i];
  }
  return best;
}

/* ---- kernel ops, archs --------------------------------------------------- */

static const char *const kop_names[SF_KOP_COUNT] = {
    "selective_scan", "selective_scan_naive", "ssd", "ssd_naive",
    "conv1d", "attention", "attention_naive", "attention_decode"};

const char *sf_kernel_op_name(sf_kernel_op op) {
  return (unsigned)op < SF_KOP_COUNT ? kop_names[op] : "unknown";
}

int sf_kernel_op_applies(sf_kernel_op op, sf_arch arch) {
  switch (op) {
    case SF_KOP_SELECTIVE_SCAN:
    case SF_KOP_SELECTIVE_SCAN_NAIVE: return arch == SF_ARCH_MAMBA1;
    case SF_KOP_SSD:
    case SF_KOP_SSD_NAIVE: return arch == SF_ARCH_MAMBA2;
    case SF_KOP_CONV1D: return arch == SF_ARCH_MAMBA1 || arch == SF_ARCH_MAMBA2;
    case SF_KOP_ATTENTION:
    case SF_KOP_ATTENTION_NAIVE:
    case SF_KOP_ATTENTION_DECODE: return arch == SF_ARCH_TRANSFORMER;
    case SF_KOP_COUNT: break;
  }
  return 0;
}

static const char *const arch_names[3] = {"mamba1", "mamba2", "transformer"};

int sf_arch_parse(const char *s) {
  for (int a = 0; a < 3; a++)
    if (!strcmp(s, arch_names[a])) return a;
  return -1;
}

const char *sf_arch_default_preset(sf_arch a) {
  switch (a) {
    case SF_ARCH_MAMBA1: return "mamba-130m";
    case SF_ARCH_MAMBA2: return "mamba2-130m";
    case SF_ARCH_TRANSFORMER: return "pythia-160m";
  }
  return "mamba-130m";
}

/* ---- custom shapes ------------------------------------------------------- */

const char *const sf_shape_field_names[SF_SHAPE_COUNT] = {
    "n_layers", "d_model", "vocab_size", "expand",  "d_inner",    "d_state",
    "d_conv",   "dt_rank", "ssm_heads",  "ssm_head_dim", "n_groups", "chunk_size",
    "n_heads",  "n_kv_heads", "head_dim", "rot_dim", "d_ff"};

int sf_shape_field_applies(int f, sf_arch arch) {
  switch (f) {
    case SF_SHAPE_N_LAYERS:
    case SF_SHAPE_D_MODEL:
    case SF_SHAPE_VOCAB_SIZE: return 1;
    case SF_SHAPE_EXPAND:
    case SF_SHAPE_D_INNER:
    case SF_SHAPE_D_STATE:
    case SF_SHAPE_D_CONV: return arch != SF_ARCH_TRANSFORMER;
    case SF_SHAPE_DT_RANK: return arch == SF_ARCH_MAMBA1;
    case SF_SHAPE_SSM_HEADS:
    case SF_SHAPE_SSM_HEAD_DIM:
    case SF_SHAPE_N_GROUPS:
    case SF_SHAPE_CHUNK_SIZE: return arch == SF_ARCH_MAMBA2;
    default: return arch == SF_ARCH_TRANSFORMER;
  }
}

sf_status sf_shape_apply(sf_model_config *c, const sf_shape_overrides *o, sf_error *err) {
  for (int f = 0; f < SF_SHAPE_COUNT; f++) {
    if (!o->set[f]) continue;
    if (!sf_shape_field_applies(f, c->arch))
      return sf_fail(err, SF_ERR_ARG, "'%s' does not apply to %s models", sf_shape_field_names[f],
                     sf_arch_name(c->arch));
    if (o->v[f] < 1 || o->v[f] > (1 << 24))
      return sf_fail(err, SF_ERR_ARG, "%s %lld is out of range 1..%d", sf_shape_field_names[f],
                     (long long)o->v[f], 1 << 24);
  }
  if (o->set[SF_SHAPE_EXPAND] && o->set[SF_SHAPE_D_INNER])
    return sf_fail(err, SF_ERR_ARG, "give expand or d_inner, not both");
  const sf_model_config base = *c;
#define OV(f, field) \
  if (o->set[f]) c->field = (int32_t)o->v[f]
  OV(SF_SHAPE_N_LAYERS, n_layers);
  OV(SF_SHAPE_D_MODEL, d_model);
  OV(SF_SHAPE_VOCAB_SIZE, vocab_size);
  if (c->arch != SF_ARCH_TRANSFORMER) {
    OV(SF_SHAPE_D_STATE, d_state);
    OV(SF_SHAPE_D_CONV, d_conv);
    int64_t expand = base.d_model > 0 ? base.d_inner / base.d_model : 2;
    if (o->set[SF_SHAPE_EXPAND]) expand = o->v[SF_SHAPE_EXPAND];
    c->d_inner = o->set[SF_SHAPE_D_INNER] ? (int32_t)o->v[SF_SHAPE_D_INNER]
                                          : (int32_t)(expand * c->d_model);
    if (c->arch == SF_ARCH_MAMBA1) {
      c->dt_rank = o->set[SF_SHAPE_DT_RANK] ? (int32_t)o->v[SF_SHAPE_DT_RANK] : (c->d_model + 15) / 16;
    } else {
      OV(SF_SHAPE_SSM_HEAD_DIM, ssm_head_dim);
      OV(SF_SHAPE_N_GROUPS, n_groups);
      OV(SF_SHAPE_CHUNK_SIZE, chunk_size);
      if (o->set[SF_SHAPE_SSM_HEADS]) {
        c->ssm_heads = (int32_t)o->v[SF_SHAPE_SSM_HEADS];
      } else {
        if (c->ssm_head_dim <= 0 || c->d_inner % c->ssm_head_dim)
          return sf_fail(err, SF_ERR_ARG, "d_inner %d is not a multiple of ssm_head_dim %d", c->d_inner,
                         c->ssm_head_dim);
        c->ssm_heads = c->d_inner / c->ssm_head_dim;
      }
    }
  } else {
    OV(SF_SHAPE_N_HEADS, n_heads);
    if (o->set[SF_SHAPE_HEAD_DIM]) {
      c->head_dim = (int32_t)o->v[SF_SHAPE_HEAD_DIM];
    } else {
      if (c->n_heads <= 0 || c->d_model % c->n_heads)
        return sf_fail(err, SF_ERR_ARG, "d_model %d is not a multiple of n_heads %d", c->d_model, c->n_heads);
      c->head_dim = c->d_model / c->n_heads;
    }
    if (o->set[SF_SHAPE_N_KV_HEADS]) c->n_kv_heads = (int32_t)o->v[SF_SHAPE_N_KV_HEADS];
    else if (base.n_kv_heads == base.n_heads) c->n_kv_heads = c->n_heads;
    if (o->set[SF_SHAPE_ROT_DIM]) c->rot_dim = (int32_t)o->v[SF_SHAPE_ROT_DIM];
    else if (base.head_dim > 0) c->rot_dim = (int32_t)((int64_t)c->head_dim * base.rot_dim / base.head_dim);
    if (o->set[SF_SHAPE_D_FF]) c->d_ff = (int32_t)o->v[SF_SHAPE_D_FF];
    else if (base.d_model > 0) c->d_ff = (int32_t)((int64_t)c->d_model * base.d_ff / base.d_model);
  }
#undef OV
  return sf_model_config_validate(c, err);
}

/* ---- setters ------------------------------------------------------------- */

void sf_spec_begin(sf_spec *s, sf_spec_where *w, sf_status code) {
  memset(s, 0, sizeof *s);
  memset(w, 0, sizeof *w);
  w->code = code;
  s->dtype = SF_BF16;
}

void sf_spec_free(sf_spec *s) {
  if (!s) return;
  for (int32_t i = 0; i < s->n_models; i++) free(s->models[i].checkpoint);
  free(s->models);
  free(s->contexts);
  free(s->batches);
  free(s->gens);
  free(s->problems);
  free(s->source_path);
  free(s->source_text);
  free(s->canonical);
  memset(s, 0, sizeof *s);
}

/* Splits a comma list into trimmed terms and calls fn on each. */
typedef sf_status (*term_fn)(sf_spec *s, const char *term, sf_error *err);
static sf_status each_term(sf_spec *s, const char *text, const char *noun, term_fn fn, sf_error *err) {
  const char *p = text;
  for (;;) {
    const char *comma = strchr(p, ',');
    const char *e = comma ? comma : p + strlen(p);
    while (p < e && isspace((unsigned char)*p)) p++;
    while (e > p && isspace((unsigned char)e[-1])) e--;
    char term[128];
    if (e - p >= (long)sizeof term) return sf_fail(err, SF_ERR_ARG, "'%.40s...' is too long", p);
    memcpy(term, p, (size_t)(e - p));
    term[e - p] = '\0';
    if (!term[0]) return sf_fail(err, SF_ERR_ARG, "expected %s, got an empty value", noun);
    SF_TRY(fn(s, term, err));
    if (!comma) return SF_OK;
    p = comma + 1;
  }
}

static sf_status add_kind(sf_spec *s, const char *t, sf_error *err) {
  int k = -1;
  for (int i = 0; i < 3; i++)
    if (!strcmp(t, sf_item_kind_name((sf_item_kind)i))) k = i;
  if (k < 0) return sf_fail(err, SF_ERR_ARG, "unknown kind '%s' (generate, prefill, kernels)", t);
  for (int i = 0; i < s->n_kinds; i++)
    if (s->kinds[i] == k) return sf_fail(err, SF_ERR_ARG, "kind '%s' is listed twice", t);
  /* kept in canonical order whatever the order given */
  int i = s->n_kinds++;
  while (i > 0 && s->kinds[i - 1] > k) s->kinds[i] = s->kinds[i - 1], i--;
  s->kinds[i] = k;
  return SF_OK;
}

static sf_status add_arch(sf_spec *s, const char *t, sf_error *err) {
  int a = sf_arch_parse(t);
  if (a < 0) return sf_fail(err, SF_ERR_ARG, "unknown architecture '%s' (mamba1, mamba2, transformer)", t);
  for (int i = 0; i < s->n_archs; i++)
    if (s->archs[i] == a) return sf_fail(err, SF_ERR_ARG, "architecture '%s' is listed twice", t);
  s->archs[s->n_archs++] = a;
  return SF_OK;
}

static sf_status add_kop(sf_spec *s, const char *t, sf_error *err) {
  int k = -1;
  for (int i = 0; i < SF_KOP_COUNT; i++)
    if (!strcmp(t, kop_names[i])) k = i;
  if (k < 0) {
    const char *sug = sf_spec_suggest(t, kop_names, SF_KOP_COUNT);
    if (sug) return sf_fail(err, SF_ERR_ARG, "unknown kernel op '%s' (did you mean '%s'?)", t, sug);
    return sf_fail(err, SF_ERR_ARG,
                   "unknown kernel op '%s' (selective_scan, selective_scan_naive, ssd, ssd_naive, conv1d, "
                   "attention, attention_naive, attention_decode)", t);
  }
  for (int i = 0; i < s->n_kernel_ops; i++)
    if (s->kernel_ops[i] == k) return sf_fail(err, SF_ERR_ARG, "kernel op '%s' is listed twice", t);
  s->kernel_ops[s->n_kernel_ops++] = k;
  return SF_OK;
}

static sf_status add_model_name(sf_spec *s, const char *t, sf_error *err) {
  sf_spec_model m;
  memset(&m, 0, sizeof m);
  if (strlen(t) >= sizeof m.name) return sf_fail(err, SF_ERR_ARG, "model name '%s' is too long", t);
  if (sf_model_preset(t, &m.cfg, err) != SF_OK) {
    const char *const *names = sf_model_preset_names();
    int n = 0;
    while (names[n]) n++;
    const char *sug = sf_spec_suggest(t, names, n);
    if (sug) return sf_fail(err, SF_ERR_ARG, "unknown model preset '%s' (did you mean '%s'?)", t, sug);
    return err ? err->code : SF_ERR_ARG;
  }
  snprintf(m.name, sizeof m.name, "%s", t);
  snprintf(m.preset, sizeof m.preset, "%s", t);
  return sf_spec_add_model(s, &m, err);
}

sf_status sf_spec_add_model(sf_spec *s, const sf_spec_model *m, sf_error *err) {
  for (int32_t i = 0; i < s->n_models; i++)
    if (!strcmp(s->models[i].name, m->name))
      return sf_fail(err, SF_ERR_ARG, "model '%s' is listed twice (names must differ)", m->name);
  if (s->n_models >= 256) return sf_fail(err, SF_ERR_ARG, "more than 256 models");
  sf_spec_model *p = realloc(s->models, (size_t)(s->n_models + 1) * sizeof *p);
  if (!p) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  s->models = p;
  p[s->n_models] = *m;
  if (m->checkpoint) {
    p[s->n_models].checkpoint = strdup(m->checkpoint);
    if (!p[s->n_models].checkpoint) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  }
  s->n_models++;
  return SF_OK;
}

static sf_status add_gpu_term(sf_spec *s, const char *t, sf_error *err) {
  const char *colon = strrchr(t, ':');
  int64_t g;
  char gbuf[160]; /* terms are at most 127 characters */
  snprintf(gbuf, sizeof gbuf, "%s", colon ? colon + 1 : t);
  sf_error e;
  if (sf_parse_i64(gbuf, "gpus", &g, &e) != SF_OK)
    return sf_fail(err, SF_ERR_ARG,
                   "'%s' is not a GPU count or rule (N, ARCH:N, ARCH>=CONTEXT:N or >=CONTEXT:N)", t);
  if (g < 1 || g > 1024) return sf_fail(err, SF_ERR_ARG, "'%s': GPU count %lld is out of range 1..1024", t, (long long)g);
  if (!colon) {
    if (s->gpus_default) return sf_fail(err, SF_ERR_ARG, "'%s': the default GPU count is given twice", t);
    s->gpus_default = (int32_t)g;
    return SF_OK;
  }
  if (s->n_gpu_rules >= SF_SPEC_MAX_GPU_RULES)
    return sf_fail(err, SF_ERR_ARG, "more than %d GPU rules", (int)SF_SPEC_MAX_GPU_RULES);
  char left[128];
  size_t ll = (size_t)(colon - t);
  if (ll >= sizeof left) return sf_fail(err, SF_ERR_ARG, "'%s' is too long", t);
  memcpy(left, t, ll);
  left[ll] = '\0';
  sf_gpu_rule r = {-1, 0, (int32_t)g};
  char *ge = strstr(left, ">=");
  if (ge) {
    *ge = '\0';
    const char *cs = ge + 2;
    while (isspace((unsigned char)*cs)) cs++;
    int64_t *v = NULL;
    int32_t n = 0;
    sf_status rc = sf_spec_parse_list(cs, SF_VAL_CONTEXT, &v, &n, err);
    if (rc == SF_OK && n != 1) rc = sf_fail(err, SF_ERR_ARG, "'%s': one context after >=", t);
    if (rc == SF_OK) r.min_context = v[0];
    free(v);
    if (rc != SF_OK) return rc;
  }
  char *a = left;
  while (isspace((unsigned char)*a)) a++;
  for (char *end = a + strlen(a); end > a && isspace((unsigned char)end[-1]);) *--end = '\0';
  if (*a && strcmp(a, "any") && strcmp(a, "*")) {
    r.arch = sf_arch_parse(a);
    if (r.arch < 0)
      return sf_fail(err, SF_ERR_ARG, "'%s': unknown architecture '%s' (mamba1, mamba2, transformer, any)", t, a);
  } else if (!ge) {
    return sf_fail(err, SF_ERR_ARG, "'%s': a rule needs an architecture or >=CONTEXT", t);
  }
  s->gpu_rules[s->n_gpu_rules++] = r;
  return SF_OK;
}

/* Lists kept as int32 go through an int64 copy so duplicates are checked
 * across every element given. */
static sf_status append_i32_list(const char *text, sf_spec_value_kind kind, int32_t **arr, int32_t *n,
                                 sf_error *err) {
  int64_t *v = NULL;
  int32_t nv = *n;
  if (*n) { /* room for every value a list may hold: parse_list only grows at powers of two */
    v = malloc((size_t)SF_SPEC_MAX_LIST * sizeof *v);
    if (!v) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < *n; i++) v[i] = (*arr)[i];
  }
  sf_status rc = sf_spec_parse_list(text, kind, &v, &nv, err);
  if (rc == SF_OK) {
    int32_t *p = realloc(*arr, (size_t)nv * sizeof *p);
    if (!p) rc = sf_fail(err, SF_ERR_NOMEM, "out of memory");
    else {
      for (int32_t i = 0; i < nv; i++) p[i] = (int32_t)v[i];
      *arr = p;
      *n = nv;
    }
  }
  free(v);
  return rc;
}

static sf_status append_i64_list(const char *text, sf_spec_value_kind kind, int64_t **arr, int32_t *n,
                                 sf_error *err) {
  /* parse into a fresh array that starts with the old values (capacity
   * rounded up the way push_i64 expects) */
  int64_t *v = NULL;
  int32_t nv = *n;
  if (*n) {
    v = malloc((size_t)SF_SPEC_MAX_LIST * sizeof *v);
    if (!v) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
    memcpy(v, *arr, (size_t)*n * sizeof *v);
  }
  sf_status rc = sf_spec_parse_list(text, kind, &v, &nv, err);
  if (rc == SF_OK) {
    free(*arr);
    *arr = v;
    *n = nv;
  } else {
    free(v);
  }
  return rc;
}

sf_status sf_spec_set_text(sf_spec *s, sf_spec_key key, const char *text, sf_error *err) {
  if (!text) text = "";
  sf_error e;
  switch (key) {
    case K_NAME: {
      size_t n = strlen(text);
      if (n == 0) return sf_fail(err, SF_ERR_ARG, "expected a name, got nothing");
      if (n >= sizeof s->name)
        return sf_fail(err, SF_ERR_ARG, "'%s' is longer than %d characters", text, (int)sizeof s->name - 1);
      for (const char *p = text; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._+-", *p))
          return sf_fail(err, SF_ERR_ARG, "'%s': a name is letters, digits and . _ + -", text);
      snprintf(s->name, sizeof s->name, "%s", text);
      return SF_OK;
    }
    case K_KINDS: return each_term(s, text, "an item kind", add_kind, err);
    case K_ARCHS: return each_term(s, text, "an architecture", add_arch, err);
    case K_MODELS: return each_term(s, text, "a model", add_model_name, err);
    case K_KERNELS: return each_term(s, text, "a kernel op", add_kop, err);
    case K_GPUS: return each_term(s, text, "a GPU count or rule", add_gpu_term, err);
    case K_CONTEXTS: return append_i64_list(text, SF_VAL_CONTEXT, &s->contexts, &s->n_contexts, err);
    case K_BATCHES: return append_i32_list(text, SF_VAL_BATCH, &s->batches, &s->n_batches, err);
    case K_GENS: return append_i32_list(text, SF_VAL_GEN, &s->gens, &s->n_gens, err);
    case K_PROBLEMS: return sf_spec_parse_problems(text, &s->problems, &s->n_problems, &s->problems_all, err);
    case K_REPEATS:
    case K_WARMUP: {
      int64_t v;
      if (sf_parse_i64(text, "count", &v, &e) != SF_OK)
        return sf_fail(err, SF_ERR_ARG, "'%s' is not an integer", text);
      int64_t lo = key == K_REPEATS ? 1 : 0;
      if (v < lo || v > 100000)
        return sf_fail(err, SF_ERR_ARG, "%s %lld is out of range %lld..100000",
                       key == K_REPEATS ? "repeats" : "warmup", (long long)v, (long long)lo);
      if (key == K_REPEATS) s->repeats = (int32_t)v;
      else s->warmup = (int32_t)v;
      return SF_OK;
    }
    case K_SEED:
      if (sf_parse_u64(text, "seed", &s->seed, &e) != SF_OK)
        return sf_fail(err, SF_ERR_ARG, "'%s' is not a non-negative integer", text);
      return SF_OK;
    case K_DTYPE:
      if (!strcmp(text, "bf16")) s->dtype = SF_BF16;
      else if (!strcmp(text, "f16")) s->dtype = SF_F16;
      else if (!strcmp(text, "f32")) s->dtype = SF_F32;
      else return sf_fail(err, SF_ERR_ARG, "unknown dtype '%s' (bf16, f16, f32)", text);
      return SF_OK;
    case K_ITEM_TIMEOUT: return sf_spec_parse_duration(text, &s->item_timeout_s, err);
    case K_DEVICE_MEM: {
      int64_t v;
      if (*text == '-') return sf_fail(err, SF_ERR_ARG, "'%s': a byte count cannot be negative", text);
      if (sf_parse_count(text, "bytes", &v, &e) != SF_OK)
        return sf_fail(err, SF_ERR_ARG, "'%s' is not a byte count (digits with an optional k, M or G suffix)", text);
      if (v < 1) return sf_fail(err, SF_ERR_ARG, "device memory %lld is not allowed (must be >= 1)", (long long)v);
      s->device_mem = v;
      return SF_OK;
    }
    case K_PREFILL_CHUNK: {
      int64_t *v = NULL;
      int32_t n = 0;
      sf_status rc = sf_spec_parse_list(text, SF_VAL_CONTEXT, &v, &n, err);
      if (rc == SF_OK && n != 1) rc = sf_fail(err, SF_ERR_ARG, "'%s': expected one token count", text);
      if (rc == SF_OK) s->prefill_chunk = v[0];
      free(v);
      return rc;
    }
    case K_COUNT: break;
  }
  return sf_fail(err, SF_ERR_INTERNAL, "bad spec key %d", (int)key);
}

/* ---- finish: defaults, checks across keys, canonical text ------------------ */

static const char *where(const sf_spec_where *w, sf_spec_key k, char *buf, size_t size) {
  if (w->set[k]) return w->at[k];
  snprintf(buf, size, "key '%s' (default)", sf_spec_keys[k].yaml);
  return buf;
}

int sf_spec_shape_string(const sf_model_config *c, char *buf, size_t size) {
  switch (c->arch) {
    case SF_ARCH_MAMBA1:
      return snprintf(buf, size,
                      "mamba1:n_layers=%d,d_model=%d,vocab_size=%d,d_inner=%d,d_state=%d,d_conv=%d,"
                      "dt_rank=%d,tie_embeddings=%d,residual_in_fp32=%d,norm_eps=%.9g",
                      c->n_layers, c->d_model, c->vocab_size, c->d_inner, c->d_state, c->d_conv, c->dt_rank,
                      c->tie_embeddings, c->residual_in_fp32, (double)c->norm_eps);
    case SF_ARCH_MAMBA2:
      return snprintf(buf, size,
                      "mamba2:n_layers=%d,d_model=%d,vocab_size=%d,d_inner=%d,d_state=%d,d_conv=%d,"
                      "ssm_heads=%d,ssm_head_dim=%d,n_groups=%d,chunk_size=%d,tie_embeddings=%d,"
                      "residual_in_fp32=%d,norm_eps=%.9g",
                      c->n_layers, c->d_model, c->vocab_size, c->d_inner, c->d_state, c->d_conv, c->ssm_heads,
                      c->ssm_head_dim, c->n_groups, c->chunk_size, c->tie_embeddings, c->residual_in_fp32,
                      (double)c->norm_eps);
    case SF_ARCH_TRANSFORMER:
      return snprintf(buf, size,
                      "transformer:n_layers=%d,d_model=%d,vocab_size=%d,n_heads=%d,n_kv_heads=%d,head_dim=%d,"
                      "rot_dim=%d,rotary_base=%.9g,d_ff=%d,parallel_residual=%d,tie_embeddings=%d,norm_eps=%.9g",
                      c->n_layers, c->d_model, c->vocab_size, c->n_heads, c->n_kv_heads, c->head_dim,
                      c->rot_dim, (double)c->rotary_base, c->d_ff, c->parallel_residual, c->tie_embeddings,
                      (double)c->norm_eps);
  }
  return snprintf(buf, size, "unknown");
}

static void render_model(sf_strbuf *b, const sf_spec_model *m) {
  if (!m->custom && !m->checkpoint) {
    sf_sb_printf(b, "  - ");
    sf_sb_quoted(b, m->name);
    sf_sb_printf(b, "\n");
    return;
  }
  sf_sb_printf(b, "  - {name: ");
  sf_sb_quoted(b, m->name);
  sf_sb_printf(b, ", preset: ");
  sf_sb_quoted(b, m->preset);
  if (m->checkpoint) {
    sf_sb_printf(b, ", checkpoint: ");
    sf_sb_quoted(b, m->checkpoint);
  }
  if (m->custom) {
    const sf_model_config *c = &m->cfg;
    const int32_t vals[SF_SHAPE_COUNT] = {
        [SF_SHAPE_N_LAYERS] = c->n_layers,   [SF_SHAPE_D_MODEL] = c->d_model,
        [SF_SHAPE_VOCAB_SIZE] = c->vocab_size, [SF_SHAPE_D_INNER] = c->d_inner,
        [SF_SHAPE_D_STATE] = c->d_state,     [SF_SHAPE_D_CONV] = c->d_conv,
        [SF_SHAPE_DT_RANK] = c->dt_rank,     [SF_SHAPE_SSM_HEADS] = c->ssm_heads,
        [SF_SHAPE_SSM_HEAD_DIM] = c->ssm_head_dim, [SF_SHAPE_N_GROUPS] = c->n_groups,
        [SF_SHAPE_CHUNK_SIZE] = c->chunk_size, [SF_SHAPE_N_HEADS] = c->n_heads,
        [SF_SHAPE_N_KV_HEADS] = c->n_kv_heads, [SF_SHAPE_HEAD_DIM] = c->head_dim,
        [SF_SHAPE_ROT_DIM] = c->rot_dim,     [SF_SHAPE_D_FF] = c->d_ff};
    for (int f = 0; f < SF_SHAPE_COUNT; f++)
      if (f != SF_SHAPE_EXPAND && sf_shape_field_applies(f, c->arch))
        sf_sb_printf(b, ", %s: %d", sf_shape_field_names[f], vals[f]);
  }
  sf_sb_printf(b, "}\n");
}

static char *render_canonical(const sf_spec *s) {
  sf_strbuf b = {0};
  sf_sb_printf(&b, "# scanflash sweep spec, canonical form (every default written out)\nname: ");
  sf_sb_quoted(&b, s->name);
  sf_sb_printf(&b, "\nkinds: [");
  for (int i = 0; i < s->n_kinds; i++)
    sf_sb_printf(&b, "%s%s", i ? ", " : "", sf_item_kind_name((sf_item_kind)s->kinds[i]));
  sf_sb_printf(&b, "]\n");
  if (s->n_archs) {
    sf_sb_printf(&b, "archs: [");
    for (int i = 0; i < s->n_archs; i++) sf_sb_printf(&b, "%s%s", i ? ", " : "", arch_names[s->archs[i]]);
    sf_sb_printf(&b, "]\n");
  }
  sf_sb_printf(&b, "models:\n");
  for (int32_t i = 0; i < s->n_models; i++) render_model(&b, &s->models[i]);
  sf_sb_printf(&b, "contexts: [");
  for (int32_t i = 0; i < s->n_contexts; i++) sf_sb_printf(&b, "%s%lld", i ? ", " : "", (long long)s->contexts[i]);
  sf_sb_printf(&b, "]\nbatches: [");
  for (int32_t i = 0; i < s->n_batches; i++) sf_sb_printf(&b, "%s%d", i ? ", " : "", s->batches[i]);
  sf_sb_printf(&b, "]\ngens: [");
  for (int32_t i = 0; i < s->n_gens; i++) {
    if (s->gens[i] == SF_GEN_CANONICAL) sf_sb_printf(&b, "%scanonical", i ? ", " : "");
    else sf_sb_printf(&b, "%s%d", i ? ", " : "", s->gens[i]);
  }
  sf_sb_printf(&b, "]\n");
  if (s->problems_all) {
    sf_sb_printf(&b, "problems: all\n");
  } else {
    sf_sb_printf(&b, "problems: [");
    for (int32_t i = 0; i < s->n_problems; i++) sf_sb_printf(&b, "%s%d", i ? ", " : "", s->problems[i]);
    sf_sb_printf(&b, "]\n");
  }
  sf_sb_printf(&b, "repeats: %d\nwarmup: %d\nseed: %llu\ndtype: %s\ngpus: [%d", s->repeats, s->warmup,
               (unsigned long long)s->seed, sf_dtype_name(s->dtype), s->gpus_default);
  for (int i = 0; i < s->n_gpu_rules; i++) {
    const sf_gpu_rule *r = &s->gpu_rules[i];
    sf_sb_printf(&b, ", \"%s>=%lld:%d\"", r->arch < 0 ? "any" : arch_names[r->arch], (long long)r->min_context,
                 r->gpus);
  }
  sf_sb_printf(&b, "]\nitem_timeout: %.17g\ndevice_mem: %lld\nprefill_chunk: %lld\n", s->item_timeout_s,
               (long long)s->device_mem, (long long)s->prefill_chunk);
  if (s->n_kernel_ops) {
    sf_sb_printf(&b, "kernels: [");
    for (int i = 0; i < s->n_kernel_ops; i++)
      sf_sb_printf(&b, "%s%s", i ? ", " : "", kop_names[s->kernel_ops[i]]);
    sf_sb_printf(&b, "]\n");
  }
  return sf_sb_take(&b);
}

static int spec_has_kind(const sf_spec *s, int kind) {
  for (int i = 0; i < s->n_kinds; i++)
    if (s->kinds[i] == kind) return 1;
  return 0;
}

sf_status sf_spec_finish(sf_spec *s, const sf_spec_where *w, sf_error *err) {
  char wb[128];
  const sf_status code = w->code;
  /* defaults */
  if (!s->name[0]) snprintf(s->name, sizeof s->name, "sweep");
  if (!s->n_kinds) s->kinds[s->n_kinds++] = SF_ITEM_GENERATE;
  if (!s->n_models) {
    int n = s->n_archs ? s->n_archs : 3;
    for (int i = 0; i < n; i++) {
      sf_arch a = (sf_arch)(s->n_archs ? s->archs[i] : i);
      sf_status rc = add_model_name(s, sf_arch_default_preset(a), err);
      if (rc != SF_OK) return sf_fail_context(err, "%s", where(w, K_ARCHS, wb, sizeof wb));
    }
  }
  sf_error e;
  if (!s->n_contexts) SF_TRY(append_i64_list("2k", SF_VAL_CONTEXT, &s->contexts, &s->n_contexts, &e));
  if (!s->n_batches) SF_TRY(append_i32_list("1", SF_VAL_BATCH, &s->batches, &s->n_batches, &e));
  if (!s->n_gens) SF_TRY(append_i32_list("128", SF_VAL_GEN, &s->gens, &s->n_gens, &e));
  if (!s->n_problems) SF_TRY(sf_spec_parse_problems("all", &s->problems, &s->n_problems, &s->problems_all, &e));
  if (!w->set[K_REPEATS]) s->repeats = 3;
  if (!w->set[K_WARMUP]) s->warmup = 1;
  if (!s->gpus_default) s->gpus_default = 1;
  if (!w->set[K_DEVICE_MEM]) s->device_mem = SF_SPEC_DEFAULT_DEVICE_MEM;

  /* checks across keys */
  for (int32_t i = 0; i < s->n_models && s->n_archs; i++) {
    int ok = 0;
    for (int a = 0; a < s->n_archs; a++) ok |= s->archs[a] == (int)s->models[i].cfg.arch;
    if (!ok)
      return sf_fail(err, code, "%s: model '%s' is a %s model, not one of %s", where(w, K_MODELS, wb, sizeof wb),
                     s->models[i].name, arch_names[s->models[i].cfg.arch],
                     code == SF_ERR_ARG ? "--arch" : "archs");
  }
  int kernels = spec_has_kind(s, SF_ITEM_KERNELS);
  if (kernels && !s->n_kernel_ops)
    return sf_fail(err, code, "%s: kind 'kernels' needs the ops to run (%s)", where(w, K_KINDS, wb, sizeof wb),
                   code == SF_ERR_ARG ? "--kernels" : "key 'kernels'");
  if (!kernels && s->n_kernel_ops)
    return sf_fail(err, code, "%s: kernel ops are given but the kinds do not include 'kernels'",
                   where(w, K_KERNELS, wb, sizeof wb));
  for (int i = 0; i < s->n_kernel_ops; i++) {
    int used = 0;
    for (int32_t m = 0; m < s->n_models; m++)
      used |= sf_kernel_op_applies((sf_kernel_op)s->kernel_ops[i], s->models[m].cfg.arch);
    if (!used)
      return sf_fail(err, code, "%s: op '%s' applies to none of the models", where(w, K_KERNELS, wb, sizeof wb),
                     kop_names[s->kernel_ops[i]]);
  }
  for (int32_t i = 0; i < s->n_contexts && kernels; i++)
    if (s->contexts[i] == 0)
      return sf_fail(err, code, "%s: context 0 (natural prompts) cannot be used with kind 'kernels'",
                     where(w, K_CONTEXTS, wb, sizeof wb));
  if (s->prefill_chunk > 0 && s->prefill_chunk < 16)
    return sf_fail(err, code, "%s: prefill chunk %lld is too small (0 or >= 16)",
                   where(w, K_PREFILL_CHUNK, wb, sizeof wb), (long long)s->prefill_chunk);

  free(s->canonical);
  s->canonical = render_canonical(s);
  if (!s->canonical) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  return SF_OK;
}
