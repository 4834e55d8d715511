/* Sweep specs: every file in sweeps/ parses and expands to the count
 * computed here independently; keys are stable (a fixed config's canonical
 * string and key are known constants) and do not depend on item order;
 * YAML and quick flags give the same items; ranges, problem selections and
 * errors (one line, FILE:LINE:COL, naming the key). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scanflash/files.h"
#include "spec/spec.h"
#include "test.h"

static int parse_text(const char *yaml, sf_spec *s, sf_error *err) {
  return sf_spec_parse_yaml(yaml, strlen(yaml), "t.yaml", s, err) == SF_OK;
}

/* An error case: must fail, with msg containing want. */
static void expect_yaml_error(const char *yaml, const char *want) {
  sf_spec s;
  sf_error err;
  sf_error_clear(&err);
  int ok = parse_text(yaml, &s, &err);
  CHECK_MSG(!ok, "accepted: %s", yaml);
  if (ok) {
    sf_spec_free(&s);
    return;
  }
  CHECK_MSG(strstr(err.msg, want) != NULL, "error '%s' lacks '%s'", err.msg, want);
  CHECK_MSG(strchr(err.msg, '\n') == NULL, "error is not one line: %s", err.msg);
}

static int64_t *list_of(const char *text, sf_spec_value_kind kind, int32_t *n, sf_error *err) {
  int64_t *v = NULL;
  *n = 0;
  if (sf_spec_parse_list(text, kind, &v, n, err) != SF_OK) {
    free(v);
    return NULL;
  }
  return v;
}

