/* YAML specs through libyaml's document API. Every value goes through the
 * same setters as the quick-sweep flags; this file only walks the tree,
 * checks node types and keys, and says where (FILE:LINE:COL: key '...'). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "scanflash/files.h"
#include "scanflash/parse.h"
#include "spec/spec_internal.h"

typedef struct yctx {
  const char *where;   /* file name for errors */
  yaml_document_t *doc;
  sf_error *err;
} yctx;

static yaml_node_t *node(yctx *y, int i) { return yaml_document_get_node(y->doc, i); }

static unsigned long line_of(const yaml_node_t *n) { return (unsigned long)n->start_mark.line + 1; }
static unsigned long col_of(const yaml_node_t *n) { return (unsigned long)n->start_mark.column + 1; }

/* "FILE:L:C: " + message. */
static sf_status fail_at(yctx *y, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static sf_status fail_at(yctx *y, const yaml_node_t *n, const char *fmt, ...) {
  char msg[SF_ERROR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return sf_fail(y->err, SF_ERR_FORMAT, "%s:%lu:%lu: %s", y->where, line_of(n), col_of(n), msg);
}

/* The error a setter left in err, placed at node n under key `key`. */
static sf_status fail_value(yctx *y, const yaml_node_t *n, const char *key) {
  char msg[SF_ERROR_MSG_MAX];
  snprintf(msg, sizeof msg, "%s", y->err->msg);
  sf_status code = y->err->code == SF_ERR_NOMEM ? SF_ERR_NOMEM : SF_ERR_FORMAT;
  sf_fail(y->err, code, "%s:%lu:%lu: key '%s': %s", y->where, line_of(n), col_of(n), key, msg);
  return code;
}

static int is_null(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
  const char *v = (const char *)n->data.scalar.value;
  return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static const char *type_name(const yaml_node_t *n) {
  if (is_null(n)) return "nothing";
  switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_SCALAR_NODE: return "a scalar";
    default: return "an empty node";
  }
}

static sf_status wrong_type(yctx *y, const yaml_node_t *n, const char *key, const char *expect) {
  if (n->type == YAML_SCALAR_NODE && !is_null(n))
    return fail_at(y, n, "key '%s': expected %s, got '%s'", key, expect, (const char *)n->data.scalar.value);
  return fail_at(y, n, "key '%s': expected %s, got %s", key, expect, type_name(n));
}

/* A non-null scalar's text, or a type error. */
static sf_status scalar_text(yctx *y, const yaml_node_t *n, const char *key, const char *expect,
                             const char **out) {
  if (n->type != YAML_SCALAR_NODE || is_null(n)) return wrong_type(y, n, key, expect);
  if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
    return fail_at(y, n, "key '%s': the value contains a NUL character", key);
  *out = (const char *)n->data.scalar.value;
  return SF_OK;
}

static sf_status set_scalar(yctx *y, sf_spec *s, sf_spec_key k, const yaml_node_t *n, const char *key) {
  const char *t = NULL;
  SF_TRY(scalar_text(y, n, key, sf_spec_keys[k].expect, &t));
  if (sf_spec_set_text(s, k, t, y->err) != SF_OK) return fail_value(y, n, key);
  return SF_OK;
}

static sf_status unknown_key(yctx *y, const yaml_node_t *kn, const char *ctx, const char *name,
                             const char *const *known, int n_known) {
  const char *sug = sf_spec_suggest(name, known, n_known);
  char list[512] = "";
  if (!sug) {
    size_t len = 0;
    for (int i = 0; i < n_known && len < sizeof list - 64; i++)
      len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", known[i]);
  }
  char pre[128] = "";
  if (ctx) snprintf(pre, sizeof pre, "key '%s': ", ctx);
  if (sug) return fail_at(y, kn, "%sunknown key '%s' (did you mean '%s'?)", pre, name, sug);
  return fail_at(y, kn, "%sunknown key '%s' (known: %s)", pre, name, list);
}

/* ---- models ------------------------------------------------------------- */

enum { MK_NAME, MK_PRESET, MK_ARCH, MK_CHECKPOINT, MK_COUNT };
static const char *const model_keys[MK_COUNT] = {"name", "preset", "arch", "checkpoint"};

static sf_status parse_model_mapping(yctx *y, sf_spec *s, const yaml_node_t *mn, int idx) {
  char ctx[64];
  snprintf(ctx, sizeof ctx, "models[%d]", idx);
  const char *known[MK_COUNT + SF_SHAPE_COUNT];
  for (int i = 0; i < MK_COUNT; i++) known[i] = model_keys[i];
  for (int i = 0; i < SF_SHAPE_COUNT; i++) known[MK_COUNT + i] = sf_shape_field_names[i];

  const yaml_node_t *val[MK_COUNT + SF_SHAPE_COUNT] = {0};
  const yaml_node_t *keyn[MK_COUNT + SF_SHAPE_COUNT] = {0};
  for (yaml_node_pair_t *p = mn->data.mapping.pairs.start; p < mn->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = node(y, p->key), *vn = node(y, p->value);
    if (kn->type != YAML_SCALAR_NODE) return fail_at(y, kn, "key '%s': keys must be plain names", ctx);
    const char *name = (const char *)kn->data.scalar.value;
    int f = -1;
    for (int i = 0; i < MK_COUNT + SF_SHAPE_COUNT; i++)
      if (!strcmp(name, known[i])) f = i;
    if (f < 0) return unknown_key(y, kn, ctx, name, known, MK_COUNT + SF_SHAPE_COUNT);
    if (val[f])
      return fail_at(y, kn, "key '%s': '%s' is given twice (first at line %lu)", ctx, name, line_of(keyn[f]));
    val[f] = vn;
    keyn[f] = kn;
  }
  const char *txt[MK_COUNT] = {0};
  for (int i = 0; i < MK_COUNT; i++) {
    if (!val[i]) continue;
    char sub[96];
    snprintf(sub, sizeof sub, "%s.%s", ctx, model_keys[i]);
    SF_TRY(scalar_text(y, val[i], sub, i == MK_CHECKPOINT ? "a folder path" : "a name", &txt[i]));
  }
  sf_spec_model m;
  memset(&m, 0, sizeof m);
  int arch = -1;
  if (txt[MK_ARCH]) {
    arch = sf_arch_parse(txt[MK_ARCH]);
    if (arch < 0)
      return fail_at(y, val[MK_ARCH], "key '%s.arch': unknown architecture '%s' (mamba1, mamba2, transformer)",
                     ctx, txt[MK_ARCH]);
  }
  const char *preset = txt[MK_PRESET];
  if (!preset) {
    if (arch < 0)
      return fail_at(y, mn, "key '%s': a model needs 'preset' (a preset name) or 'arch' (its smallest preset)", ctx);
    preset = sf_arch_default_preset((sf_arch)arch);
  }
  if (strlen(preset) >= sizeof m.preset)
    return fail_at(y, val[MK_PRESET], "key '%s.preset': '%s' is too long", ctx, preset);
  if (sf_model_preset(preset, &m.cfg, y->err) != SF_OK) {
    char sub[96];
    snprintf(sub, sizeof sub, "%s.preset", ctx);
    return fail_value(y, val[MK_PRESET] ? val[MK_PRESET] : mn, sub);
  }
  if (arch >= 0 && (int)m.cfg.arch != arch)
    return fail_at(y, val[MK_ARCH], "key '%s.arch': preset '%s' is a %s model, not %s", ctx, preset,
                   sf_arch_name(m.cfg.arch), txt[MK_ARCH]);
  snprintf(m.preset, sizeof m.preset, "%s", preset);

  sf_shape_overrides o;
  memset(&o, 0, sizeof o);
  for (int f = 0; f < SF_SHAPE_COUNT; f++) {
    const yaml_node_t *vn = val[MK_COUNT + f];
    if (!vn) continue;
    char sub[96];
    snprintf(sub, sizeof sub, "%s.%s", ctx, sf_shape_field_names[f]);
    if (!sf_shape_field_applies(f, m.cfg.arch))
      return fail_at(y, keyn[MK_COUNT + f], "key '%s': does not apply to %s models", sub, sf_arch_name(m.cfg.arch));
    const char *t = NULL;
    SF_TRY(scalar_text(y, vn, sub, "a positive integer", &t));
    sf_error e;
    if (*t == '-' || sf_parse_count(t, sub, &o.v[f], &e) != SF_OK)
      return fail_at(y, vn, "key '%s': expected a positive integer, got '%s'", sub, t);
    o.set[f] = 1;
    m.custom = 1;
  }
  if (m.custom && sf_shape_apply(&m.cfg, &o, y->err) != SF_OK) return fail_value(y, mn, ctx);

  const char *name = txt[MK_NAME];
  char base[SF_NAME_LEN];
  if (!name && txt[MK_CHECKPOINT]) { /* the folder's name */
    const char *path = txt[MK_CHECKPOINT];
    size_t end = strlen(path);
    while (end > 1 && path[end - 1] == '/') end--;
    size_t start = end;
    while (start > 0 && path[start - 1] != '/') start--;
    if (end - start == 0 || end - start >= sizeof base)
      return fail_at(y, val[MK_CHECKPOINT], "key '%s': give the checkpoint a 'name' (at most %d characters)", ctx,
                     SF_NAME_LEN - 1);
    memcpy(base, path + start, end - start);
    base[end - start] = '\0';
    name = base;
  }
  if (!name) {
    if (m.custom) return fail_at(y, mn, "key '%s': a custom shape needs a 'name' of its own", ctx);
    name = preset;
  }
  if (m.custom || txt[MK_CHECKPOINT]) {
    sf_model_config tmp;
    sf_error e;
    if (strcmp(name, preset) && sf_model_preset(name, &tmp, &e) == SF_OK)
      return fail_at(y, val[MK_NAME] ? val[MK_NAME] : mn, "key '%s.name': '%s' is a preset's name; pick another",
                     ctx, name);
    if (m.custom && !strcmp(name, preset))
      return fail_at(y, val[MK_NAME] ? val[MK_NAME] : mn,
                     "key '%s.name': a custom shape cannot take its preset's name '%s'", ctx, name);
  }
  if (strlen(name) >= sizeof m.name)
    return fail_at(y, val[MK_NAME] ? val[MK_NAME] : mn, "key '%s.name': '%s' is longer than %d characters", ctx,
                   name, SF_NAME_LEN - 1);
  for (const char *c = name; *c; c++)
    if (*c <= ' ' || *c == ',' || *c == '"' || *c == '\\' || (unsigned char)*c == 0x7f)
      return fail_at(y, val[MK_NAME] ? val[MK_NAME] : mn,
                     "key '%s.name': '%s' may not contain spaces, commas, quotes or control characters", ctx, name);
  snprintf(m.name, sizeof m.name, "%s", name);
  if (txt[MK_CHECKPOINT]) {
    if (!*txt[MK_CHECKPOINT]) return fail_at(y, val[MK_CHECKPOINT], "key '%s.checkpoint': empty path", ctx);
    m.checkpoint = (char *)txt[MK_CHECKPOINT]; /* copied by sf_spec_add_model */
  }
  if (sf_spec_add_model(s, &m, y->err) != SF_OK) return fail_value(y, mn, "models");
  return SF_OK;
}

static sf_status parse_models(yctx *y, sf_spec *s, const yaml_node_t *vn) {
  const char *expect = "a list of models (preset names or mappings)";
  if (vn->type == YAML_SCALAR_NODE) return set_scalar(y, s, K_MODELS, vn, "models");
  if (vn->type != YAML_SEQUENCE_NODE) return wrong_type(y, vn, "models", expect);
  int idx = 0;
  for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top; it++, idx++) {
    yaml_node_t *en = node(y, *it);
    if (en->type == YAML_MAPPING_NODE) SF_TRY(parse_model_mapping(y, s, en, idx));
    else SF_TRY(set_scalar(y, s, K_MODELS, en, "models"));
  }
  if (idx == 0) return fail_at(y, vn, "key 'models': the list is empty");
  return SF_OK;
}

/* ---- gpus ------------------------------------------------------------------ */

static sf_status parse_gpu_rule_mapping(yctx *y, sf_spec *s, const yaml_node_t *mn, const char *ctx) {
  static const char *const keys[] = {"arch", "min_context", "gpus"};
  const yaml_node_t *val[3] = {0};
  for (yaml_node_pair_t *p = mn->data.mapping.pairs.start; p < mn->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = node(y, p->key), *vn = node(y, p->value);
    const char *name = kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "";
    int f = -1;
    for (int i = 0; i < 3; i++)
      if (!strcmp(name, keys[i])) f = i;
    if (f < 0) return unknown_key(y, kn, ctx, name, keys, 3);
    if (val[f]) return fail_at(y, kn, "key '%s': '%s' is given twice", ctx, name);
    val[f] = vn;
  }
  if (!val[2]) return fail_at(y, mn, "key '%s': a rule needs 'gpus'", ctx);
  const char *t[3] = {"any", "0", NULL};
  for (int i = 0; i < 3; i++)
    if (val[i]) {
      char sub[96];
      snprintf(sub, sizeof sub, "%s.%s", ctx, keys[i]);
      SF_TRY(scalar_text(y, val[i], sub, i == 0 ? "an architecture" : "a count", &t[i]));
    }
  char term[256];
  snprintf(term, sizeof term, "%s>=%s:%s", t[0], t[1], t[2]);
  if (sf_spec_set_text(s, K_GPUS, term, y->err) != SF_OK) return fail_value(y, mn, ctx);
  return SF_OK;
}

static sf_status parse_gpu_list(yctx *y, sf_spec *s, const yaml_node_t *vn, const char *ctx) {
  int idx = 0;
  for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top; it++, idx++) {
    yaml_node_t *en = node(y, *it);
    char sub[64];
    snprintf(sub, sizeof sub, "%s[%d]", ctx, idx);
    if (en->type == YAML_MAPPING_NODE) SF_TRY(parse_gpu_rule_mapping(y, s, en, sub));
    else SF_TRY(set_scalar(y, s, K_GPUS, en, ctx));
  }
  return SF_OK;
}

