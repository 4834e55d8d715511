/* scanflash kernels: the kernel benchmark sweep (the Mamba paper's Figure 8,
 * left; issue 5 item 3) on one GPU, through worker/kbench. Prints an
 * nccl-tests-like table, one row per (op, implementation, shape), as each
 * finishes; with -o also writes the rows to an HDF5 results file: one
 * kernels item per row (/items: its status and message), its /kernels row,
 * and the device (/devices). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/command.h"
#include "kbench/kbench.h"
#include "results/results.h"
#include "scanflash/files.h"
#include "scanflash/parse.h"

#define PROG "scanflash kernels"

enum { MAX_LENS = 256, MAX_BATCHES = 64, MAX_HD = 8 };

static void usage(FILE *f) {
  fprintf(f,
          "usage: scanflash kernels [--op LIST] [--seqlen LIST] [--dtype bf16] [-o k.h5] [options]\n"
          "\n"
          "Benchmarks the kernels of both architectures on one GPU (the Mamba paper's\n"
          "Figure 8, left) through the cuda op table: for each op, implementation and\n"
          "shape, the median time per call over repeats after warm-ups (CUDA events,\n"
          "the L2 flushed before every call), TFLOP/s (attention: FlashAttention's\n"
          "4 b s^2 h d, halved when causal), GB/s over the minimum bytes, %% of the\n"
          "roofline from ceilings measured at start (bf16 GEMM, device-to-device copy,\n"
          "exp rate), and the error against the cpu backend on a reduced problem of\n"
          "the same width (#wrong elements, max relative error).\n"
          "\n"
          "Shapes are one layer of mamba-1.4b (scan, state_update, conv, conv_update,\n"
          "gemm: in_proj), mamba2-1.3b (ssd, ssd_update) and pythia-1.4b (attn,\n"
          "attn_decode; --head-dim 64 keeps its width with 32 heads of 64).\n"
          "\n"
          "  --op LIST          scan, ssd, conv, attn, attn_decode, state_update,\n"
          "                     ssd_update, conv_update, gemm, or all [all]; OP:IMPL\n"
          "                     picks one implementation (attn:naive, scan:chunked), an\n"
          "                     op table name too (selective_scan_naive)\n"
          "  --seqlen LIST      tokens per sequence (attn_decode: the KV cache length);\n"
          "                     values and ranges: 512:1M:x2, 1k:4k:+1k, 2k,8k [512:1M:x2]\n"
          "  --batch LIST       sequences per call [1; state_update and conv_update 1,256;\n"
          "                     ssd_update 1,32]; the update ops ignore --seqlen\n"
          "  --head-dim LIST    attention variants [attn 128,64; attn_decode 128]\n"
          "  --dtype T          bf16, f16 or f32 [bf16]\n"
          "  --non-causal       attention prefill without the causal mask\n"
          "  --repeats N        timed repeats [10]\n"
          "  --warmup N         untimed calls before them, at least 1 [3]\n"
          "  --row-budget S     fewer repeats (at least 3) when they would take longer\n"
          "                     than S seconds [5]\n"
          "  --max-call S       skip a length whose time per call, predicted from the\n"
          "                     previous length, exceeds S seconds; 0 = never [2]\n"
          "  --no-check         no comparison with the cpu backend\n"
          "  --seed N           input values [0]\n"
          "  --device N         CUDA device [0]\n"
          "  -o, --output FILE  also write the rows to FILE (HDF5)\n"
          "  --overwrite        replace FILE (and its journal) when it exists\n"
          "\n"
          "Columns: time per call in ms (median, p10, p90); %%roof = roofline time /\n"
          "median (the roofline is the largest of tensor-core FLOPs / GEMM ceiling for\n"
          "attention, SSD and GEMM, bytes / copy ceiling, exponentials / exp ceiling);\n"
          "bound = its largest term (tc, mem, sfu). Rows that run out of memory are\n"
          "status oom, lengths skipped by --max-call status skipped; the sweep goes on.\n"
          "\n"
          "Exit status: 0 ok (oom and skipped rows included), 1 error (no CUDA device,\n"
          "a failing kernel, elements outside tolerance), 2 usage error.\n");
}

typedef struct args {
  sf_kbench_sel sel[SF_KB_OP_COUNT];
  int n_sel;
  int64_t lens[MAX_LENS];
  int n_lens;
  int64_t batches[MAX_BATCHES];
  int n_batches;
  int64_t hds[MAX_HD];
  int n_hds;
  sf_dtype dtype;
  int non_causal, overwrite, device;
  double max_call;
  sf_kbench_opts opts;
  const char *output;
} args;

static int usage_error(const char *msg) {
  fprintf(stderr, PROG ": %s (scanflash kernels --help)\n", msg);
  return SF_EXIT_USAGE;
}

static int parse_int(const char *s, const char *what, int64_t lo, int64_t hi, int64_t *out) {
  sf_error e;
  sf_error_clear(&e);
  if (sf_parse_count(s, what, out, &e) != SF_OK) return usage_error(e.msg);
  if (*out < lo || *out > hi) {
    char m[160];
    snprintf(m, sizeof m, "%s: %s is outside [%lld, %lld]", what, s, (long long)lo, (long long)hi);
    return usage_error(m);
  }
  return 0;
}

static int parse_seconds(const char *s, const char *what, double *out) {
  sf_error e;
  sf_error_clear(&e);
  if (sf_parse_double(s, what, out, &e) != SF_OK) return usage_error(e.msg);
  if (!(*out >= 0) || isinf(*out)) {
    char m[160];
    snprintf(m, sizeof m, "%s: '%s' must be a number of seconds >= 0", what, s);
    return usage_error(m);
  }
  return 0;
}

static int parse_args(int argc, char **argv, args *a) {
  enum { O_OP = 256, O_SEQLEN, O_BATCH, O_HD, O_DTYPE, O_NC, O_REP, O_WARM, O_BUDGET, O_MAXCALL, O_NOCHECK,
         O_SEED, O_DEVICE, O_OVERWRITE };
  static const struct option opts[] = {
      {"op", required_argument, 0, O_OP},          {"seqlen", required_argument, 0, O_SEQLEN},
      {"batch", required_argument, 0, O_BATCH},    {"head-dim", required_argument, 0, O_HD},
      {"dtype", required_argument, 0, O_DTYPE},    {"non-causal", no_argument, 0, O_NC},
      {"repeats", required_argument, 0, O_REP},    {"warmup", required_argument, 0, O_WARM},
      {"row-budget", required_argument, 0, O_BUDGET}, {"max-call", required_argument, 0, O_MAXCALL},
      {"no-check", no_argument, 0, O_NOCHECK},     {"seed", required_argument, 0, O_SEED},
      {"device", required_argument, 0, O_DEVICE},  {"output", required_argument, 0, 'o'},
      {"overwrite", no_argument, 0, O_OVERWRITE},  {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  memset(a, 0, sizeof *a);
  a->dtype = SF_BF16;
  a->max_call = 2.0;
  sf_kbench_opts_default(&a->opts);
  const char *op_list = "all", *len_list = "512:1M:x2";
  sf_error e;
  sf_error_clear(&e);
  int c, rc;
  int64_t v;
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    switch (c) {
      case O_OP: op_list = optarg; break;
      case O_SEQLEN: len_list = optarg; break;
      case O_BATCH:
        if (sf_kbench_parse_counts(optarg, "--batch", a->batches, MAX_BATCHES, &a->n_batches, &e) != SF_OK)
          return usage_error(e.msg);
        for (int i = 0; i < a->n_batches; i++)
          if (a->batches[i] > 65535) return usage_error("--batch: at most 65535 sequences");
        break;
      case O_HD:
        if (sf_kbench_parse_counts(optarg, "--head-dim", a->hds, MAX_HD, &a->n_hds, &e) != SF_OK)
          return usage_error(e.msg);
        break;
      case O_DTYPE:
        if (sf_kbench_parse_dtype(optarg, &a->dtype, &e) != SF_OK) return usage_error(e.msg);
        break;
      case O_NC: a->non_causal = 1; break;
      case O_REP:
        if ((rc = parse_int(optarg, "--repeats", 1, 100000, &v))) return rc;
        a->opts.repeats = (int)v;
        break;
      case O_WARM:
        if ((rc = parse_int(optarg, "--warmup", 1, 100000, &v))) return rc;
        a->opts.warmup = (int)v;
        break;
      case O_BUDGET:
        if ((rc = parse_seconds(optarg, "--row-budget", &a->opts.row_budget_s))) return rc;
        break;
      case O_MAXCALL:
        if ((rc = parse_seconds(optarg, "--max-call", &a->max_call))) return rc;
        break;
      case O_NOCHECK: a->opts.check = 0; break;
      case O_SEED: {
        uint64_t s;
        if (sf_parse_u64(optarg, "--seed", &s, &e) != SF_OK) return usage_error(e.msg);
        a->opts.seed = s;
        break;
      }
      case O_DEVICE:
        if ((rc = parse_int(optarg, "--device", 0, 1023, &v))) return rc;
        a->device = (int)v;
        break;
      case 'o': a->output = optarg; break;
      case O_OVERWRITE: a->overwrite = 1; break;
      case 'h': usage(stdout); return -1;
      case ':':
      case '?':
      default: {
        char m[200];
        const char *bad = argv[optind - 1];
        int needs_arg = 0;
        for (const struct option *o = opts; o->name; o++)
          if (o->has_arg && bad[0] == '-' && bad[1] == '-' && !strcmp(bad + 2, o->name)) needs_arg = 1;
        if (needs_arg || optopt == 'o') snprintf(m, sizeof m, "%s needs a value", bad);
        else snprintf(m, sizeof m, "unknown option '%s'", bad);
        return usage_error(m);
      }
    }
  }
  if (optind < argc) {
    char m[200];
    snprintf(m, sizeof m, "unexpected argument '%s'", argv[optind]);
    return usage_error(m);
  }
  if (sf_kbench_parse_ops(op_list, a->sel, SF_KB_OP_COUNT, &a->n_sel, &e) != SF_OK) return usage_error(e.msg);
  if (sf_kbench_parse_counts(len_list, "--seqlen", a->lens, MAX_LENS, &a->n_lens, &e) != SF_OK)
    return usage_error(e.msg);
  for (int i = 0; i < a->n_lens; i++)
    if (a->lens[i] > ((int64_t)1 << 31) - 1) return usage_error("--seqlen: at most 2^31 - 1 tokens");
  for (int i = 0; i < a->n_hds; i++)
    if (a->hds[i] > 256) return usage_error("--head-dim: at most 256");
  return 0;
}

/* ---- the sweep's shapes ------------------------------------------------------------ */