static void test_ranges(void) {
  sf_error err;
  int32_t n;
  int64_t *v;

  v = list_of("2k:1M:x2", SF_VAL_CONTEXT, &n, &err);
  CHECK(v && n == 10);
  if (v && n == 10) {
    CHECK_EQ_I64(v[0], 2048);
    CHECK_EQ_I64(v[9], 1048576);
    for (int i = 1; i < n; i++) CHECK_EQ_I64(v[i], 2 * v[i - 1]);
  }
  free(v);
  v = list_of("1:8:+1", SF_VAL_BATCH, &n, &err);
  CHECK(v && n == 8);
  for (int i = 0; v && i < n; i++) CHECK_EQ_I64(v[i], i + 1);
  free(v);
  v = list_of("1:10:x3", SF_VAL_BATCH, &n, &err); /* never passes END */
  CHECK(v && n == 3 && v[0] == 1 && v[1] == 3 && v[2] == 9);
  free(v);
  v = list_of("1:8:+3", SF_VAL_BATCH, &n, &err);
  CHECK(v && n == 3 && v[2] == 7);
  free(v);
  v = list_of("5:5:+1", SF_VAL_BATCH, &n, &err);
  CHECK(v && n == 1 && v[0] == 5);
  free(v);
  v = list_of("1k:4k:+1k", SF_VAL_CONTEXT, &n, &err);
  CHECK(v && n == 4 && v[0] == 1024 && v[3] == 4096);
  free(v);
  v = list_of(" 1 , 2,4:16:x2 ", SF_VAL_BATCH, &n, &err); /* terms and ranges mixed, spaces */
  CHECK(v && n == 5 && v[0] == 1 && v[1] == 2 && v[2] == 4 && v[4] == 16);
  free(v);
  v = list_of("0,2k", SF_VAL_CONTEXT, &n, &err); /* 0 = natural prompt */
  CHECK(v && n == 2 && v[0] == 0);
  free(v);
  v = list_of("canonical,128", SF_VAL_GEN, &n, &err);
  CHECK(v && n == 2 && v[0] == SF_GEN_CANONICAL && v[1] == 128);
  free(v);
  v = list_of("1G", SF_VAL_CONTEXT, &n, &err);
  CHECK(v && n == 1 && v[0] == (1LL << 30));
  free(v);
  /* the largest 64-bit geometric range does not overflow */
  v = list_of("1:1G:x1000", SF_VAL_CONTEXT, &n, &err);
  CHECK(v && n == 4 && v[3] == 1000000000);
  free(v);

  static const struct {
    const char *text;
    sf_spec_value_kind kind;
    const char *want;
  } bad[] = {
      {"2k:1k:x2", SF_VAL_CONTEXT, "end 1k is less than start 2k"},
      {"0:8:x2", SF_VAL_CONTEXT, "cannot start at 0"},
      {"1:8:x1", SF_VAL_BATCH, "factor"},
      {"1:8:x1.5", SF_VAL_BATCH, "factor"},
      {"1:8:+0", SF_VAL_BATCH, "step"},
      {"1:8:y2", SF_VAL_BATCH, "xFACTOR"},
      {"1:8", SF_VAL_BATCH, "START:END"},
      {"1:2:3:4", SF_VAL_BATCH, "START:END"},
      {"1,,2", SF_VAL_BATCH, "empty value"},
      {"1,", SF_VAL_BATCH, "empty value"},
      {"", SF_VAL_BATCH, "got nothing"},
      {"2k,2048", SF_VAL_CONTEXT, "listed twice"},
      {"1:4:+1,3", SF_VAL_BATCH, "listed twice"},
      {"0", SF_VAL_BATCH, "batch size 0 is not allowed"},
      {"0:4:+2", SF_VAL_BATCH, "'0:4:+2': batch size 0"},
      {"0", SF_VAL_GEN, "not allowed"},
      {"-5", SF_VAL_CONTEXT, "negative"},
      {"2G", SF_VAL_CONTEXT, "out of range"},
      {"abc", SF_VAL_CONTEXT, "not a token count"},
      {"1:canonical:+1", SF_VAL_GEN, "not a generation length"},
      {"canonical", SF_VAL_CONTEXT, "not a token count"},
      {"1:100000:+1", SF_VAL_BATCH, "more than 4096 values"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    sf_error_clear(&err);
    v = list_of(bad[i].text, bad[i].kind, &n, &err);
    CHECK_MSG(v == NULL, "'%s' accepted", bad[i].text);
    free(v);
    CHECK_MSG(strstr(err.msg, bad[i].want) != NULL, "'%s': error '%s' lacks '%s'", bad[i].text, err.msg,
              bad[i].want);
  }
}

static void test_problems(void) {
  sf_error err;
  struct {
    const char *text;
    int n;
    int first, last;
  } good[] = {{"all", 164, 0, 163},     {"0-19", 20, 0, 19},         {"HumanEval/7,3", 2, 7, 3},
              {"0:10:+5", 3, 0, 10},    {"163", 1, 163, 163},        {"5, 0-2", 4, 5, 2},
              {"HumanEval/163", 1, 163, 163}};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    int32_t *ids = NULL, n = 0;
    int all = 0;
    sf_status rc = sf_spec_parse_problems(good[i].text, &ids, &n, &all, &err);
    CHECK_MSG(rc == SF_OK, "'%s': %s", good[i].text, err.msg);
    if (rc == SF_OK) {
      CHECK_EQ_I64(n, good[i].n);
      CHECK_EQ_I64(ids[0], good[i].first);
      CHECK_EQ_I64(ids[n - 1], good[i].last);
      CHECK_EQ_I64(all, !strcmp(good[i].text, "all"));
    }
    free(ids);
  }
  static const struct {
    const char *text, *want;
  } bad[] = {{"5,5", "selected twice"},  {"0-3,2", "selected twice"}, {"19-0", "before start"},
             {"0-164", "out of range"},  {"200", "out of range"},    {"all,1", "cannot be combined"},
             {"-1", "not a problem"},    {"HumanEval/x", "not a problem"}, {"", "nothing"},
             {"1,,2", "empty value"},    {"0x3", "not a problem"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int32_t *ids = NULL, n = 0;
    int all = 0;
    sf_error_clear(&err);
    sf_status rc = sf_spec_parse_problems(bad[i].text, &ids, &n, &all, &err);
    CHECK_MSG(rc != SF_OK, "'%s' accepted", bad[i].text);
    CHECK_MSG(strstr(err.msg, bad[i].want) != NULL, "'%s': error '%s' lacks '%s'", bad[i].text, err.msg,
              bad[i].want);
    free(ids);
  }
}

/* The item count a spec must expand to, from its lists. */
static int64_t expected_count(const sf_spec *s) {
  int gen = 0, pre = 0, ker = 0;
  for (int i = 0; i < s->n_kinds; i++) {
    gen |= s->kinds[i] == SF_ITEM_GENERATE;
    pre |= s->kinds[i] == SF_ITEM_PREFILL;
    ker |= s->kinds[i] == SF_ITEM_KERNELS;
  }
  int64_t total = 0;
  for (int32_t m = 0; m < s->n_models; m++) {
    int ops = 0;
    for (int k = 0; k < s->n_kernel_ops; k++) ops += sf_kernel_op_applies((sf_kernel_op)s->kernel_ops[k], s->models[m].cfg.arch);
    for (int32_t b = 0; b < s->n_batches; b++) {
      int64_t groups = 0;
      for (int32_t covered = 0; covered < s->n_problems; covered += s->batches[b]) groups++;
      total += (int64_t)s->n_contexts * ((gen ? s->n_gens * groups : 0) + (pre ? groups : 0) + (ker ? ops : 0));
    }
  }
  return total;
}

/* Checks every invariant of an expansion; returns 0 on failure. */
static int check_plan(const sf_spec *s, const sf_plan *p, const char *what) {
  int fails = sf_test_failures;
  CHECK_MSG(p->n_items == expected_count(s), "%s: %d items, expected %lld", what, p->n_items,
            (long long)expected_count(s));
  int32_t oom = 0;
  double total = 0;
  for (int32_t i = 0; i < p->n_items; i++) {
    const sf_plan_item *it = &p->items[i];
    CHECK_EQ_I64(it->item.index, i);
    CHECK(strlen(it->item.key) == 16);
    char *canon = sf_plan_item_canonical(s, it);
    CHECK(canon != NULL);
    if (canon) {
      char hex[65];
      sf_sha256_hex(canon, strlen(canon), hex);
      CHECK_MSG(!strncmp(hex, it->item.key, 16), "%s: item %d key %s != sha256 %.16s", what, i, it->item.key, hex);
      free(canon);
    }
    for (int32_t j = 0; j < i; j++)
      if (!strcmp(p->items[j].item.key, it->item.key)) {
        CHECK_MSG(0, "%s: items %d and %d share key %s", what, j, i, it->item.key);
        break;
      }
    CHECK(it->item.est_cost > 0);
    CHECK(it->item.est_bytes > 0);
    CHECK_EQ_I64(it->item.oom_predicted, it->item.est_bytes > s->device_mem);
    CHECK(it->item.gpus >= 1);
    if (it->item.kind == SF_ITEM_KERNELS) {
      CHECK(it->kernel_op >= 0 && it->item.first_problem == -1 && it->item.gen == 0);
    } else {
      CHECK(it->kernel_op == -1);
      CHECK(it->item.first_problem >= 0 && it->item.first_problem < s->n_problems);
      CHECK(it->item.first_problem % it->item.batch == 0);
    }
    oom += it->item.oom_predicted;
    if (!it->item.oom_predicted) total += it->item.est_cost;
  }
  CHECK_EQ_I64(p->n_oom_predicted, oom);
  CHECK(fabs(p->total_cost - total) <= 1e-9 * (total + 1));
  return fails == sf_test_failures;
}

/* The canonical text parses back to a spec with the same items and keys. */
static void check_round_trip(const sf_spec *s, const sf_plan *p, const char *what) {
  sf_spec s2;
  sf_error err;
  if (sf_spec_parse_yaml(s->canonical, strlen(s->canonical), "canonical", &s2, &err) != SF_OK) {
    CHECK_MSG(0, "%s: canonical text does not parse: %s", what, err.msg);
    return;
  }
  CHECK_STR_EQ(s2.canonical, s->canonical);
  sf_plan p2;
  if (sf_spec_expand(&s2, &p2, &err) == SF_OK) {
    CHECK_EQ_I64(p2.n_items, p->n_items);
    for (int32_t i = 0; i < p->n_items && i < p2.n_items; i++) CHECK_STR_EQ(p2.items[i].item.key, p->items[i].item.key);
    sf_plan_free(&p2);
  } else {
    CHECK_MSG(0, "%s: %s", what, err.msg);
  }
  sf_spec_free(&s2);
}

static void test_sweep_files(void) {
  const char *src = getenv("SF_SOURCE_DIR");
  if (!src || !*src) {
    printf("SF_SOURCE_DIR unset: sweeps/ not checked\n");
    return;
  }
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/sweeps", src);
  DIR *d = opendir(dir);
  REQUIRE(d != NULL);
  /* the ready specs and what they must expand to */
  static const struct {
    const char *file;
    int items;
  } known[] = {{"quick.yaml", 81},       {"tiny.yaml", 27},       {"fig8-right.yaml", 510},
               {"long-context.yaml", 270}, {"fig8-left.yaml", 96}};
  int seen[sizeof known / sizeof known[0]] = {0};
  struct dirent *e;
  int n_files = 0;
  while ((e = readdir(d)) != NULL) {
    if (!sf_ends_with(e->d_name, ".yaml") && !sf_ends_with(e->d_name, ".yml")) continue;
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    sf_spec s;
    sf_error err;
    n_files++;
    if (sf_spec_load_file(path, &s, &err) != SF_OK) {
      CHECK_MSG(0, "%s: %s", e->d_name, err.msg);
      continue;
    }
    CHECK(s.source_text && s.canonical && s.source_path);
    sf_plan p;
    if (sf_spec_expand(&s, &p, &err) != SF_OK) {
      CHECK_MSG(0, "%s: %s", e->d_name, err.msg);
      sf_spec_free(&s);
      continue;
    }
    check_plan(&s, &p, e->d_name);
    check_round_trip(&s, &p, e->d_name);
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
      if (!strcmp(e->d_name, known[k].file)) {
        seen[k] = 1;
        CHECK_MSG(p.n_items == known[k].items, "%s: %d items, expected %d", e->d_name, p.n_items, known[k].items);
      }
    printf("%s: %d items, %d predicted OOM, %.0f s estimated\n", e->d_name, p.n_items, p.n_oom_predicted,
           p.total_cost);
    sf_plan_free(&p);
    sf_spec_free(&s);
  }
  closedir(d);
  for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) CHECK_MSG(seen[k], "sweeps/%s is missing", known[k].file);
  CHECK(n_files >= 5);
}