static sf_status parse_gpus(yctx *y, sf_spec *s, const yaml_node_t *vn) {
  if (vn->type == YAML_SCALAR_NODE) return set_scalar(y, s, K_GPUS, vn, "gpus");
  if (vn->type == YAML_SEQUENCE_NODE) return parse_gpu_list(y, s, vn, "gpus");
  if (vn->type != YAML_MAPPING_NODE) return wrong_type(y, vn, "gpus", sf_spec_keys[K_GPUS].expect);
  static const char *const keys[] = {"default", "rules"};
  for (yaml_node_pair_t *p = vn->data.mapping.pairs.start; p < vn->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = node(y, p->key), *en = node(y, p->value);
    const char *name = kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "";
    if (!strcmp(name, "default")) {
      const char *t = NULL;
      SF_TRY(scalar_text(y, en, "gpus.default", "a GPU count", &t));
      if (strchr(t, ':')) return fail_at(y, en, "key 'gpus.default': expected a GPU count, got '%s'", t);
      if (sf_spec_set_text(s, K_GPUS, t, y->err) != SF_OK) return fail_value(y, en, "gpus.default");
    } else if (!strcmp(name, "rules")) {
      if (en->type != YAML_SEQUENCE_NODE) return wrong_type(y, en, "gpus.rules", "a list of rules");
      SF_TRY(parse_gpu_list(y, s, en, "gpus.rules"));
    } else {
      return unknown_key(y, kn, "gpus", name, keys, 2);
    }
  }
  return SF_OK;
}