typedef struct plan_row {
  sf_kbench_shape s;
  int group;                 /* rows of one (op, impl, variant, batch): the --max-call prediction chain */
} plan_row;

static int build_plan(const args *a, plan_row **out, int *n_out) {
  int cap = 64, n = 0, group = 0;
  plan_row *rows = malloc((size_t)cap * sizeof *rows);
  if (!rows) return usage_error("out of memory");
  sf_error e;
  sf_error_clear(&e);
  for (int i = 0; i < a->n_sel; i++) {
    const sf_kbench_op op = a->sel[i].op;
    const sf_kbench_opinfo *oi = sf_kbench_op_info(op);
    const int attn = op == SF_KB_ATTN || op == SF_KB_ATTN_DECODE;
    int64_t hd_def[2] = {128, 64};
    const int64_t *hds = a->n_hds ? a->hds : hd_def;
    const int n_hd = attn ? (a->n_hds ? a->n_hds : (op == SF_KB_ATTN ? 2 : 1)) : 1;
    int64_t b_def[2] = {1, op == SF_KB_SSD_UPDATE ? 32 : 256};
    const int64_t *bs = a->n_batches ? a->batches : b_def;
    const int n_b = a->n_batches ? a->n_batches : (oi->per_token ? 1 : 2);
    const int n_l = oi->per_token ? a->n_lens : 1;
    for (int h = 0; h < n_hd; h++)
      for (int impl = 0; impl < oi->n_impls; impl++) {
        if (!(a->sel[i].impl_mask & (1u << impl))) continue;
        for (int b = 0; b < n_b; b++, group++)
          for (int l = 0; l < n_l; l++) {
            if (n == cap) {
              cap *= 2;
              plan_row *p = realloc(rows, (size_t)cap * sizeof *p);
              if (!p) {
                free(rows);
                return usage_error("out of memory");
              }
              rows = p;
            }
            plan_row *r = &rows[n];
            if (sf_kbench_default_shape(op, impl, a->dtype, oi->per_token ? a->lens[l] : 1, (int32_t)bs[b],
                                        attn ? (int32_t)hds[h] : 0, &r->s, &e) != SF_OK) {
              free(rows);
              return usage_error(e.msg);
            }
            if (op == SF_KB_ATTN && a->non_causal) r->s.causal = 0;
            r->group = group;
            n++;
          }
      }
  }
  *out = rows;
  *n_out = n;
  return 0;
}