/* A fixed config: its canonical string is spelled out here, and its key is
 * the sha256 of that string, computed once: a change to either means every
 * results file's keys changed (--resume and merge would stop matching). */
static const char *const fixed_yaml =
    "models: [tiny-mamba1]\ncontexts: [128]\nbatches: [2]\ngens: [8]\nproblems: [3, 1]\n"
    "repeats: 2\nwarmup: 1\nseed: 7\n";
static const char *const fixed_canonical =
    "scanflash-item-v1\n"
    "kind=generate\n"
    "arch=mamba1\n"
    "model=tiny-mamba1\n"
    "weights=random\n"
    "shape=mamba1:n_layers=2,d_model=64,vocab_size=50280,d_inner=128,d_state=16,d_conv=4,dt_rank=4,"
    "tie_embeddings=1,residual_in_fp32=1,norm_eps=9.99999975e-06\n"
    "dtype=bf16\n"
    "context=128\n"
    "batch=2\n"
    "gen=8\n"
    "problems=3,1\n"
    "op=-\n"
    "repeats=2\n"
    "warmup=1\n"
    "seed=7\n"
    "gpus=1\n"
    "prefill_chunk=0\n";
static const char *const fixed_key = "1359abad84a64a59";

static void test_key_stability(void) {
  char hex[65];
  sf_sha256_hex(fixed_canonical, strlen(fixed_canonical), hex);
  CHECK_MSG(!strncmp(hex, fixed_key, 16), "sha256 of the canonical string: %.16s, constant %s", hex, fixed_key);
  sf_spec s;
  sf_error err;
  REQUIRE(parse_text(fixed_yaml, &s, &err));
  sf_plan p;
  REQUIRE(sf_spec_expand(&s, &p, &err) == SF_OK);
  REQUIRE(p.n_items == 1);
  char *canon = sf_plan_item_canonical(&s, &p.items[0]);
  CHECK_STR_EQ(canon, fixed_canonical);
  free(canon);
  CHECK_STR_EQ(p.items[0].item.key, fixed_key);
  char key[SF_KEY_LEN];
  sf_spec_key_of(fixed_canonical, key);
  CHECK_STR_EQ(key, fixed_key);
  /* what is not part of the key: timeouts, memory budgets, names */
  sf_plan_free(&p);
  sf_spec_free(&s);
  char other[1024];
  snprintf(other, sizeof other, "%sitem_timeout: 5m\ndevice_mem: 1k\nname: other\n", fixed_yaml);
  REQUIRE(parse_text(other, &s, &err));
  REQUIRE(sf_spec_expand(&s, &p, &err) == SF_OK);
  CHECK_STR_EQ(p.items[0].item.key, fixed_key);
  CHECK(p.items[0].item.oom_predicted && p.n_oom_predicted == 1);
  CHECK(p.items[0].item.timeout_s == 300);
  sf_plan_free(&p);
  sf_spec_free(&s);
  /* everything that is part of it changes it */
  static const char *const changes[] = {"dtype: f16\n", "prefill_chunk: 64\n", "gpus: 2\n", "kinds: [prefill]\n"};
  for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
    snprintf(other, sizeof other, "%s%s", fixed_yaml, changes[i]);
    REQUIRE(parse_text(other, &s, &err));
    REQUIRE(sf_spec_expand(&s, &p, &err) == SF_OK);
    CHECK_MSG(strcmp(p.items[0].item.key, fixed_key) != 0, "'%s' leaves the key unchanged", changes[i]);
    sf_plan_free(&p);
    sf_spec_free(&s);
  }
}