/* ---- top level ------------------------------------------------------------- */

static sf_status malformed(const char *where, const yaml_parser_t *p, sf_error *err) {
  const char *problem = p->problem ? p->problem : "cannot parse";
  if (p->error == YAML_READER_ERROR)
    return sf_fail(err, SF_ERR_FORMAT, "%s: malformed YAML: %s at byte %lu", where, problem,
                   (unsigned long)p->problem_offset);
  if (p->context)
    return sf_fail(err, SF_ERR_FORMAT, "%s:%lu:%lu: malformed YAML: %s (%s at line %lu)", where,
                   (unsigned long)p->problem_mark.line + 1, (unsigned long)p->problem_mark.column + 1, problem,
                   p->context, (unsigned long)p->context_mark.line + 1);
  return sf_fail(err, SF_ERR_FORMAT, "%s:%lu:%lu: malformed YAML: %s", where,
                 (unsigned long)p->problem_mark.line + 1, (unsigned long)p->problem_mark.column + 1, problem);
}

static sf_status walk(yctx *y, sf_spec *s, sf_spec_where *w) {
  yaml_node_t *root = yaml_document_get_root_node(y->doc);
  if (!root) return sf_fail(y->err, SF_ERR_FORMAT, "%s: the spec is empty (expected a mapping of keys)", y->where);
  if (root->type != YAML_MAPPING_NODE)
    return fail_at(y, root, "expected a mapping of keys at the top level, got %s", type_name(root));
  const char *known[K_COUNT];
  for (int k = 0; k < K_COUNT; k++) known[k] = sf_spec_keys[k].yaml;
  unsigned long first_line[K_COUNT] = {0};
  for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = node(y, p->key), *vn = node(y, p->value);
    if (kn->type != YAML_SCALAR_NODE) return fail_at(y, kn, "keys must be plain names, got %s", type_name(kn));
    const char *name = (const char *)kn->data.scalar.value;
    int k = sf_spec_key_by_yaml(name);
    if (k < 0) return unknown_key(y, kn, NULL, name, known, K_COUNT);
    if (w->set[k]) return fail_at(y, kn, "key '%s' is given twice (first at line %lu)", name, first_line[k]);
    w->set[k] = 1;
    first_line[k] = line_of(kn);
    snprintf(w->at[k], sizeof w->at[k], "%s:%lu:%lu: key '%s'", y->where, line_of(kn), col_of(kn), name);
    const sf_spec_key_info *ki = &sf_spec_keys[k];
    if (k == K_MODELS) {
      SF_TRY(parse_models(y, s, vn));
    } else if (k == K_GPUS) {
      SF_TRY(parse_gpus(y, s, vn));
    } else if (vn->type == YAML_SCALAR_NODE) {
      SF_TRY(set_scalar(y, s, (sf_spec_key)k, vn, name));
    } else if (vn->type == YAML_SEQUENCE_NODE && ki->is_list) {
      if (vn->data.sequence.items.start == vn->data.sequence.items.top)
        return fail_at(y, vn, "key '%s': the list is empty", name);
      for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top; it++) {
        yaml_node_t *en = node(y, *it);
        if (en->type != YAML_SCALAR_NODE || is_null(en))
          return fail_at(y, en, "key '%s': expected %s, got %s in the list", name, ki->expect, type_name(en));
        SF_TRY(set_scalar(y, s, (sf_spec_key)k, en, name));
      }
    } else {
      return wrong_type(y, vn, name, ki->expect);
    }
  }
  return SF_OK;
}