/* ---- output ------------------------------------------------------------------------- */

static void fmt(char *buf, size_t cap, const char *f, double v) {
  if (isnan(v)) snprintf(buf, cap, "-");
  else snprintf(buf, cap, f, v);
}

static void print_header(void) {
  printf("#%-22s %-8s %-5s %-36s %11s %11s %11s %8s %8s %6s %-5s %7s %11s  %s\n", " op", "impl", "dtype", "shape",
         "time_ms", "p10_ms", "p90_ms", "TFLOP/s", "GB/s", "%roof", "bound", "#wrong", "max_rel_err", "status");
}

static void print_row(const sf_kbench_shape *s, const sf_kernel_result *r, const sf_kbench_info *in) {
  char sh[128], t[16], p1[16], p9[16], tf[16], gb[16], pr[16], mr[16], nw[24];
  sf_kbench_shape_str(s, sh, sizeof sh);
  fmt(t, sizeof t, "%11.4f", r->median_s * 1e3);
  fmt(p1, sizeof p1, "%11.4f", r->p10_s * 1e3);
  fmt(p9, sizeof p9, "%11.4f", r->p90_s * 1e3);
  fmt(tf, sizeof tf, "%8.2f", r->tflops);
  fmt(gb, sizeof gb, "%8.1f", r->gbps);
  fmt(pr, sizeof pr, "%6.1f", in->pct_roof);
  fmt(mr, sizeof mr, "%11.2e", r->max_rel_err);
  if (in->checked) snprintf(nw, sizeof nw, "%lld", (long long)r->n_wrong);
  else snprintf(nw, sizeof nw, "-");
  printf(" %-22s %-8s %-5s %-36s %11s %11s %11s %8s %8s %6s %-5s %7s %11s  %s", r->op, r->impl, r->dtype, sh, t, p1,
         p9, tf, gb, pr, in->status == SF_STATUS_OK ? in->bound : "-", nw, mr, sf_item_status_name(in->status));
  if (in->status != SF_STATUS_OK && in->message[0]) printf(": %s", in->message);
  printf("\n");
  fflush(stdout);
}

