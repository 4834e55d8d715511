/* scanflash plan: expand a sweep (YAML spec or quick-sweep flags) into its
 * work items and show each one's key, estimated memory and cost, the
 * predicted OOMs and the totals, without running anything. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/command.h"
#include "spec/spec.h"

#define PROG "scanflash plan"

static void usage(FILE *f) {
  fprintf(f,
          "usage: scanflash plan (SPEC.yaml | quick-sweep flags) [--device-mem BYTES]\n"
          "                      [--format table|csv] [--order canonical|cost]\n"
          "\n"
          "Lists the work items a sweep expands to, without running anything: each\n"
          "item's key (stable across runs, machines and rank counts), kind, model,\n"
          "context, batch, generation length, problems, GPUs, estimated device memory\n"
          "per GPU and estimated cost (seconds on a reference GPU, repeats and warm-ups\n"
          "included), marking those predicted to run out of memory; then the totals.\n"
          "\n"
          "  --format F   table (default) or csv (totals as trailing '#' lines)\n"
          "  --order O    canonical (the items' index order, default) or cost (the\n"
          "               order scanflash run hands them out: largest cost first)\n"
          "\n"
          "%s"
          "\n"
          "Examples:\n"
          "  scanflash plan sweeps/quick.yaml\n"
          "  scanflash plan --arch mamba1,transformer --context 2k:1M:x2 --batch 1,8 --problems 0-7\n"
          "\n"
          "Exit status: 0 ok, 1 error in the spec file, 2 usage error.\n",
          sf_spec_flags_help());
}

/* "2k", "1M", "natural", or the number. */
static void fmt_tokens(int64_t v, char *buf, size_t size) {
  if (v == 0) snprintf(buf, size, "natural");
  else if (v % (1LL << 20) == 0) snprintf(buf, size, "%lldM", (long long)(v >> 20));
  else if (v % 1024 == 0) snprintf(buf, size, "%lldk", (long long)(v >> 10));
  else snprintf(buf, size, "%lld", (long long)v);
}

/* The problems as runs: "0-7", "128-163 0-27"; cut at size with "...". */
static void fmt_problems(const int32_t *p, int32_t n, char sep, char *buf, size_t size) {
  size_t len = 0;
  buf[0] = '\0';
  if (n <= 0 || p[0] < 0) {
    snprintf(buf, size, "-");
    return;
  }
  const char sepstr[2] = {sep, '\0'};
  for (int32_t i = 0; i < n;) {
    int32_t j = i;
    while (j + 1 < n && p[j + 1] == p[j] + 1) j++;
    char run[32];
    if (j > i) snprintf(run, sizeof run, "%s%d-%d", i ? sepstr : "", p[i], p[j]);
    else snprintf(run, sizeof run, "%s%d", i ? sepstr : "", p[i]);
    if (len + strlen(run) + 4 >= size) {
      snprintf(buf + len, size - len, "...");
      return;
    }
    len += (size_t)snprintf(buf + len, size - len, "%s", run);
    i = j + 1;
  }
}

static void fmt_duration(double s, char *buf, size_t size) {
  if (s < 1) snprintf(buf, size, "%.2g s", s);
  else if (s < 120) snprintf(buf, size, "%.1f s", s);
  else if (s < 7200) snprintf(buf, size, "%.1f min", s / 60);
  else snprintf(buf, size, "%.1f h", s / 3600);
}