sf_status sf_spec_yaml_build(const char *text, size_t len, const char *where, sf_spec *s, sf_spec_where *w,
                             sf_error *err) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) return sf_fail(err, SF_ERR_NOMEM, "%s: cannot start the YAML parser", where);
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  yaml_document_t doc;
  if (!yaml_parser_load(&parser, &doc)) {
    sf_status rc = malformed(where, &parser, err);
    yaml_parser_delete(&parser);
    return rc;
  }
  yctx y = {where, &doc, err};
  sf_status rc = walk(&y, s, w);
  if (rc == SF_OK) { /* one document only */
    yaml_document_t more;
    if (!yaml_parser_load(&parser, &more)) {
      rc = malformed(where, &parser, err);
    } else {
      yaml_node_t *r2 = yaml_document_get_root_node(&more);
      if (r2)
        rc = sf_fail(err, SF_ERR_FORMAT, "%s:%lu:%lu: a spec is one YAML document; found a second one", where,
                     (unsigned long)more.start_mark.line + 1, (unsigned long)more.start_mark.column + 1);
      yaml_document_delete(&more);
    }
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  return rc;
}

sf_status sf_spec_parse_yaml(const char *text, size_t len, const char *where, sf_spec *spec, sf_error *err) {
  sf_spec_where w;
  sf_spec_begin(spec, &w, SF_ERR_FORMAT);
  sf_status rc = sf_spec_yaml_build(text, len, where, spec, &w, err);
  if (rc == SF_OK) {
    spec->source_text = malloc(len + 1);
    if (!spec->source_text) rc = sf_fail(err, SF_ERR_NOMEM, "out of memory");
    else {
      memcpy(spec->source_text, text, len);
      spec->source_text[len] = '\0';
    }
  }
  if (rc == SF_OK) rc = sf_spec_finish(spec, &w, err);
  if (rc != SF_OK) sf_spec_free(spec);
  return rc;
}