/* The row as a kernels work item with its result (/items). */
static void make_item(const args *a, const sf_kbench_shape *s, int index, const sf_kernel_result *r,
                      const sf_kbench_info *in, const sf_kbench_ctx *ctx, const char *host, sf_work_item *w,
                      sf_item_result *res) {
  const sf_kbench_opinfo *oi = sf_kbench_op_info(s->op);
  char sh[128], canon[512], hex[65];
  sf_kbench_shape_str(s, sh, sizeof sh);
  snprintf(canon, sizeof canon, "scanflash-kernels|%s|%s|%s|%s|%s", r->op, r->impl, r->dtype, sh, s->model);
  sf_sha256_hex(canon, strlen(canon), hex);
  memset(w, 0, sizeof *w);
  memcpy(w->key, hex, SF_KEY_LEN - 1);
  w->index = index;
  w->kind = SF_ITEM_KERNELS;
  snprintf(w->arch, sizeof w->arch, "%s", sf_arch_name(s->arch));
  snprintf(w->model, sizeof w->model, "%s", s->model);
  w->model_index = -1;
  snprintf(w->op, sizeof w->op, "%s", oi->table_names[s->impl]);
  snprintf(w->dtype, sizeof w->dtype, "%s", r->dtype);
  w->context = s->seqlen;
  w->batch = s->batch;
  w->gen = 0;
  w->first_problem = -1;
  w->repeats = in->repeats ? in->repeats : a->opts.repeats;
  w->warmup = in->warmup ? in->warmup : a->opts.warmup;
  w->gpus = 1;
  w->seed = a->opts.seed;

  memset(res, 0, sizeof *res);
  memcpy(res->key, w->key, SF_KEY_LEN);
  res->status = in->status;
  snprintf(res->message, sizeof res->message, "%s", in->message);
  res->rank = 0;
  res->device = ctx->dev.index;
  snprintf(res->host, sizeof res->host, "%s", host);
  res->t_start = in->t_start;
  res->t_end = in->t_end;
  res->ttft_s = res->prefill_tok_s = res->decode_tok_s = res->e2e_tok_s = NAN;
  res->tpot_p50_s = res->tpot_p90_s = res->tpot_p99_s = res->prefill_cv = NAN;
  res->energy_j = res->j_per_token = NAN;
  res->sm_clock_mhz = ctx->dev.sm_clock_mhz;
  res->mem_clock_mhz = ctx->dev.mem_clock_mhz;
  res->ref_max_rel_err = in->checked ? r->max_rel_err : NAN;
}

