/* eval: one model's accuracy, scores and PMI statistics (see eval.h). */
#include "eval.h"
#include "pmi.h"
#include "util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void eval_free(store_eval *e) {
    free(e->sample_scores); free(e->pool_mean); free(e->pool_median); free(e->data_scores);
    e->sample_scores = e->pool_mean = e->pool_median = e->data_scores = NULL;
}

/* The result of a model that cannot be verified: nothing identified, every p-value NaN. */
static void unverifiable(pmi_result *r, int N, int m, int k) {
    memset(r, 0, sizeof *r);
    r->N = N; r->m = m; r->k = k;
    r->identified = r->identified_median = -1;
    r->margin = r->z_perm = NAN;
    for (int i = 0; i < P_COUNT; i++) { r->p[i] = r->p_nway[i] = NAN; r->nway_index[i] = -1; }
}

int eval_lnoise(nn_model *model, const nn_data *d, const int32_t *y, int classes, int queries, double sigma,
                uint64_t seed, double *out, char *err, size_t errlen) {
    if (queries < 1) return util_err(err, errlen, "lnoise: %d queries, expected >= 1", queries);
    int64_t n = nn_data_size(d);
    float *logp = util_malloc(sizeof *logp * (size_t)(n * classes + 1));
    double *hit = util_malloc(sizeof *hit * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++) out[i] = 0;
    int rc = 0;
    for (int q = 0; q < queries && !rc; q++) {
        if (nn_eval_logp_noisy(model, d, sigma, seed + (uint64_t)q * (uint64_t)n, logp) != NN_OK) {
            rc = util_err(err, errlen, "lnoise query %d: %s", q, nn_last_error());
            break;
        }
        pmi_scores(SCORE_LNOISE, logp, y, n, classes, hit);
        for (int64_t i = 0; i < n; i++) out[i] += hit[i];   /* counts: exact in a double */
    }
    for (int64_t i = 0; i < n && !rc; i++) out[i] /= queries;
    free(logp); free(hit);
    return rc ? -1 : 0;
}

/* The scores of kind `kind` of n samples (labels y) into s: raw kinds from the
 * log-probabilities, lnoise copied from `queried` (eval_lnoise's scores of the same samples),
 * calibrated ones against the references' base scores ref[base] (n_refs, n). 0; 1 when the
 * kind cannot be calibrated for this model (a reference left out of too few); -1 with
 * pmi_error(). */
static int kind_scores(const eval_input *in, int kind, const float *logp, const double *queried, const int32_t *y,
                       int64_t n, const double *const *ref, double *s) {
    if (pmi_score_queried((pmi_score_kind)kind)) {
        memcpy(s, queried, sizeof *s * (size_t)n);
        return 0;
    }
    if (!pmi_score_calibrated((pmi_score_kind)kind)) {
        pmi_scores((pmi_score_kind)kind, logp, y, n, in->classes, s);
        return 0;
    }
    pmi_score_kind base = pmi_score_base((pmi_score_kind)kind);
    if (in->ref_skip >= 0 && in->n_refs - 1 < pmi_score_min_refs((pmi_score_kind)kind)) {
        for (int64_t i = 0; i < n; i++) s[i] = NAN;
        return 1;
    }
    double *raw = util_malloc(sizeof *raw * (size_t)n);
    pmi_scores(base, logp, y, n, in->classes, raw);
    int rc = pmi_calibrate((pmi_score_kind)kind, raw, ref[base], in->n_refs, in->ref_skip, n, s);
    free(raw);
    return rc;
}

/* The dataset evidence of kind k before its permutation test: the S-then-H scores into
 * ev->data_scores and n, gap into ev->data[k]. 0; 1 when the kind cannot be calibrated; -1. */
static int data_kind(const eval_input *in, int k, const float *dlogp, const double *dqueried, store_eval *ev) {
    int64_t n = in->n_side;
    double *s = ev->data_scores + k * 2 * n;
    int rc = kind_scores(in, in->kinds[k], dlogp, dqueried, in->dset_labels, 2 * n, in->dref_scores, s);
    if (rc) return rc;
    double a = 0, b = 0;
    for (int64_t i = 0; i < n; i++) { a += s[i]; b += s[n + i]; }
    ev->data[k].gap = (a - b) / (double)n;
    return 0;
}