static void name_from_path(const char *path, char *out, size_t size) {
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  size_t n = strlen(b);
  if (n > 5 && !strcmp(b + n - 5, ".yaml")) n -= 5;
  else if (n > 4 && !strcmp(b + n - 4, ".yml")) n -= 4;
  if (n >= size) n = size - 1;
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    char c = b[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
             c == '_' || c == '+' || c == '-';
    out[j++] = ok ? c : '-';
  }
  out[j] = '\0';
  if (!j) snprintf(out, size, "sweep");
}

sf_status sf_spec_file_build(const char *path, sf_spec *s, sf_spec_where *w, sf_error *err) {
  sf_spec_begin(s, w, SF_ERR_FORMAT);
  char *text = NULL;
  size_t len = 0;
  SF_TRY(sf_read_file(path, &text, &len, err));
  sf_status rc = sf_spec_yaml_build(text, len, path, s, w, err);
  s->source_text = text;
  s->source_path = strdup(path);
  if (rc == SF_OK && !s->source_path) rc = sf_fail(err, SF_ERR_NOMEM, "out of memory");
  if (rc == SF_OK && !w->set[K_NAME]) name_from_path(path, s->name, sizeof s->name);
  return rc;
}

sf_status sf_spec_load_file(const char *path, sf_spec *spec, sf_error *err) {
  sf_spec_where w;
  sf_status rc = sf_spec_file_build(path, spec, &w, err);
  if (rc == SF_OK) rc = sf_spec_finish(spec, &w, err);
  if (rc != SF_OK) sf_spec_free(spec);
  return rc;
}