static void device_row(const sf_kbench_ctx *ctx, const char *host, sf_results_device *d) {
  memset(d, 0, sizeof *d);
  d->rank = 0;
  d->device = ctx->dev.index;
  snprintf(d->host, sizeof d->host, "%s", host);
  snprintf(d->backend, sizeof d->backend, "cuda");
  snprintf(d->name, sizeof d->name, "%s", ctx->dev.name);
  snprintf(d->uuid, sizeof d->uuid, "%s", ctx->dev.uuid);
  d->cc_major = ctx->dev.cc_major, d->cc_minor = ctx->dev.cc_minor;
  d->sm_count = ctx->dev.sm_count;
  d->sm_clock_mhz = ctx->dev.sm_clock_mhz, d->mem_clock_mhz = ctx->dev.mem_clock_mhz;
  d->mem_bus_width_bits = ctx->dev.mem_bus_width_bits;
  d->memory_bytes = ctx->dev.memory_bytes, d->l2_bytes = ctx->dev.l2_bytes;
  d->driver_version = ctx->dev.driver_version, d->runtime_version = ctx->dev.runtime_version;
}

static char *join_args(int argc, char **argv) {
  size_t n = strlen("scanflash") + 1;
  for (int i = 0; i < argc; i++) n += strlen(argv[i]) + 1;
  char *s = malloc(n + 1);
  if (!s) return NULL;
  strcpy(s, "scanflash");
  for (int i = 0; i < argc; i++) strcat(strcat(s, " "), argv[i]);
  return s;
}

