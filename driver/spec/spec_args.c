/* A spec from a command line: a YAML path, or quick-sweep flags that go
 * through the same setters as the YAML keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec_internal.h"

enum { MAX_FLAGS = 64 };

const char *sf_spec_flags_help(void) {
  return "sweep (a YAML spec file, or quick-sweep flags; lists are comma-separated,\n"
         "ranges START:END:xFACTOR or START:END:+STEP, counts take k/M/G):\n"
         "  --arch LIST        mamba1, mamba2, transformer (alone: each one's smallest preset)\n"
         "  --model LIST       presets: mamba-130m ... mamba-2.8b, mamba2-130m ... mamba2-2.7b,\n"
         "                     pythia-160m ... pythia-6.9b, tiny-mamba1, tiny-mamba2, tiny-transformer\n"
         "  --context LIST     tokens per sequence, e.g. 2k:1M:x2; 0 = natural prompt [2k]\n"
         "  --batch LIST       sequences per item, e.g. 1,8,64 [1]\n"
         "  --gen LIST         new tokens, or canonical (the solution's length) [128]\n"
         "  --problems SEL     all, 0-19, 0,5,7, HumanEval/42 [all]\n"
         "  --kind LIST        generate, prefill, kernels [generate]\n"
         "  --kernels LIST     ops for kind kernels: selective_scan, selective_scan_naive, ssd,\n"
         "                     ssd_naive, conv1d, attention, attention_naive, attention_decode\n"
         "  --repeats N        timed repeats per item [3]\n"
         "  --warmup N         untimed runs first [1]\n"
         "  --seed N           weights and prompt order [0]\n"
         "  --dtype T          bf16, f16, f32 [bf16]\n"
         "  --gpus LIST        N, or rules ARCH>=CONTEXT:N, first match wins, e.g.\n"
         "                     1,transformer>=512k:4 [1]\n"
         "  --prefill-chunk N  prefill tokens per sequence per step; 0 = all at once [0]\n"
         "  --name NAME        label of the sweep [quick]\n"
         "with a spec file or flags:\n"
         "  --item-timeout S   seconds per item (s/m/h suffixes); 0 = none [0]\n"
         "  --device-mem BYTES memory per GPU for OOM prediction, e.g. 80G [80G]\n";
}

/* Flag name (up to '=' when given) -> key, or -1. */
static int flag_key(const char *a, size_t len) {
  for (int k = 0; k < K_COUNT; k++) {
    const char *f = sf_spec_keys[k].flag;
    if (strlen(f) == len && !strncmp(a, f, len)) return k;
  }
  /* plural spellings people type */
  static const struct { const char *alias; int key; } aliases[] = {
      {"--contexts", K_CONTEXTS}, {"--batches", K_BATCHES}, {"--gens", K_GENS},   {"--kinds", K_KINDS},
      {"--archs", K_ARCHS},       {"--models", K_MODELS},   {"--problem", K_PROBLEMS}};
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (strlen(aliases[i].alias) == len && !strncmp(a, aliases[i].alias, len)) return aliases[i].key;
  return -1;
}

static int in_list(const char *a, const char *const *list) {
  for (; list && *list; list++)
    if (!strcmp(a, *list)) return 1;
  return 0;
}

static void append_arg(sf_strbuf *b, const char *a) {
  int plain = *a != '\0';
  for (const char *p = a; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          strchr("-_.,:+=/>@%", *p)))
      plain = 0;
  if (b->len) sf_sb_printf(b, " ");
  if (plain) {
    sf_sb_printf(b, "%s", a);
    return;
  }
  sf_sb_printf(b, "'");
  for (const char *p = a; *p; p++) {
    if (*p == '\'') sf_sb_printf(b, "'\\''");
    else sf_sb_printf(b, "%c", *p);
  }
  sf_sb_printf(b, "'");
}