int cmd_plan(int argc, char **argv) {
  for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return SF_EXIT_OK;
    }
  static const char *const value_opts[] = {"--format", "--order", NULL};
  char **rest = calloc((size_t)argc + 1, sizeof *rest);
  if (!rest) {
    fprintf(stderr, PROG ": out of memory\n");
    return SF_EXIT_FAILURE;
  }
  sf_spec spec;
  sf_error err;
  sf_error_clear(&err);
  int n_rest = 0;
  if (sf_spec_from_args(argc, argv, value_opts, &spec, &n_rest, rest, &err) != SF_OK) {
    fprintf(stderr, PROG ": %s\n", err.msg);
    free(rest);
    return err.code == SF_ERR_ARG ? SF_EXIT_USAGE : SF_EXIT_FAILURE;
  }

  static const struct option opts[] = {{"format", required_argument, 0, 'f'},
                                       {"order", required_argument, 0, 'o'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int csv = 0, by_cost = 0, c, rc = SF_EXIT_OK;
  opterr = 0;
  optind = 1;
  while (rc == SF_EXIT_OK && (c = getopt_long(n_rest, rest, ":h", opts, NULL)) != -1) {
    switch (c) {
      case 'f':
        if (!strcmp(optarg, "csv")) csv = 1;
        else if (!strcmp(optarg, "table")) csv = 0;
        else {
          fprintf(stderr, PROG ": --format: '%s' is not one of table, csv\n", optarg);
          rc = SF_EXIT_USAGE;
        }
        break;
      case 'o':
        if (!strcmp(optarg, "cost")) by_cost = 1;
        else if (!strcmp(optarg, "canonical")) by_cost = 0;
        else {
          fprintf(stderr, PROG ": --order: '%s' is not one of canonical, cost\n", optarg);
          rc = SF_EXIT_USAGE;
        }
        break;
      case ':':
        fprintf(stderr, PROG ": option '%s' needs a value\n", rest[optind - 1]);
        rc = SF_EXIT_USAGE;
        break;
      default:
        fprintf(stderr, PROG ": unknown option '%s' (scanflash plan --help)\n", rest[optind - 1]);
        rc = SF_EXIT_USAGE;
    }
  }
  if (rc == SF_EXIT_OK && optind < n_rest) {
    fprintf(stderr, PROG ": unexpected argument '%s' (one spec file at most)\n", rest[optind]);
    rc = SF_EXIT_USAGE;
  }
  free(rest);
  if (rc != SF_EXIT_OK) {
    sf_spec_free(&spec);
    return rc;
  }

  sf_plan plan;
  if (sf_spec_expand(&spec, &plan, &err) != SF_OK) {
    fprintf(stderr, PROG ": %s\n", err.msg);
    sf_spec_free(&spec);
    return err.code == SF_ERR_ARG ? SF_EXIT_USAGE : SF_EXIT_FAILURE;
  }
  if (by_cost) sf_plan_sort_by_cost(&plan);

  int32_t max_batch = 1;
  int model_w = 5, gen_w = 9;
  for (int32_t i = 0; i < plan.n_items; i++) {
    if (plan.items[i].item.batch > max_batch) max_batch = plan.items[i].item.batch;
    int l = (int)strlen(plan.items[i].item.model);
    if (l > model_w) model_w = l;
    if (plan.items[i].kernel_op >= 0) {
      l = (int)strlen(sf_kernel_op_name((sf_kernel_op)plan.items[i].kernel_op));
      if (l > gen_w) gen_w = l;
    }
  }
  int32_t *probs = malloc((size_t)max_batch * sizeof *probs);
  if (!probs) {
    fprintf(stderr, PROG ": out of memory\n");
    sf_plan_free(&plan);
    sf_spec_free(&spec);
    return SF_EXIT_FAILURE;
  }
  const double gib = (double)(1LL << 30);
  int32_t per_kind[3] = {0, 0, 0};
  if (csv) {
    printf("index,key,kind,arch,model,context,batch,gen,op,problems,gpus,est_bytes,est_gib,est_cost_s,est_flops,"
           "oom_predicted\n");
  } else {
    printf("# sweep '%s' (%s): %d items; device memory budget %.1f GiB per GPU\n", spec.name,
           spec.source_path ? spec.source_path : "quick-sweep flags", plan.n_items, (double)spec.device_mem / gib);
    printf("%-16s  %-8s  %-11s  %-*s  %7s  %5s  %*s  %-20s  %4s  %9s  %10s\n", "key", "kind", "arch", model_w,
           "model", "context", "batch", gen_w, gen_w > 9 ? "gen/op" : "gen", "problems", "gpus", "mem_GiB",
           "cost_s");
  }
  for (int32_t i = 0; i < plan.n_items; i++) {
    const sf_plan_item *it = &plan.items[i];
    const sf_work_item *w = &it->item;
    per_kind[w->kind]++;
    sf_plan_item_problems(&spec, it, probs);
    char ctx[32], gen[32], pr[256];
    const char *kind = w->kind == SF_ITEM_KERNELS ? sf_kernel_op_name((sf_kernel_op)it->kernel_op)
                                                  : sf_item_kind_name((sf_item_kind)w->kind);
    if (w->gen == SF_GEN_CANONICAL) snprintf(gen, sizeof gen, "canonical");
    else if (w->gen == 0) snprintf(gen, sizeof gen, "-");
    else snprintf(gen, sizeof gen, "%d", w->gen);
    if (csv) {
      fmt_problems(probs, w->first_problem < 0 ? 0 : w->batch, ' ', pr, sizeof pr);
      printf("%d,%s,%s,%s,%s,%lld,%d,%s,%s,%s,%d,%lld,%.3f,%.6g,%.6g,%d\n", w->index, w->key,
             w->kind == SF_ITEM_KERNELS ? "kernels" : kind, w->arch, w->model, (long long)w->context, w->batch,
             w->kind == SF_ITEM_KERNELS ? "" : gen, w->kind == SF_ITEM_KERNELS ? kind : "", pr, w->gpus, (long long)w->est_bytes,
             (double)w->est_bytes / gib, w->est_cost, it->est_flops, w->oom_predicted);
    } else {
      fmt_tokens(w->context, ctx, sizeof ctx);
      fmt_problems(probs, w->first_problem < 0 ? 0 : w->batch, ',', pr, 21);
      printf("%-16s  %-8s  %-11s  %-*s  %7s  %5d  %*s  %-20s  %4d  %9.2f  %10.3g%s\n", w->key,
             w->kind == SF_ITEM_KERNELS ? "kernels" : kind, w->arch, model_w, w->model, ctx, w->batch, gen_w,
             w->kind == SF_ITEM_KERNELS ? kind : gen, pr, w->gpus, (double)w->est_bytes / gib, w->est_cost,
             w->oom_predicted ? "  OOM-predicted" : "");
    }
  }
  char total[32], all[32];
  fmt_duration(plan.total_cost, total, sizeof total);
  fmt_duration(plan.total_cost_all, all, sizeof all);
  const char *pre = csv ? "# " : "";
  printf("%stotals: %d items (generate %d, prefill %d, kernels %d); predicted OOM: %d; to run: %d\n", pre,
         plan.n_items, per_kind[0], per_kind[1], per_kind[2], plan.n_oom_predicted,
         plan.n_items - plan.n_oom_predicted);
  printf("%stotal estimated cost: %s of GPU time for the items to run (%s with the predicted OOMs),\n"
         "%s  on a reference GPU (%.0f TFLOP/s, %.1f TB/s), repeats and warm-ups included\n",
         pre, total, all, pre, SF_REF_FLOPS / 1e12, SF_REF_BYTES_S / 1e12);
  free(probs);
  sf_plan_free(&plan);
  sf_spec_free(&spec);
  if (fflush(stdout) != 0) {
    fprintf(stderr, PROG ": cannot write the plan\n");
    return SF_EXIT_FAILURE;
  }
  return SF_EXIT_OK;
}