/* Scores and statistics of every kind from the log-probabilities (and the lnoise scores q, dq of
 * the pool and the dataset evidence when it is listed), the permutation test aside
 * (eval_permutations). 0, or -1 with err. */
static int verify_kinds(const eval_input *in, const float *logp, const float *dlogp, const double *q, const double *dq,
                        int diverged, store_eval *ev, char *err, size_t errlen) {
    int64_t nm = (int64_t)in->N * in->m;
    int failed = 0;
    #pragma omp parallel for schedule(dynamic)
    for (int k = 0; k < in->n_kinds; k++) {
        double *s = ev->sample_scores + k * nm, *mean = ev->pool_mean + k * in->N, *median = ev->pool_median + k * in->N;
        ev->data[k] = (pmi_data_result){ .n = (int)in->n_side, .gap = NAN, .p = NAN, .z = NAN };
        int cal = diverged ? 0 : kind_scores(in, in->kinds[k], logp, q, in->pool_labels, nm, in->ref_scores, s);
        if (!diverged && !cal && in->n_side > 0) cal = data_kind(in, k, dlogp, dq, ev);
        if (diverged) pmi_scores((pmi_score_kind)in->kinds[k], logp, in->pool_labels, nm, in->classes, s);
        if (diverged || cal == 1) {
            unverifiable(&ev->res[k], in->N, in->m, in->secret);
            for (int i = 0; i < in->N; i++) mean[i] = median[i] = NAN;
            continue;
        }
        if (cal < 0 || pmi_verify(s, in->N, in->m, in->secret, 0, 0, &ev->res[k], mean, median)) {
            #pragma omp critical
            {
                failed = 1;
                util_err(err, errlen, "verification (%s score): %s", pmi_score_name((pmi_score_kind)in->kinds[k]), pmi_error());
            }
        }
    }
    return failed ? -1 : 0;
}

/* The lnoise scores of the pool (*q) and of the dataset evidence (*dq, with it) when lnoise is
 * listed and the model has not diverged; NULL otherwise. 0, or -1 with err. */
static int lnoise_scores(nn_model *model, const eval_input *in, int diverged, double **q, double **dq, char *err,
                         size_t errlen) {
    int listed = 0;
    for (int k = 0; k < in->n_kinds; k++) listed |= pmi_score_queried((pmi_score_kind)in->kinds[k]);
    if (!listed || diverged) return 0;
    uint64_t nm = (uint64_t)in->N * (uint64_t)in->m;
    *q = util_malloc(sizeof **q * nm);
    int rc = eval_lnoise(model, in->pool, in->pool_labels, in->classes, in->lnoise_queries, in->lnoise_sigma,
                         in->lnoise_seed, *q, err, errlen);
    if (!rc && in->n_side > 0) {
        *dq = util_malloc(sizeof **dq * (size_t)(2 * in->n_side));
        rc = eval_lnoise(model, in->dset, in->dset_labels, in->classes, in->lnoise_queries, in->lnoise_sigma,
                         in->lnoise_seed + (uint64_t)in->lnoise_queries * nm, *dq, err, errlen);
    }
    return rc;
}