sf_status sf_spec_from_args(int argc, char **argv, const char *const *caller_value_opts, sf_spec *spec,
                            int *rest_argc, char **rest_argv, sf_error *err) {
  memset(spec, 0, sizeof *spec);
  struct {
    int key;
    const char *value;
  } flags[MAX_FLAGS];
  int n_flags = 0, n_rest = 0;
  const char *path = NULL;
  int given[K_COUNT] = {0};
  rest_argv[n_rest++] = argc > 0 ? argv[0] : NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--")) {
      while (i < argc) rest_argv[n_rest++] = argv[i++];
      break;
    }
    if (a[0] == '-' && a[1] == '-') {
      const char *eq = strchr(a, '=');
      size_t len = eq ? (size_t)(eq - a) : strlen(a);
      int k = flag_key(a, len);
      if (k >= 0) {
        const char *value;
        if (eq) value = eq + 1;
        else if (i + 1 < argc) value = argv[++i];
        else return sf_fail(err, SF_ERR_ARG, "%s needs a value", sf_spec_keys[k].flag);
        if (given[k]) return sf_fail(err, SF_ERR_ARG, "%s is given twice", sf_spec_keys[k].flag);
        if (n_flags == MAX_FLAGS) return sf_fail(err, SF_ERR_ARG, "too many flags");
        given[k] = 1;
        flags[n_flags].key = k;
        flags[n_flags].value = value;
        n_flags++;
        continue;
      }
      rest_argv[n_rest++] = argv[i];
      if (!eq && in_list(a, caller_value_opts) && i + 1 < argc) rest_argv[n_rest++] = argv[++i];
      continue;
    }
    if (a[0] == '-' && a[1]) {
      rest_argv[n_rest++] = argv[i];
      if (in_list(a, caller_value_opts) && i + 1 < argc) rest_argv[n_rest++] = argv[++i];
      continue;
    }
    if (!path) path = a;
    else rest_argv[n_rest++] = argv[i];
  }
  rest_argv[n_rest] = NULL;
  *rest_argc = n_rest;

  sf_spec_where w;
  sf_status rc;
  if (path) {
    for (int f = 0; f < n_flags; f++)
      if (flags[f].key != K_DEVICE_MEM && flags[f].key != K_ITEM_TIMEOUT)
        return sf_fail(err, SF_ERR_ARG, "%s cannot be combined with a spec file (%s); edit the file instead",
                       sf_spec_keys[flags[f].key].flag, path);
    rc = sf_spec_file_build(path, spec, &w, err);
  } else {
    if (n_flags == 0)
      return sf_fail(err, SF_ERR_ARG,
                     "no sweep given: a SPEC.yaml, or quick-sweep flags (--arch, --model, --context, ...)");
    sf_spec_begin(spec, &w, SF_ERR_ARG);
    snprintf(spec->name, sizeof spec->name, "quick");
    sf_strbuf line = {0};
    for (int f = 0; f < n_flags; f++) {
      append_arg(&line, sf_spec_keys[flags[f].key].flag);
      append_arg(&line, flags[f].value);
    }
    spec->source_text = sf_sb_take(&line);
    rc = spec->source_text ? SF_OK : sf_fail(err, SF_ERR_NOMEM, "out of memory");
  }
  for (int f = 0; f < n_flags && rc == SF_OK; f++) {
    int k = flags[f].key;
    w.set[k] = 1;
    snprintf(w.at[k], sizeof w.at[k], "%s", sf_spec_keys[k].flag);
    rc = sf_spec_set_text(spec, (sf_spec_key)k, flags[f].value, err);
    if (rc != SF_OK) {
      sf_fail_context(err, "%s", sf_spec_keys[k].flag);
      if (rc != SF_ERR_NOMEM) err->code = rc = SF_ERR_ARG;
    }
  }
  if (rc == SF_OK) rc = sf_spec_finish(spec, &w, err);
  if (rc != SF_OK) sf_spec_free(spec);
  return rc;
}