static int find_key(const sf_plan *p, const char *key) {
  for (int32_t i = 0; i < p->n_items; i++)
    if (!strcmp(p->items[i].item.key, key)) return i;
  return -1;
}

/* Reordering the lists reorders the items but keeps every key. */
static void test_key_order_independence(void) {
  const char *a =
      "models: [tiny-mamba1, tiny-transformer, tiny-mamba2]\ncontexts: [128, 256]\nbatches: [1, 2]\n"
      "gens: [8, canonical]\nproblems: 0-2\nkinds: [generate, prefill]\n";
  const char *b =
      "models: [tiny-mamba2, tiny-transformer, tiny-mamba1]\ncontexts: [256, 128]\nbatches: [2, 1]\n"
      "gens: [canonical, 8]\nproblems: 0-2\nkinds: [prefill, generate]\n";
  sf_spec sa, sb;
  sf_plan pa, pb;
  sf_error err;
  REQUIRE(parse_text(a, &sa, &err) && parse_text(b, &sb, &err));
  REQUIRE(sf_spec_expand(&sa, &pa, &err) == SF_OK && sf_spec_expand(&sb, &pb, &err) == SF_OK);
  CHECK(check_plan(&sa, &pa, "a") && check_plan(&sb, &pb, "b"));
  CHECK_EQ_I64(pa.n_items, pb.n_items);
  int moved = 0;
  for (int32_t i = 0; i < pa.n_items; i++) {
    int j = find_key(&pb, pa.items[i].item.key);
    CHECK_MSG(j >= 0, "key %s of a is not in b", pa.items[i].item.key);
    if (j < 0) continue;
    moved += j != i;
    const sf_work_item *x = &pa.items[i].item, *y = &pb.items[j].item;
    CHECK(x->context == y->context && x->batch == y->batch && x->gen == y->gen && x->kind == y->kind &&
          !strcmp(x->model, y->model) && x->first_problem == y->first_problem);
  }
  CHECK(moved > 0);
  /* sorting for scheduling keeps keys and indices */
  sf_plan_sort_by_cost(&pa);
  for (int32_t i = 1; i < pa.n_items; i++) {
    CHECK(pa.items[i - 1].item.est_cost >= pa.items[i].item.est_cost);
    if (pa.items[i - 1].item.est_cost == pa.items[i].item.est_cost)
      CHECK(pa.items[i - 1].item.index < pa.items[i].item.index);
  }
  for (int32_t i = 0; i < pa.n_items; i++) CHECK(find_key(&pb, pa.items[i].item.key) >= 0);
  sf_plan_free(&pa);
  sf_plan_free(&pb);
  sf_spec_free(&sa);
  sf_spec_free(&sb);
}

