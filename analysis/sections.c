/* The report's outline: which sections, in which order, with which
 * paragraphs, tables and plots (DESIGN "Analysis"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

static void pairs_para(rp_report *r) {
  const rp_cmp *c = r->cmp;
  if (!c->n_pairs) {
    rp_doc_para(&r->doc, "No Mamba / Transformer pairs: the comparison needs both architectures in the results.");
    return;
  }
  char lines[4096];
  size_t len = 0;
  for (int i = 0; i < c->n_pairs && len < sizeof lines; i++)
    len += (size_t)snprintf(lines + len, sizeof lines - len, "%s %s is compared with transformer %s\n",
                            c->pairs[i].mamba_arch, c->pairs[i].mamba_model, c->pairs[i].tf_model);
  rp_doc_para(&r->doc,
              "Each Mamba model is paired with the Transformer model nearest in size (parameter count from the "
              "preset name, else weights bytes), at the same dtype, context, batch and generation length. "
              "Ratios are medians of Mamba's throughput over the Transformer's, with 95%% percentile-bootstrap "
              "intervals (%d resamples of each side's repeats).",
              r->opt->bootstrap);
  rp_doc_list(&r->doc, lines);
}

sf_status rp_build_doc(rp_report *r, sf_error *err) {
  rp_doc *d = &r->doc;
  const rp_agg *a = r->agg;
  snprintf(d->title, sizeof d->title, "scanflash report: Mamba vs Transformer inference throughput");

  rp_doc_section(d, "Summary", "summary");
  char *sum = rp_summary(r, 6);
  if (sum) {
    rp_doc_pre(d, sum);
    free(sum);
  }
  rp_doc_para(d,
              "Every metric is the median over the timed repeats of every problem in its cell (architecture, "
              "model, dtype, context, batch, generation length), with a 95%% percentile-bootstrap interval "
              "(%d resamples, seed %llu: the numbers are the same on every run). Items that did not finish "
              "(OOM, predicted OOM, failed, timed out, interrupted, skipped) are counted in every table and "
              "marked in the plots.",
              r->opt->bootstrap, (unsigned long long)r->opt->seed);

  rp_doc_section(d, "Notes", "notes");
  rp_doc_notes(d);

  rp_doc_section(d, "Inputs", "inputs");
  rp_table_inputs(r);
  rp_table_devices(r);

  rp_doc_section(d, "Items that did not finish", "status");
  int64_t bad = 0, total = 0;
  for (int s = 0; s < RP_NSTATUS; s++) {
    total += a->n_status[s];
    if (s != SF_STATUS_OK) bad += a->n_status[s];
  }
  if (bad) {
    char line[512];
    size_t len = 0;
    for (int s = 1; s < RP_NSTATUS; s++)
      if (a->n_status[s])
        len += (size_t)snprintf(line + len, sizeof line - len, "%s%lld %s", len ? ", " : "", (long long)a->n_status[s],
                                rp_status_name(s));
    rp_doc_para(d, "%lld of %lld items are not ok: %s.", (long long)bad, (long long)total, line);
    rp_table_failures(r);
  } else {
    rp_doc_para(d, "All %lld items are ok.", (long long)total);
  }

  rp_doc_section(d, "Throughput", "throughput");
  if (a->n_cells) {
    rp_table_throughput(r);
    for (int k = 0; k < RP_NCMP; k++) rp_plots_throughput(r, k);
  } else {
    rp_doc_para(d, "No generate or prefill items in the results.");
  }

  rp_doc_section(d, "Mamba vs Transformer", "speedup");
  pairs_para(r);
  if (r->cmp->n_speedups) {
    rp_table_crossover(r);
    rp_table_speedup(r);
    for (int k = 0; k < RP_NCMP; k++) rp_plots_speedup(r, k);
  }

  rp_doc_section(d, "Prefill scaling", "scaling");
  if (r->cmp->n_scaling) {
    rp_doc_para(d,
                "Per (architecture, model, dtype, batch): the median prefill time (TTFT) at each context, pooled over "
                "generation lengths, fitted as log t = c + k log L by least squares (GSL). The interval is the "
                "slope's 95%% interval from Student's t with n − 2 degrees of freedom (none with 2 contexts). "
                "Attention's prefill tends to k → 2 at long contexts and a scan's to k = 1; the upper-half fit "
                "shows the long-context end.");
    rp_table_scaling(r);
    rp_plot_scaling(r);
  } else {
    rp_doc_para(d, "Not enough contexts (at least two per model and batch) for a fit.");
  }

  rp_doc_section(d, "Decode latency", "decode");
  rp_table_latency(r);
  if (a->n_curves) {
    rp_doc_para(d, "Decode step latency against the step's position (tokens in the cache), from /decode_steps, in "
                   "up to %d equal-width position bins per cell: median and p10–p90 of the steps in each bin. "
                   "A Transformer's step reads the whole KV cache and slows down with position; a Mamba step "
                   "does not.",
                r->opt->bins);
    rp_table_decode(r);
    rp_plot_decode(r);
  } else {
    rp_doc_para(d, "No decode steps in the results.");
  }

  rp_doc_section(d, "Memory", "memory");
  if (a->n_cells) {
    rp_table_memory(r);
    rp_plot_memory(r);
    rp_table_maxbatch(r);
    rp_plot_maxbatch(r);
  }

  rp_doc_section(d, "Energy", "energy");
  if (a->have_energy) {
    rp_table_energy(r);
    rp_plot_energy(r);
  } else {
    rp_doc_para(d, "No energy measurements (NVML unavailable, or CPU runs): J/token is missing for every item.");
    rp_table_energy(r);
    if (d->n_tables) d->tables[d->n_tables - 1]->csv_only = 1;
  }

  rp_doc_section(d, "Kernels", "kernels");
  if (a->n_kernels) {
    rp_table_kernels(r);
    rp_plot_kernels(r);
  } else {
    rp_doc_para(d, "No kernel benchmarks in the results.");
  }
  if (a->n_kernel_items) {
    int64_t bad_k = a->n_kernel_items_bad;
    if (bad_k)
      rp_doc_para(d, "%lld of %lld kernels items did not finish; they are listed under “Items that did not finish”.",
                  (long long)bad_k, (long long)a->n_kernel_items);
  }

  if (r->bagg) {
    rp_doc_section(d, "Against the baseline", "baseline");
    rp_doc_para(d, "Per cell, this run's throughput divided by the baseline's (> 1: faster now), with 95%% bootstrap "
                   "intervals; FASTER / SLOWER where the interval excludes 1.");
    rp_table_baseline(r);
  }
  (void)err;
  return SF_OK;
}
