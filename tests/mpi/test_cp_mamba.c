/* Context-parallel Mamba prefill on the cpu backend over MPI (run under
 * mpirun with k ranks): a two-layer stack of conv1d + selective_scan
 * (Mamba-1) and of conv1d + ssd (Mamba-2), the sequence cut into k
 * contiguous pieces (sf_cp_piece), states passed rank to rank per layer
 * (sf_cp_mamba_layer_begin / _end, the wavefront). Every rank's outputs of
 * every layer equal the one-rank run at the same tokens, and the last
 * rank's final conv and SSM states equal the one-rank final states. Layer 2
 * reads layer 1's output, as in a model. Lengths: not divisible by k,
 * shorter than d_conv-1 per piece, and below k (empty pieces). */
#include "cp_test_util.h"
#include "parallel/cp_mamba.h"
#include "parallel/cp_shard.h"

enum { MAX_BATCH = 3, LAYERS = 2, WIDTH = 4 };

/* One mixer: Mamba-1 (dim channels, d_state N) or Mamba-2 (H heads of P,
 * G groups, d_state N). Per-token inputs other than the layer's input x sit
 * in one row of F floats per layer:
 *   Mamba-1: [delta dim | B N | C N | z dim]
 *   Mamba-2: [B G*N | C G*N | dt H | z H*P]  (conv input = [x | B | C]) */
typedef struct mixer {
  const char *name;
  int mamba2;
  int32_t batch;
  int64_t len[MAX_BATCH];
  int64_t dim, N, H, P, G;   /* dim: Mamba-1 channels; Mamba-2 uses H, P, G */
  int32_t chunk;
} mixer;

static const mixer mixers[] = {
    {"mamba1: batch 2, L 37+3", 0, 2, {37, 3}, 8, 4, 0, 0, 0, 8},
    {"mamba1: batch 1, L 6", 0, 1, {6}, 5, 3, 0, 0, 0, 4},
    {"mamba2: batch 2, L 45+2, 2 groups", 1, 2, {45, 2}, 0, 8, 4, 4, 2, 8},
    {"mamba2: batch 3, L 20+7+1", 1, 3, {20, 7, 1}, 0, 4, 2, 4, 1, 4},
};

static int64_t x_width(const mixer *m) { return m->mamba2 ? m->H * m->P : m->dim; }
static int64_t conv_dim(const mixer *m) { return m->mamba2 ? m->H * m->P + 2 * m->G * m->N : m->dim; }
static int64_t tok_width(const mixer *m) {
  return m->mamba2 ? 2 * m->G * m->N + m->H + m->H * m->P : 2 * m->dim + 2 * m->N;
}
static int64_t ssm_size(const mixer *m) { return m->mamba2 ? m->H * m->P * m->N : m->dim * m->N; }
static int64_t conv_size(const mixer *m) { return conv_dim(m) * (WIDTH - 1); }

/* Per-layer weights, the same on every rank. */
typedef struct weights {
  float *conv_w, *conv_b;    /* [conv_dim][WIDTH], [conv_dim] */
  float *A, *D, *dt_bias;    /* Mamba-1: [dim][N], [dim], [dim]; Mamba-2: [H] each */
} weights;

/* One run (whole batch on one rank, or this rank's pieces): rows of x and
 * tok, states per layer, outputs per layer. */
typedef struct run {
  sf_seqs seqs;
  int64_t rows;
  float *x0;                 /* [rows][x_width] layer 1's input */
  float *tok[LAYERS];        /* [rows][tok_width] */
  float *y[LAYERS];          /* [rows][x_width] */
  float *conv[LAYERS], *ssm[LAYERS];   /* [batch][...] final states */
  float *xbc, *u;            /* scratch: conv input (Mamba-2), conv output */
} run;

static void make_weights(cp_env *e, const mixer *m, weights *w) {
  const int64_t cd = conv_dim(m), na = m->mamba2 ? m->H : m->dim * m->N, nd = m->mamba2 ? m->H : m->dim;
  w->conv_w = FALLOC(cd * WIDTH), w->conv_b = FALLOC(cd);
  w->A = FALLOC(na), w->D = FALLOC(nd), w->dt_bias = FALLOC(nd);
  fill_normal(e, w->conv_w, cd * WIDTH, 0.5f);
  fill_normal(e, w->conv_b, cd, 0.1f);
  fill_normal(e, w->A, na, 0.5f);
  for (int64_t i = 0; i < na; i++) w->A[i] = -expf(w->A[i]); /* A = -exp(A_log): decaying */
  fill_normal(e, w->D, nd, 1.0f);
  fill_normal(e, w->dt_bias, nd, 0.5f);
}

static void free_weights(weights *w) { free(w->conv_w), free(w->conv_b), free(w->A), free(w->D), free(w->dt_bias); }