static void test_expansion_details(void) {
  sf_spec s;
  sf_plan p;
  sf_error err;
  /* 5 problems in batches of 2: groups start at 0, 2, 4; the last wraps */
  REQUIRE(parse_text("models: [tiny-transformer]\ncontexts: [0, 64k]\nbatches: [2]\nproblems: [10, 11, 12, 13, 14]\n"
                     "gpus: [1, \"transformer>=64k:4\"]\n",
                     &s, &err));
  REQUIRE(sf_spec_expand(&s, &p, &err) == SF_OK);
  CHECK_EQ_I64(p.n_items, 6);
  if (p.n_items == 6) {
    CHECK_EQ_I64(p.items[2].item.first_problem, 4);
    int32_t pr[2];
    sf_plan_item_problems(&s, &p.items[2], pr);
    CHECK(pr[0] == 14 && pr[1] == 10);
    CHECK_EQ_I64(p.items[0].item.context, 0);
    CHECK_EQ_I64(p.items[0].item.gpus, 1);
    CHECK_EQ_I64(p.items[3].item.gpus, 4);
    /* memory per GPU: weights whole, the rest shared by the 4 */
    sf_memory_estimate e;
    sf_model_estimate_memory(&s.models[0].cfg, SF_BF16, 2, 65536, 128, 65536, &e);
    CHECK_EQ_I64(p.items[3].mem.weights, e.weights);
    CHECK_EQ_I64(p.items[3].mem.cache, (e.cache + 3) / 4);
    sf_model_estimate_memory(&s.models[0].cfg, SF_BF16, 2, SF_SPEC_NATURAL_TOKENS, 128, SF_SPEC_NATURAL_TOKENS, &e);
    CHECK_EQ_I64(p.items[0].item.est_bytes, e.total);
  }
  sf_plan_free(&p);
  sf_spec_free(&s);

  /* kernels: one item per op that applies to the model, no problems */
  REQUIRE(parse_text("kinds: [kernels]\nkernels: [attention, selective_scan, conv1d]\n"
                     "models: [tiny-mamba1, tiny-transformer, tiny-mamba2]\ncontexts: 512:2k:x2\n",
                     &s, &err));
  REQUIRE(sf_spec_expand(&s, &p, &err) == SF_OK);
  CHECK(check_plan(&s, &p, "kernels"));
  CHECK_EQ_I64(p.n_items, 3 * (2 + 1 + 1)); /* mamba1: scan, conv1d; mamba2: conv1d; transformer: attention */
  sf_plan_free(&p);
  sf_spec_free(&s);

  /* a larger model than the budget: predicted OOM */
  REQUIRE(parse_text("models: [pythia-6.9b]\ncontexts: [1M]\nbatches: [8]\nproblems: 0-7\n", &s, &err));
  REQUIRE(sf_spec_expand(&s, &p, &err) == SF_OK);
  CHECK(p.n_items == 1 && p.n_oom_predicted == 1 && p.items[0].item.oom_predicted);
  CHECK(p.total_cost == 0 && p.total_cost_all > 0);
  sf_plan_free(&p);
  sf_spec_free(&s);

  /* Transformer prefill cost grows faster than Mamba's with the context */
  REQUIRE(parse_text("models: [mamba-1.4b, pythia-1.4b]\ncontexts: [8k, 128k]\nproblems: 0\nkinds: [prefill]\n",
                     &s, &err));
  REQUIRE(sf_spec_expand(&s, &p, &err) == SF_OK);
  REQUIRE(p.n_items == 4);
  double mamba_growth = p.items[1].item.est_cost / p.items[0].item.est_cost;
  double tf_growth = p.items[3].item.est_cost / p.items[2].item.est_cost;
  CHECK_MSG(tf_growth > 2 * mamba_growth, "growth 8k->128k: mamba %.1f, transformer %.1f", mamba_growth, tf_growth);
  sf_plan_free(&p);
  sf_spec_free(&s);

  /* custom shapes and checkpoints */
  REQUIRE(parse_text("models:\n"
                     "  - tiny-mamba2\n"
                     "  - {preset: tiny-mamba2, name: wide-mamba2, d_model: 128}\n"
                     "  - {arch: transformer, name: gqa, n_heads: 12, n_kv_heads: 4, n_layers: 2}\n"
                     "  - {checkpoint: /models/my-mamba/, preset: tiny-mamba1}\n"
                     "contexts: [128]\nproblems: 0\n",
                     &s, &err));
  CHECK_EQ_I64(s.n_models, 4);
  if (s.n_models == 4) {
    CHECK_EQ_I64(s.models[1].cfg.d_inner, 256);
    CHECK_EQ_I64(s.models[1].cfg.ssm_heads, 256 / s.models[1].cfg.ssm_head_dim);
    CHECK_EQ_I64(s.models[2].cfg.n_kv_heads, 4);
    CHECK_EQ_I64(s.models[2].cfg.head_dim, 64);
    CHECK_STR_EQ(s.models[3].name, "my-mamba");
    CHECK_STR_EQ(s.models[3].checkpoint, "/models/my-mamba/");
  }
  REQUIRE(sf_spec_expand(&s, &p, &err) == SF_OK);
  CHECK(check_plan(&s, &p, "custom"));
  check_round_trip(&s, &p, "custom");
  sf_plan_free(&p);
  sf_spec_free(&s);
}