int eval_forward_many(nn_model *const *model, const eval_input *const *in, store_eval *const *ev, eval_pending *pend, int k,
                      int *fused, char *err, size_t errlen) {
    double t0 = util_now_s();
    const nn_data **test = util_malloc(sizeof *test * (size_t)k), **pool = util_malloc(sizeof *pool * (size_t)k);
    const nn_data **dset = util_malloc(sizeof *dset * (size_t)k);
    nn_model **dmodel = util_malloc(sizeof *dmodel * (size_t)k);
    float **logp = util_malloc(sizeof *logp * (size_t)k), **dlogp = util_malloc(sizeof *dlogp * (size_t)k);
    double *acc = util_malloc(sizeof *acc * (size_t)k);
    int nd = 0;   /* the models with dataset evidence, first nd of dmodel/dset/dlogp */
    for (int b = 0; b < k; b++) {
        const eval_input *e = in[b];
        int64_t nm = (int64_t)e->N * e->m, n2 = 2 * e->n_side;
        pend[b] = (eval_pending){0};
        ev[b]->n_kinds = e->n_kinds;
        memcpy(ev[b]->kinds, e->kinds, sizeof *e->kinds * (size_t)e->n_kinds);
        ev[b]->sample_scores = util_malloc(sizeof(double) * (size_t)(nm * e->n_kinds));
        ev[b]->pool_mean = util_malloc(sizeof(double) * (size_t)(e->N * e->n_kinds));
        ev[b]->pool_median = util_malloc(sizeof(double) * (size_t)(e->N * e->n_kinds));
        ev[b]->data_scores = n2 ? util_malloc(sizeof(double) * (size_t)(n2 * e->n_kinds)) : NULL;
        pend[b].logp = logp[b] = util_malloc(sizeof(float) * (size_t)(nm * e->classes));
        pend[b].dlogp = n2 ? util_malloc(sizeof(float) * (size_t)(n2 * e->classes)) : NULL;
        test[b] = e->test; pool[b] = e->pool;
        if (n2) { dmodel[nd] = model[b]; dset[nd] = e->dset; dlogp[nd++] = pend[b].dlogp; }
    }
    nn_status st = nn_eval_many(model, test, k, NULL, acc);
    if (st == NN_OK) st = nn_eval_many(model, pool, k, logp, NULL);
    if (fused) *fused = st == NN_OK ? nn_eval_fused_models() : 0;
    if (st == NN_OK && nd) st = nn_eval_many(dmodel, dset, nd, dlogp, NULL);
    int rc = st == NN_OK ? 0 : util_err(err, errlen, "evaluation: %s", nn_last_error());
    for (int b = 0; b < k && !rc; b++) {
        const eval_input *e = in[b];
        int64_t nm = (int64_t)e->N * e->m, n2 = 2 * e->n_side;
        ev[b]->test_acc = acc[b];
        int diverged = 0;
        for (int64_t i = 0; i < nm * e->classes && !diverged; i++) diverged = isnan(pend[b].logp[i]);
        for (int64_t i = 0; i < n2 * e->classes && !diverged; i++) diverged = isnan(pend[b].dlogp[i]);
        pend[b].diverged = diverged;
        rc = lnoise_scores(model[b], e, diverged, &pend[b].q, &pend[b].dq, err, errlen);
        ev[b]->sparsity = nn_sparsity(model[b]);
    }
    double share = (util_now_s() - t0) / (k > 0 ? k : 1);   /* the batch's forward passes, a share each */
    for (int b = 0; b < k; b++) {
        pend[b].forward_s = share;
        if (rc) eval_pending_free(&pend[b]);
    }
    free(test); free(pool); free(dset); free(dmodel); free(logp); free(dlogp); free(acc);
    return rc;
}

int eval_forward(nn_model *model, const eval_input *in, store_eval *ev, eval_pending *pend, char *err, size_t errlen) {
    return eval_forward_many(&model, &in, &ev, pend, 1, NULL, err, errlen);
}

void eval_pending_free(eval_pending *pend) {
    free(pend->logp); free(pend->dlogp); free(pend->q); free(pend->dq);
    *pend = (eval_pending){0};
}

int eval_finish(const eval_input *in, store_eval *ev, eval_pending *pend, eval_times *t, char *err, size_t errlen) {
    double t1 = util_now_s();
    int rc = verify_kinds(in, pend->logp, pend->dlogp, pend->q, pend->dq, pend->diverged, ev, err, errlen);
    double forward_s = pend->forward_s;
    int diverged = pend->diverged;
    eval_pending_free(pend);
    if (rc) return -1;
    if (diverged) fprintf(stderr, "  %s: %s%s model outputs NaN (diverged): recorded as unverifiable\n",
                          in->who, strcmp(ev->attack, "none") ? "attack " : "", strcmp(ev->attack, "none") ? ev->attack : "");
    double stats_s = util_now_s() - t1;
    ev->wall_s = forward_s + stats_s;
    if (t) { t->forward_s += forward_s; t->stats_s += stats_s; }
    return 0;
}

int eval_model_timed(nn_model *model, const eval_input *in, store_eval *ev, eval_times *t, char *err, size_t errlen) {
    eval_pending pend;
    if (eval_forward(model, in, ev, &pend, err, errlen)) return -1;
    return eval_finish(in, ev, &pend, t, err, errlen);
}

int eval_model(nn_model *model, const eval_input *in, store_eval *ev, char *err, size_t errlen) {
    return eval_model_timed(model, in, ev, NULL, err, errlen);
}