/* conv1d then the scan of one layer over r's rows, states in r. */
static void layer(cp_env *e, const mixer *m, const weights *w, run *r, int l, const float *x, int has_init) {
  sf_error err;
  const int64_t xw = x_width(m), cd = conv_dim(m), tw = tok_width(m);
  const float *tok = r->tok[l];
  const float *conv_in = x;
  if (m->mamba2) { /* [x | B | C] rows */
    for (int64_t i = 0; i < r->rows; i++) {
      memcpy(r->xbc + i * cd, x + i * xw, (size_t)xw * sizeof(float));
      memcpy(r->xbc + i * cd + xw, tok + i * tw, (size_t)(2 * m->G * m->N) * sizeof(float));
    }
    conv_in = r->xbc;
  }
  sf_conv1d_params cv = {.dtype = SF_F32, .dim = cd, .width = WIDTH, .silu = 1, .seqs = r->seqs,
                         .x = conv_in, .x_token_stride = cd, .weight = w->conv_w, .bias = w->conv_b,
                         .conv_state = r->conv[l], .state_batch_stride = conv_size(m),
                         .has_initial_state = has_init, .out = r->u, .out_token_stride = cd};
  cp_ok(e, sf_ops_cpu.conv1d(&e->ctx, &cv, &err), &err, "conv1d");
  if (!m->mamba2) {
    sf_selective_scan_params sc = {
        .dtype = SF_F32, .dim = m->dim, .d_state = (int32_t)m->N, .chunk_size = m->chunk, .seqs = r->seqs,
        .u = r->u, .u_token_stride = cd, .delta = tok, .delta_token_stride = tw, .delta_bias = w->dt_bias,
        .delta_softplus = 1, .A = w->A, .B = tok + m->dim, .B_token_stride = tw,
        .C = tok + m->dim + m->N, .C_token_stride = tw, .D = w->D, .z = tok + m->dim + 2 * m->N,
        .z_token_stride = tw, .state = r->ssm[l], .state_batch_stride = ssm_size(m),
        .has_initial_state = has_init, .out = r->y[l], .out_token_stride = xw};
    cp_ok(e, sf_ops_cpu.selective_scan(&e->ctx, &sc, &err), &err, "selective_scan");
  } else {
    const int64_t GN = m->G * m->N;
    sf_ssd_params sc = {
        .dtype = SF_F32, .n_heads = (int32_t)m->H, .head_dim = (int32_t)m->P, .n_groups = (int32_t)m->G,
        .d_state = (int32_t)m->N, .chunk_size = m->chunk, .seqs = r->seqs, .x = r->u, .x_token_stride = cd,
        .dt = tok + 2 * GN, .dt_token_stride = tw, .dt_bias = w->dt_bias, .dt_softplus = 1,
        .dt_min = 0.0f, .dt_max = INFINITY, .A = w->A, .B = r->u + xw, .B_token_stride = cd,
        .C = r->u + xw + GN, .C_token_stride = cd, .D = w->D, .z = tok + 2 * GN + m->H,
        .z_token_stride = tw, .state = r->ssm[l], .state_batch_stride = ssm_size(m),
        .has_initial_state = has_init, .out = r->y[l], .out_token_stride = xw};
    cp_ok(e, sf_ops_cpu.ssd(&e->ctx, &sc, &err), &err, "ssd");
  }
}

/* The stack; with cp, each layer between the state hand-overs. */
static void run_stack(cp_env *e, const mixer *m, const weights *w, run *r, int cp) {
  sf_error err;
  for (int l = 0; l < LAYERS; l++) {
    const sf_cp_mamba_state st = {.conv = r->conv[l], .conv_bytes = (size_t)(m->batch * conv_size(m)) * sizeof(float),
                                  .ssm = r->ssm[l], .ssm_bytes = (size_t)(m->batch * ssm_size(m)) * sizeof(float)};
    int has_init = 0;
    if (cp && !cp_ok(e, sf_cp_mamba_layer_begin(e->t, &st, 0, &has_init, &err), &err, "layer_begin")) return;
    layer(e, m, w, r, l, l == 0 ? r->x0 : r->y[l - 1], has_init);
    if (cp && !cp_ok(e, sf_cp_mamba_layer_end(e->t, &st, &err), &err, "layer_end")) return;
  }
}