static void test_yaml_errors(void) {
  expect_yaml_error("models: [mamba-130m]\ncontxts: [2k]\n", "t.yaml:2:1: unknown key 'contxts' (did you mean 'contexts'?)");
  expect_yaml_error("contexts: {a: 1}\n", "t.yaml:1:11: key 'contexts': expected a list of token counts, got a mapping");
  expect_yaml_error("repeats: [1]\n", "t.yaml:1:10: key 'repeats': expected a repeat count, got a list");
  expect_yaml_error("batches: [1, 0]\n", "t.yaml:1:14: key 'batches': batch size 0 is not allowed");
  expect_yaml_error("models:\n  - mamba-13m\n", "t.yaml:2:5: key 'models': unknown model preset 'mamba-13m'");
  expect_yaml_error("contexts: 2k:1k:x2\n", "t.yaml:1:11: key 'contexts': '2k:1k:x2': end 1k is less than start 2k");
  expect_yaml_error("models: [mamba-130m\ncontexts: 2k\n", "t.yaml:2:9: malformed YAML");
  expect_yaml_error("contexts: [1k]\ncontexts: [2k]\n", "t.yaml:2:1: key 'contexts' is given twice (first at line 1)");
  expect_yaml_error("repeats: 0\n", "t.yaml:1:10: key 'repeats': repeats 0 is out of range");
  expect_yaml_error("contexts: -1\n", "negative");
  expect_yaml_error("kinds: [generate, decode]\n", "unknown kind 'decode'");
  expect_yaml_error("dtype: fp8\n", "unknown dtype 'fp8'");
  expect_yaml_error("problems: 0-164\n", "out of range 0..163");
  expect_yaml_error("problems: 19-0\n", "before start");
  expect_yaml_error("", "t.yaml: the spec is empty");
  expect_yaml_error("- 1\n", "t.yaml:1:1: expected a mapping of keys at the top level, got a list");
  expect_yaml_error("seed: 1\n---\nseed: 2\n", "t.yaml:2:1: a spec is one YAML document");
  expect_yaml_error("contexts:\n", "t.yaml:1:10: key 'contexts': expected a list of token counts, got nothing");
  expect_yaml_error("contexts: []\n", "the list is empty");
  expect_yaml_error("contexts: [[1]]\n", "t.yaml:1:12: key 'contexts'");
  expect_yaml_error("models:\n  - {preset: mamba-130m, n_layers: 4}\n", "t.yaml:2:5: key 'models[0]': a custom shape needs a 'name'");
  expect_yaml_error("models:\n  - {preset: mamba-130m, n_heads: 4, name: x}\n",
                    "t.yaml:2:26: key 'models[0].n_heads': does not apply to mamba1 models");
  expect_yaml_error("models:\n  - {preset: mamba-130m, d_modle: 4, name: x}\n", "did you mean 'd_model'?");
  expect_yaml_error("models:\n  - {name: x}\n", "needs 'preset'");
  expect_yaml_error("models:\n  - {preset: mamba-130m, arch: transformer}\n", "is a mamba1 model, not transformer");
  expect_yaml_error("models:\n  - {preset: mamba-130m, name: pythia-160m, n_layers: 2}\n", "is a preset's name");
  expect_yaml_error("models: [mamba-130m, mamba-130m]\n", "listed twice");
  expect_yaml_error("archs: [mamba1]\nmodels: [pythia-160m]\n", "t.yaml:2:1: key 'models': model 'pythia-160m' is a transformer model");
  expect_yaml_error("kinds: [kernels]\n", "t.yaml:1:1: key 'kinds': kind 'kernels' needs the ops");
  expect_yaml_error("kernels: [ssd]\n", "the kinds do not include 'kernels'");
  expect_yaml_error("kinds: [kernels]\nkernels: [ssd]\nmodels: [pythia-160m]\n", "op 'ssd' applies to none");
  expect_yaml_error("kinds: [kernels]\nkernels: [sdd]\nmodels: [mamba2-130m]\n", "did you mean 'ssd'?");
  expect_yaml_error("kinds: [kernels]\nkernels: [ssd]\nmodels: [mamba2-130m]\ncontexts: [0]\n", "context 0");
  expect_yaml_error("gpus: 0\n", "out of range 1..1024");
  expect_yaml_error("gpus: {default: 1, rules: [{arch: transformr, gpus: 2}]}\n", "unknown architecture 'transformr'");
  expect_yaml_error("gpus: {default: 1, rules: [{arch: transformer}]}\n", "a rule needs 'gpus'");
  expect_yaml_error("item_timeout: -3\n", "negative");
  expect_yaml_error("device_mem: 0\n", "must be >= 1");
  expect_yaml_error("name: a b\n", "a name is letters");
  expect_yaml_error("seed: -1\n", "key 'seed'");
}