int cmd_kernels(int argc, char **argv) {
  args a;
  int rc = parse_args(argc, argv, &a);
  if (rc < 0) return SF_EXIT_OK; /* --help */
  if (rc) return rc;
  plan_row *plan = NULL;
  int n_plan = 0;
  if ((rc = build_plan(&a, &plan, &n_plan))) return rc;

  sf_error err;
  sf_error_clear(&err);
  sf_kbench_ctx ctx;
  if (sf_kbench_ctx_init(&ctx, a.device, &err) != SF_OK) {
    fprintf(stderr, PROG ": %s\n", err.msg);
    free(plan);
    return SF_EXIT_FAILURE;
  }
  char host[SF_HOST_LEN] = "";
  if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "unknown");

  sf_results *res = NULL;
  int code = SF_EXIT_OK;
  if (a.output) {
    char *spec = join_args(argc, argv);
    sf_results_provenance prov;
    memset(&prov, 0, sizeof prov);
    prov.spec_text = spec ? spec : "scanflash kernels";
    prov.world_size = 1;
    sf_results_device dr;
    device_row(&ctx, host, &dr);
    sf_status st = sf_results_open(a.output, &prov, SF_RESULTS_CREATE, a.overwrite ? SF_RESULTS_OVERWRITE : 0, &res,
                                   &err);
    free(spec);
    if (st == SF_OK) st = sf_results_write_devices(res, &dr, 1, &err);
    if (st != SF_OK) {
      fprintf(stderr, PROG ": %s\n", err.msg);
      if (res) sf_results_abort(res);
      sf_kbench_ctx_destroy(&ctx);
      free(plan);
      return SF_EXIT_FAILURE;
    }
  }

  const sf_kbench_ceilings *ceil = NULL;
  if (sf_kbench_ceilings_get(&ctx, &ceil, &err) != SF_OK) {
    fprintf(stderr, PROG ": %s\n", err.msg);
    if (res) sf_results_abort(res);
    sf_kbench_ctx_destroy(&ctx);
    free(plan);
    return SF_EXIT_FAILURE;
  }
  printf("# scanflash kernels: device %d %s (%s, sm_%d%d, %d SMs, %d MHz, %.1f GiB, L2 %.0f MiB)\n", ctx.dev.index,
         ctx.dev.name, ctx.dev.uuid, ctx.dev.cc_major, ctx.dev.cc_minor, ctx.dev.sm_count, ctx.dev.sm_clock_mhz,
         (double)ctx.dev.memory_bytes / 1073741824.0, (double)ctx.dev.l2_bytes / 1048576.0);
  printf("# ceilings: bf16 GEMM 8192^3 (cuBLASLt) %.1f TFLOP/s (%.3f ms); device-to-device copy of %.2f GiB "
         "%.1f GB/s read+write (%.3f ms); exp (MUFU.EX2) %.3g /s\n",
         ceil->gemm_tflops, ceil->gemm_s * 1e3, (double)ceil->copy_bytes / 1073741824.0, ceil->copy_gbps,
         ceil->copy_s * 1e3, ceil->exp_per_s);
  printf("# %s, %d repeats after %d warm-ups (fewer past %.3g s a row), L2 flushed before each call%s; "
         "lengths predicted above %.3g s a call skipped\n",
         sf_dtype_name(a.dtype), a.opts.repeats, a.opts.warmup, a.opts.row_budget_s,
         a.opts.check ? ", checked against the cpu backend on a reduced problem" : "", a.max_call);
  print_header();

  int n_ok = 0, n_oom = 0, n_skip = 0, n_err = 0, n_bad = 0, last_group = -1;
  sf_kbench_shape prev;
  double prev_s = 0;
  int have_prev = 0;
  for (int i = 0; i < n_plan; i++) {
    const sf_kbench_shape *s = &plan[i].s;
    if (plan[i].group != last_group) have_prev = 0, last_group = plan[i].group;
    sf_kernel_result row;
    sf_kbench_info info;
    if (have_prev && a.max_call > 0 && sf_kbench_predict_s(&prev, prev_s, s) > a.max_call) {
      sf_kbench_row_init(s, &row);
      memset(&info, 0, sizeof info);
      info.status = SF_STATUS_SKIPPED;
      info.pct_roof = NAN;
      info.bound = "-";
      snprintf(info.message, sizeof info.message, "predicted %.3g s a call (from %.3g s at the previous length) > --max-call %.3g",
               sf_kbench_predict_s(&prev, prev_s, s), prev_s, a.max_call);
      info.t_start = info.t_end = (double)time(NULL);
    } else if (sf_kbench_run(&ctx, s, &a.opts, &row, &info, &err) != SF_OK) {
      fprintf(stderr, PROG ": %s\n", err.msg);
      code = SF_EXIT_FAILURE;
      break;
    }
    if (info.status == SF_STATUS_OK) {
      prev = *s, prev_s = row.median_s, have_prev = 1;
      n_ok++;
      if (info.checked && row.n_wrong > 0) n_bad++;
    } else if (info.status == SF_STATUS_OOM) n_oom++;
    else if (info.status == SF_STATUS_SKIPPED) n_skip++;
    else n_err++;
    print_row(s, &row, &info);
    if (res) {
      sf_work_item w;
      sf_item_result ir;
      make_item(&a, s, i, &row, &info, &ctx, host, &w, &ir);
      memcpy(row.key, w.key, SF_KEY_LEN);
      if (sf_results_write_item(res, &w, &ir, NULL, 0, NULL, 0, &row, 1, &err) != SF_OK) {
        fprintf(stderr, PROG ": %s\n", err.msg);
        code = SF_EXIT_FAILURE;
        break;
      }
    }
  }
  if (res) {
    if (code == SF_EXIT_OK) {
      if (sf_results_close(res, &err) != SF_OK) {
        fprintf(stderr, PROG ": %s\n", err.msg);
        code = SF_EXIT_FAILURE;
      }
    } else {
      sf_results_abort(res);
    }
  }
  if (code == SF_EXIT_OK) {
    printf("# %d rows: %d ok, %d oom, %d skipped, %d error%s; %d with elements outside tolerance%s%s\n", n_plan, n_ok,
           n_oom, n_skip, n_err, n_err == 1 ? "" : "s", n_bad, a.output ? "; written to " : "",
           a.output ? a.output : "");
    if (n_err || n_bad) {
      fprintf(stderr, PROG ": %d row%s failed, %d with elements outside tolerance\n", n_err, n_err == 1 ? "" : "s",
              n_bad);
      code = SF_EXIT_FAILURE;
    }
  }
  sf_kbench_ctx_destroy(&ctx);
  free(plan);
  return code;
}