static void alloc_run(const mixer *m, run *r, int64_t rows, int64_t *start, int32_t *len) {
  int64_t max_len = 0;
  for (int32_t b = 0; b < m->batch; b++) max_len = len[b] > max_len ? len[b] : max_len;
  r->seqs = (sf_seqs){.batch = m->batch, .max_len = max_len, .start = start, .len = len};
  r->rows = rows;
  r->x0 = FALLOC(rows * x_width(m));
  r->xbc = FALLOC(rows * conv_dim(m));
  r->u = FALLOC(rows * conv_dim(m));
  for (int l = 0; l < LAYERS; l++) {
    r->tok[l] = FALLOC(rows * tok_width(m));
    r->y[l] = FALLOC(rows * x_width(m));
    fill_nan(r->y[l], rows * x_width(m));
    r->conv[l] = FALLOC(m->batch * conv_size(m));
    r->ssm[l] = FALLOC(m->batch * ssm_size(m));
    fill_nan(r->conv[l], m->batch * conv_size(m));
    fill_nan(r->ssm[l], m->batch * ssm_size(m));
  }
}

static void free_run(run *r) {
  free(r->x0), free(r->xbc), free(r->u);
  for (int l = 0; l < LAYERS; l++) free(r->tok[l]), free(r->y[l]), free(r->conv[l]), free(r->ssm[l]);
}

static void test_mixer(cp_env *e, const mixer *m) {
  weights w[LAYERS];
  for (int l = 0; l < LAYERS; l++) make_weights(e, m, &w[l]);
  /* The whole batch, packed. */
  int64_t gstart[MAX_BATCH], T = 0;
  int32_t glen[MAX_BATCH];
  for (int32_t b = 0; b < m->batch; b++) gstart[b] = T, glen[b] = (int32_t)m->len[b], T += m->len[b];
  run g;
  alloc_run(m, &g, T, gstart, glen);
  fill_normal(e, g.x0, T * x_width(m), 1.0f);
  for (int l = 0; l < LAYERS; l++) fill_normal(e, g.tok[l], T * tok_width(m), 0.5f);

  /* This rank's pieces, a NaN row after each sequence. */
  int64_t lstart[MAX_BATCH], rows = 0;
  int32_t llen[MAX_BATCH];
  sf_cp_span piece[MAX_BATCH];
  for (int32_t b = 0; b < m->batch; b++) {
    piece[b] = sf_cp_piece(m->len[b], e->k, e->rank);
    lstart[b] = rows, llen[b] = (int32_t)piece[b].len, rows += piece[b].len + 1;
  }
  run c;
  alloc_run(m, &c, rows, lstart, llen);
  fill_nan(c.x0, rows * x_width(m));
  for (int l = 0; l < LAYERS; l++) fill_nan(c.tok[l], rows * tok_width(m));
  for (int32_t b = 0; b < m->batch; b++)
    for (int64_t i = 0; i < piece[b].len; i++) {
      const int64_t src = gstart[b] + piece[b].start + i, dst = lstart[b] + i;
      memcpy(c.x0 + dst * x_width(m), g.x0 + src * x_width(m), (size_t)x_width(m) * sizeof(float));
      for (int l = 0; l < LAYERS; l++)
        memcpy(c.tok[l] + dst * tok_width(m), g.tok[l] + src * tok_width(m), (size_t)tok_width(m) * sizeof(float));
    }

  run_stack(e, m, w, &g, 0);
  run_stack(e, m, w, &c, 1);

  /* Outputs of every layer at this rank's tokens. */
  const int64_t xw = x_width(m);
  for (int l = 0; l < LAYERS; l++) {
    float *got = FALLOC(rows * xw), *want = FALLOC(rows * xw);
    int64_t n = 0;
    for (int32_t b = 0; b < m->batch; b++)
      for (int64_t i = 0; i < piece[b].len; i++, n++) {
        memcpy(got + n * xw, c.y[l] + (lstart[b] + i) * xw, (size_t)xw * sizeof(float));
        memcpy(want + n * xw, g.y[l] + (gstart[b] + piece[b].start + i) * xw, (size_t)xw * sizeof(float));
      }
    char what[160];
    snprintf(what, sizeof what, "%s: layer %d outputs (%lld local tokens)", m->name, l, (long long)n);
    CHECK_CLOSE(e, what, rel_err(got, want, n * xw));
    free(got), free(want);
    if (e->rank == e->k - 1) {
      snprintf(what, sizeof what, "%s: layer %d final conv state", m->name, l);
      CHECK_CLOSE(e, what, rel_err(c.conv[l], g.conv[l], m->batch * conv_size(m)));
      snprintf(what, sizeof what, "%s: layer %d final SSM state", m->name, l);
      CHECK_CLOSE(e, what, rel_err(c.ssm[l], g.ssm[l], m->batch * ssm_size(m)));
    }
  }
  free_run(&g);
  free_run(&c);
  for (int l = 0; l < LAYERS; l++) free_weights(&w[l]);
}

int main(int argc, char **argv) {
  cp_env e;
  cp_init(&e, &argc, &argv);
  for (size_t i = 0; i < sizeof mixers / sizeof mixers[0]; i++) {
    test_mixer(&e, &mixers[i]);
    if (e.rank == 0) printf("%s: done\n", mixers[i].name);
  }
  return cp_finish(&e);
}