/* ---- the permutation tests' sums on a device (pmi_sum_device over nn_bag_sums) ------------- */
static void *sums_open(nn_device dev, const double *rows, int T, int64_t total) {
    nn_bags *b = nn_bag_sums_open(dev, rows, T, total);
    if (!b) fprintf(stderr, "pmi: permutation sums on the %s: %s; summing on the CPU\n", dev == NN_CUDA ? "GPU" : "CPU", nn_last_error());
    return b;
}
static void *sums_open_cpu(const double *rows, int T, int64_t total) { return sums_open(NN_CPU, rows, T, total); }
static void *sums_open_cuda(const double *rows, int T, int64_t total) { return sums_open(NN_CUDA, rows, T, total); }
static int sums_run(void *h, const uint32_t *idx, int R, int m, double *out) {
    if (nn_bag_sums(h, idx, R, m, out) == NN_OK) return 0;
    fprintf(stderr, "pmi: permutation sums on the device: %s; summing on the CPU\n", nn_last_error());
    return -1;
}
static void sums_close(void *h) { nn_bag_sums_close(h); }
static int sums_max(int m, int T) {
    int64_t by_idx = ((int64_t)16 << 20) / m, by_out = ((int64_t)8 << 20) / T, r = by_idx < by_out ? by_idx : by_out;
    return r < 1 ? 1 : r > INT32_MAX ? INT32_MAX : (int)r;
}

const pmi_sum_device *eval_sum_device(nn_device dev) {
    static const pmi_sum_device cpu = {sums_open_cpu, sums_run, sums_close, sums_max, 1e8};
    static const pmi_sum_device cuda = {sums_open_cuda, sums_run, sums_close, sums_max, 1e8};
    return dev == NN_CUDA ? &cuda : &cpu;
}

/* One pmi_perm_batch over every verifiable (evaluation, kind) of evs[0..n): the pool's tests
 * (D_k against random m-subsets of the N*m, in->perm_seed), or with `data` the dataset
 * evidence's (S, the first n_side scores, against random n_side-subsets of the 2 n_side, N = 2,
 * k = 0, in->data_seed). 0, or -1 with err. */
static int perm_tests(store_eval *evs, int n, const eval_input *in, int data, char *err, size_t errlen) {
    int N = data ? 2 : in->N, m = data ? (int)in->n_side : in->m, T = 0;
    size_t nm = (size_t)N * (size_t)m;
    for (int e = 0; e < n; e++) T += evs[e].n_kinds;
    const double **scores = util_calloc((size_t)T + 1, sizeof *scores);
    int *slot = util_calloc((size_t)T + 1, 2 * sizeof *slot);   /* (evaluation, kind) of each test */
    T = 0;
    for (int e = 0; e < n; e++)
        for (int q = 0; q < evs[e].n_kinds; q++) {
            if (evs[e].res[q].identified < 0 || (data && isnan(evs[e].data[q].gap))) continue;   /* unverifiable */
            scores[T] = (data ? evs[e].data_scores : evs[e].sample_scores) + (size_t)q * nm;
            slot[2 * T] = e; slot[2 * T++ + 1] = q;
        }
    double *p = util_malloc(sizeof *p * ((size_t)T * N + 1)), *z = util_malloc(sizeof *z * ((size_t)T + 1));
    int rc = pmi_perm_batch_on(in->sums, scores, T, N, m, data ? 0 : in->secret,
                               data ? in->data_permutations : in->permutations, data ? in->data_seed : in->perm_seed, p, z);
    if (rc) util_err(err, errlen, "%spermutation tests: %s", data ? "dataset evidence's " : "", pmi_error());
    for (int t = 0; t < T && !rc; t++) {
        store_eval *ev = &evs[slot[2 * t]];
        int q = slot[2 * t + 1];
        if (data) { ev->data[q].p = p[2 * t]; ev->data[q].z = z[t]; }
        else pmi_result_set_perm(&ev->res[q], p + (size_t)t * N, z[t]);
    }
    free(scores); free(slot); free(p); free(z);
    return rc ? -1 : 0;
}

int eval_permutations(store_eval *evs, int n, const eval_input *in, char *err, size_t errlen) {
    if (perm_tests(evs, n, in, 0, err, errlen)) return -1;
    return in->n_side > 0 ? perm_tests(evs, n, in, 1, err, errlen) : 0;
}