static void test_flags(void) {
  sf_error err;
  sf_spec s;
  char *rest[32];
  int n_rest = 0;
  /* quick flags and the YAML they mean: the same items and keys */
  char *argv1[] = {"plan", "--arch", "mamba1,transformer", "--context", "1k:4k:x2", "--batch=1,2",
                   "--gen", "8", "--problems", "0-3", "--repeats", "2", "--format", "csv", "-o", "x.h5", NULL};
  static const char *const value_opts[] = {"--format", "-o", NULL};
  REQUIRE(sf_spec_from_args(16, argv1, value_opts, &s, &n_rest, rest, &err) == SF_OK);
  CHECK_EQ_I64(n_rest, 5);
  if (n_rest == 5) {
    CHECK_STR_EQ(rest[0], "plan");
    CHECK_STR_EQ(rest[1], "--format");
    CHECK_STR_EQ(rest[2], "csv");
    CHECK_STR_EQ(rest[3], "-o");
    CHECK_STR_EQ(rest[4], "x.h5");
    CHECK(rest[5] == NULL);
  }
  CHECK(s.source_path == NULL && s.source_text && strstr(s.source_text, "--context 1k:4k:x2"));
  sf_spec y;
  REQUIRE(parse_text("models: [mamba-130m, pythia-160m]\ncontexts: [1k, 2k, 4k]\nbatches: [1, 2]\ngens: 8\n"
                     "problems: 0-3\nrepeats: 2\n",
                     &y, &err));
  sf_plan pf, py;
  REQUIRE(sf_spec_expand(&s, &pf, &err) == SF_OK && sf_spec_expand(&y, &py, &err) == SF_OK);
  CHECK_EQ_I64(pf.n_items, py.n_items);
  for (int32_t i = 0; i < pf.n_items && i < py.n_items; i++) CHECK_STR_EQ(pf.items[i].item.key, py.items[i].item.key);
  sf_plan_free(&pf);
  sf_plan_free(&py);
  sf_spec_free(&s);
  sf_spec_free(&y);

  static const struct {
    int argc;
    char *argv[6];
    const char *want;
  } bad[] = {
      {3, {"plan", "--context", "2k:1k:x2"}, "--context: '2k:1k:x2': end 1k is less than start 2k"},
      {3, {"plan", "--batch", "0"}, "--batch: batch size 0"},
      {2, {"plan", "--batch"}, "--batch needs a value"},
      {5, {"plan", "--seed", "1", "--seed", "2"}, "--seed is given twice"},
      {1, {"plan"}, "no sweep given"},
      {3, {"plan", "--model", "nope"}, "--model: unknown model preset 'nope'"},
      {5, {"plan", "--model", "mamba-130m", "--arch", "transformer"}, "not one of --arch"},
      {4, {"plan", "spec.yaml", "--context", "2k"}, "--context cannot be combined with a spec file"},
      {2, {"plan", "/nonexistent/spec.yaml"}, "/nonexistent/spec.yaml: cannot open"},
      {3, {"plan", "--kind", "kernels"}, "needs the ops to run (--kernels)"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    sf_error_clear(&err);
    sf_status rc = sf_spec_from_args(bad[i].argc, (char **)bad[i].argv, NULL, &s, &n_rest, rest, &err);
    CHECK_MSG(rc != SF_OK, "case %zu accepted", i);
    if (rc == SF_OK) sf_spec_free(&s);
    CHECK_MSG(strstr(err.msg, bad[i].want) != NULL, "case %zu: error '%s' lacks '%s'", i, err.msg, bad[i].want);
  }

  /* a spec file with the overrides that may go with it */
  const char *src = getenv("SF_SOURCE_DIR");
  if (src && *src) {
    char path[4096];
    snprintf(path, sizeof path, "%s/sweeps/tiny.yaml", src);
    char *argv2[] = {"run", path, "--device-mem", "1M", "--item-timeout=90s", NULL};
    REQUIRE(sf_spec_from_args(5, argv2, NULL, &s, &n_rest, rest, &err) == SF_OK);
    CHECK_EQ_I64(s.device_mem, 1 << 20);
    CHECK(s.item_timeout_s == 90);
    CHECK_STR_EQ(s.name, "tiny");
    CHECK_EQ_I64(n_rest, 1);
    sf_plan p;
    REQUIRE(sf_spec_expand(&s, &p, &err) == SF_OK);
    CHECK_EQ_I64(p.n_oom_predicted, p.n_items);
    sf_plan_free(&p);
    sf_spec_free(&s);
  }
}

int main(void) {
  test_ranges();
  test_problems();
  test_sweep_files();
  test_key_stability();
  test_key_order_independence();
  test_expansion_details();
  test_yaml_errors();
  test_flags();
  return sf_test_finish("test_spec");
}
