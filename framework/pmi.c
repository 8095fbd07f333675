/* pmi: membership scores, pooling over mini-datasets, and the ownership statistics (the
 * contract, with every convention, is in pmi.h). Pure C over arrays; GSL supplies the rng,
 * sorting, moments and distribution functions. */
#include "pmi.h"
#include "util.h"
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>

static _Thread_local char pmi_msg[256];

static void set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pmi_msg, sizeof pmi_msg, fmt, ap);
    va_end(ap);
}

const char *pmi_error(void) { return pmi_msg; }

/* ---- names ----------------------------------------------------------------------------- */
static const char *const score_names[SCORE_COUNT] = {"loss", "conf", "correct", "entropy", "mentropy", "logit", "lnoise", "diff", "lira"};
static const char *const pvalue_names[P_COUNT] = {"rank", "perm", "welch", "mw"};

static int find_name(const char *const *names, int n, const char *name) {
    if (!name) return -1;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

const char *pmi_score_name(pmi_score_kind k) { return (unsigned)k < SCORE_COUNT ? score_names[k] : "unknown"; }
int pmi_score_parse(const char *name) { return find_name(score_names, SCORE_COUNT, name); }
int pmi_score_queried(pmi_score_kind k) { return k == SCORE_LNOISE; }
const char *pmi_pvalue_name(pmi_pvalue p) { return (unsigned)p < P_COUNT ? pvalue_names[p] : "unknown"; }
int pmi_pvalue_parse(const char *name) { return find_name(pvalue_names, P_COUNT, name); }

/* ---- per-sample scores ------------------------------------------------------------------ */
/* A log-probability clamped to [PMI_LOGP_MIN, 0]; NaN stays NaN. */
static double clamp_logp(float lp) {
    double v = lp;
    if (v < PMI_LOGP_MIN) return PMI_LOGP_MIN;
    return v > 0 ? 0 : v;
}

/* log(1 - exp(lp)) for a clamped lp, accurate on both sides of lp = -log 2, floored at
 * PMI_LOG1MP_MIN. */
static double log1mexp(double lp) {
    double v = lp > -M_LN2 ? log(-expm1(lp)) : log1p(-exp(lp));
    return v < PMI_LOG1MP_MIN ? PMI_LOG1MP_MIN : v;
}

/* Index of the largest entry (first on ties, NaN never wins unless all are NaN). */
static int argmax_f(const float *row, int classes) {
    int best = 0;
    for (int j = 1; j < classes; j++)
        if (row[j] > row[best] || (isnan(row[best]) && !isnan(row[j]))) best = j;
    return best;
}

/* -H(p) = sum_j p_j log p_j. */
static double neg_entropy(const float *row, int classes) {
    double s = 0;
    for (int j = 0; j < classes; j++) {
        double lp = clamp_logp(row[j]);
        s += exp(lp) * lp;
    }
    return s;
}

/* -Mentr(p, y) = (1 - p_y) log p_y + sum_{j != y} p_j log(1 - p_j). */
static double neg_mentropy(const float *row, int y, int classes) {
    double lpy = clamp_logp(row[y]);
    double s = -expm1(lpy) * lpy;
    for (int j = 0; j < classes; j++) {
        if (j == y) continue;
        double lp = clamp_logp(row[j]);
        s += exp(lp) * log1mexp(lp);
    }
    return s;
}

static double score_row(pmi_score_kind kind, const float *row, int y, int classes) {
    double lpy = clamp_logp(row[y]);
    switch (kind) {
    case SCORE_LOSS: return lpy;
    case SCORE_CONF: return exp(lpy);
    case SCORE_CORRECT:
    case SCORE_LNOISE: return argmax_f(row, classes) == y ? 1.0 : 0.0;
    case SCORE_ENTROPY: return neg_entropy(row, classes);
    case SCORE_MENTROPY: return neg_mentropy(row, y, classes);
    case SCORE_LOGIT: return lpy - log1mexp(lpy);
    default: return NAN;
    }
}

void pmi_scores(pmi_score_kind kind, const float *logp, const int32_t *y, int64_t n, int classes, double *out) {
    if (!logp || !y || !out || n < 1 || classes < 1) return;
    for (int64_t i = 0; i < n; i++) {
        const float *row = logp + i * (int64_t)classes;
        out[i] = y[i] >= 0 && y[i] < classes ? score_row(kind, row, y[i], classes) : NAN;
    }
}

/* ---- reference calibration ---------------------------------------------------------------- */
int pmi_score_calibrated(pmi_score_kind k) { return k == SCORE_DIFF || k == SCORE_LIRA; }

pmi_score_kind pmi_score_base(pmi_score_kind k) {
    return k == SCORE_DIFF ? SCORE_LOSS : k == SCORE_LIRA ? SCORE_LOGIT : k;
}

int pmi_score_min_refs(pmi_score_kind k) { return k == SCORE_DIFF ? 1 : k == SCORE_LIRA ? 2 : 0; }

/* Mean and sample variance over the references r != skip of column i of ref (R, n). */
static void ref_moments(const double *ref, int R, int skip, int64_t n, int64_t i, double *mu, double *var) {
    double s = 0, ss = 0;
    int c = 0;
    for (int r = 0; r < R; r++)
        if (r != skip) { s += ref[(int64_t)r * n + i]; c++; }
    *mu = s / c;
    for (int r = 0; r < R; r++)
        if (r != skip) { double d = ref[(int64_t)r * n + i] - *mu; ss += d * d; }
    *var = c > 1 ? ss / (c - 1) : NAN;
}

int pmi_calibrate(pmi_score_kind kind, const double *s, const double *ref, int R, int skip, int64_t n, double *out) {
    if (!s || !ref || !out || n < 1) { set_error("pmi_calibrate: NULL array or n < 1"); return -1; }
    if (!pmi_score_calibrated(kind)) { set_error("pmi_calibrate: %s is not a calibrated score kind", pmi_score_name(kind)); return -1; }
    int used = R - (skip >= 0 && skip < R);
    if (used < pmi_score_min_refs(kind)) {
        set_error("pmi_calibrate: %s needs %d reference model%s, %d given", pmi_score_name(kind),
                  pmi_score_min_refs(kind), pmi_score_min_refs(kind) > 1 ? "s" : "", used);
        return -1;
    }
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(s[i])) { set_error("pmi_calibrate: score %lld = %g is not finite", (long long)i, s[i]); return -1; }
    for (int64_t i = 0; i < (int64_t)R * n; i++)
        if (!isfinite(ref[i])) { set_error("pmi_calibrate: reference score %lld = %g is not finite", (long long)i, ref[i]); return -1; }
    double pooled = 0, mu, var;
    if (kind == SCORE_LIRA) {
        for (int64_t i = 0; i < n; i++) { ref_moments(ref, R, skip, n, i, &mu, &var); pooled += var; }
        pooled = sqrt(pooled / n);
    }
    for (int64_t i = 0; i < n; i++) {
        ref_moments(ref, R, skip, n, i, &mu, &var);
        if (kind == SCORE_DIFF) { out[i] = s[i] - mu; continue; }
        double sigma = used >= PMI_LIRA_PERSAMPLE_MIN ? fmax(sqrt(var), PMI_LIRA_SIGMA_FLOOR * pooled) : pooled;
        /* every reference gave every sample the same score: no spread to standardise by */
        out[i] = sigma > 0 ? (s[i] - mu) / sigma : s[i] - mu;
    }
    return 0;
}

/* ---- small helpers ---------------------------------------------------------------------- */
static int any_nan(const double *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i])) return 1;
    return 0;
}

/* Index of the largest value, lowest index on ties. */
static int argmax_d(const double *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Midranks (1-based) of v (n) into rank; returns sum over tie groups of t^3 - t. v must hold
 * no NaN. */
static double midranks(const double *v, size_t n, double *rank) {
    size_t *ix = util_malloc(n * sizeof *ix);
    gsl_sort_index(ix, v, 1, n);
    double tie = 0;
    for (size_t a = 0; a < n;) {
        size_t b = a + 1;
        while (b < n && v[ix[b]] == v[ix[a]]) b++;
        double r = 0.5 * (double)(a + 1 + b);
        for (size_t j = a; j < b; j++) rank[ix[j]] = r;
        double t = (double)(b - a);
        tie += t * t * t - t;
        a = b;
    }
    free(ix);
    return tie;
}

/* ---- Welch ------------------------------------------------------------------------------ */
static double welch_from_moments(double mx, double vx, int n1, double my, double vy, int n2) {
    double sx = vx / n1, sy = vy / n2, se2 = sx + sy;
    if (!(se2 > 0)) return mx > my ? 0.0 : mx < my ? 1.0 : 0.5;
    double a = sx / se2, b = sy / se2;
    double df = 1.0 / (a * a / (n1 - 1) + b * b / (n2 - 1));
    return gsl_cdf_tdist_Q((mx - my) / sqrt(se2), df);
}

double pmi_welch_greater(const double *x, int n1, const double *y, int n2) {
    if (!x || !y || n1 < 2 || n2 < 2) return NAN;
    double mx = gsl_stats_mean(x, 1, (size_t)n1), my = gsl_stats_mean(y, 1, (size_t)n2);
    double vx = gsl_stats_variance_m(x, 1, (size_t)n1, mx), vy = gsl_stats_variance_m(y, 1, (size_t)n2, my);
    return welch_from_moments(mx, vx, n1, my, vy, n2);
}

/* ---- Mann-Whitney ----------------------------------------------------------------------- */
/* sf[u] = P(U >= u), u = 0..n1*n2, under H0 without ties: the n1-subsets of the ranks 1..n
 * counted by rank sum (uint64 counts are exact up to C(68, 34), beyond PMI_MW_EXACT_MAX).
 * The caller frees the array. */
static double *mw_exact_sf(int n1, int n2) {
    int n = n1 + n2, umax = n1 * n2, s0 = n1 * (n1 + 1) / 2, smax = s0 + umax;
    size_t w = (size_t)smax + 1;
    uint64_t *c = util_calloc((size_t)(n1 + 1) * w, sizeof *c);
    double *sf = util_malloc(((size_t)umax + 1) * sizeof *sf);
    c[0] = 1;
    for (int r = 1; r <= n; r++)
        for (int j = r < n1 ? r : n1; j >= 1; j--)
            for (int s = smax; s >= r; s--) c[(size_t)j * w + s] += c[(size_t)(j - 1) * w + s - r];
    const uint64_t *cn = c + (size_t)n1 * w + s0;
    uint64_t total = 0, cum = 0;
    for (int u = 0; u <= umax; u++) total += cn[u];
    for (int u = umax; u >= 0; u--) {
        cum += cn[u];
        sf[u] = (double)cum / (double)total;
    }
    free(c);
    return sf;
}

static double mw_asymptotic(double u1, int n1, int n2, double tie) {
    double n = (double)n1 + n2;
    double s2 = (double)n1 * n2 / 12.0 * ((n + 1) - tie / (n * (n - 1)));
    if (!(s2 > 0)) return 1.0;
    return gsl_cdf_ugaussian_Q((u1 - 0.5 * n1 * n2 - 0.5) / sqrt(s2));
}

/* p-values of several groups of n1 against the remaining n2 of one combined sample, given each
 * group's U statistic (u1, count) and the sample's tie term. */
static void mw_pvalues(const double *u1, int count, int n1, int n2, double tie, double *p) {
    if (tie == 0 && n1 + n2 <= PMI_MW_EXACT_MAX) {
        double *sf = mw_exact_sf(n1, n2);
        for (int i = 0; i < count; i++) p[i] = sf[(int)lround(u1[i])];
        free(sf);
        return;
    }
    for (int i = 0; i < count; i++) p[i] = mw_asymptotic(u1[i], n1, n2, tie);
}

/* x (n1) and y (n2) side by side in a new array. */
static double *concat(const double *x, int n1, const double *y, int n2) {
    double *v = util_malloc(((size_t)n1 + n2) * sizeof *v);
    memcpy(v, x, (size_t)n1 * sizeof *v);
    memcpy(v + n1, y, (size_t)n2 * sizeof *v);
    return v;
}

/* U statistic of the first n1 of v (n1 + n2) against the rest; *tie gets the tie term. */
static double u_first(const double *v, int n1, int n2, double *tie) {
    size_t n = (size_t)n1 + n2;
    double *rank = util_malloc(n * sizeof *rank);
    *tie = midranks(v, n, rank);
    double r1 = 0;
    for (int i = 0; i < n1; i++) r1 += rank[i];
    free(rank);
    return r1 - 0.5 * n1 * (n1 + 1.0);
}

double pmi_mannwhitney_greater(const double *x, int n1, const double *y, int n2) {
    if (!x || !y || n1 < 1 || n2 < 1 || any_nan(x, n1) || any_nan(y, n2)) return NAN;
    double *v = concat(x, n1, y, n2);
    double tie, p = NAN, u1 = u_first(v, n1, n2, &tie);
    free(v);
    mw_pvalues(&u1, 1, n1, n2, tie, &p);
    return p;
}

/* ---- rank, Holm ------------------------------------------------------------------------------ */
static double rank_p(const double *mean, int N, int k) {
    int rank = 1;
    for (int i = 0; i < N; i++)
        if (i != k && mean[i] >= mean[k]) rank++;
    return (double)rank / N;
}

double pmi_rank_p(const double *pool_mean, int N, int k) {
    if (!pool_mean || N < 1 || k < 0 || k >= N || any_nan(pool_mean, (size_t)N)) return NAN;
    return rank_p(pool_mean, N, k);
}

double pmi_holm_min(const double *p, int n, int *argmin) {
    int best = -1;
    for (int i = 0; p && i < n; i++)
        if (!isnan(p[i]) && (best < 0 || p[i] < p[best])) best = i;
    if (argmin) *argmin = best;
    if (best < 0) return NAN;
    double q = n * p[best];
    return q < 1 ? q : 1;
}

double pmi_combine_p(double p_pool, double p_data) {
    if (isnan(p_pool)) return p_data;
    if (isnan(p_data)) return p_pool;
    double q = 2 * fmin(p_pool, p_data);
    return q < 1 ? q : 1;
}

int pmi_pool_unsafe(pmi_score_kind kind, double audit_p) {
    return !pmi_score_calibrated(kind) && !isnan(audit_p) && audit_p < PMI_AUDIT_ALPHA;
}

double pmi_pool_p(pmi_score_kind kind, double p_pool, double audit_p) {
    return pmi_pool_unsafe(kind, audit_p) ? NAN : p_pool;
}

/* ---- argument checks --------------------------------------------------------------------- */
static int check_shape(int N, int m, int k, int permutations) {
    if (N < 2 || N > PMI_MAX_N) { set_error("pmi: N = %d, expected 2..%d mini-datasets", N, PMI_MAX_N); return -1; }
    if (m < 1 || (size_t)N * (size_t)m > 0x7fffffffu) { set_error("pmi: m = %d, expected >= 1 with N*m < 2^31", m); return -1; }
    if (k < 0 || k >= N) { set_error("pmi: k = %d, expected 0..%d", k, N - 1); return -1; }
    if (permutations < 0) { set_error("pmi: permutations = %d, expected >= 0", permutations); return -1; }
    return 0;
}

/* -1 with a message naming the sample (and the test t of a batch, when t >= 0) at the first
 * non-finite score. */
static int check_finite(const double *scores, int N, int m, int t) {
    char what[32] = "";
    if (t >= 0) snprintf(what, sizeof what, "test %d: ", t);
    for (size_t i = 0; i < (size_t)N * m; i++)
        if (!isfinite(scores[i])) {
            set_error("pmi: %sscore [%zu][%zu] = %g, expected a finite number", what, i / (size_t)m, i % (size_t)m, scores[i]);
            return -1;
        }
    return 0;
}

static int check_args(const double *scores, int N, int m, int k, int permutations) {
    if (!scores) { set_error("pmi: scores is NULL"); return -1; }
    return check_shape(N, m, k, permutations) || check_finite(scores, N, m, -1) ? -1 : 0;
}

/* ---- the permutation test ------------------------------------------------------------------ */
/* A chunk of drawn subsets: at most PERM_CHUNK resamples and PERM_CHUNK_INDICES indices (4 MiB). */
#define PERM_CHUNK 4096
#define PERM_CHUNK_INDICES (1 << 20)

/* The tolerance under which a permutation mean ties the observed one. */
static double perm_tol(const double *scores, size_t total, int m) {
    double mx = 0;
    for (size_t i = 0; i < total; i++) mx = fmax(mx, fabs(scores[i]));
    return 4.0 * m * DBL_EPSILON * mx;
}

/* One test's running state over the resamples. thr (N): the thresholds mean_i - tol in
 * ascending order, order (N) the mini-dataset i of each; hist (N + 1): hist[q] counts the
 * permutation means at or above exactly the first q thresholds. s1, s2: the sum and the sum
 * of squares of (permutation mean - c), c the mean of the test's N*m scores (a shift that
 * keeps the one-pass variance free of cancellation); lo, hi: the extreme permutation means;
 * obs_k: D_k's mean. */
typedef struct {
    const double *scores;
    double *thr, c, s1, s2, lo, hi, obs_k;
    size_t *order;
    int64_t *hist;
} perm_acc;

static void perm_acc_init(perm_acc *a, const double *scores, int N, int m, int k) {
    size_t total = (size_t)N * m;
    double tol = perm_tol(scores, total, m), *t = util_malloc((size_t)N * sizeof *t);
    for (int i = 0; i < N; i++) t[i] = gsl_stats_mean(scores + (size_t)i * m, 1, (size_t)m) - tol;
    a->scores = scores;
    a->order = util_malloc((size_t)N * sizeof *a->order);
    a->thr = util_malloc((size_t)N * sizeof *a->thr);
    a->hist = util_calloc((size_t)N + 1, sizeof *a->hist);
    gsl_sort_index(a->order, t, 1, (size_t)N);
    for (int q = 0; q < N; q++) a->thr[q] = t[a->order[q]];
    free(t);
    a->c = gsl_stats_mean(scores, 1, total);
    a->obs_k = gsl_stats_mean(scores + (size_t)k * m, 1, (size_t)m);
    a->s1 = a->s2 = 0;
    a->lo = INFINITY, a->hi = -INFINITY;
}

static void perm_acc_free(perm_acc *a) {
    free(a->thr);
    free(a->order);
    free(a->hist);
}

/* #{q: thr[q] <= x} of the ascending thr (N >= 1), without data-dependent branches. */
static int count_le(const double *thr, int N, double x) {
    const double *base = thr;
    for (int n = N; n > 1;) {
        int half = n / 2;
        base = base[half] <= x ? base + half : base;
        n -= half;
    }
    return (int)(base - thr) + (*base <= x);
}

/* Adds one permutation mean to a's counts and sums. */
static inline void perm_acc_mean(perm_acc *a, int N, double mean) {
    double d = mean - a->c;
    a->hist[count_le(a->thr, N, mean)]++;
    a->s1 += d, a->s2 += d * d;
    a->lo = fmin(a->lo, mean), a->hi = fmax(a->hi, mean);
}

/* Adds the R resamples idx (R, m) to a, in order; each mean is summed j = 0..m-1, then
 * divided by m. Four resamples are summed side by side (four independent chains of
 * additions, each in its own order), which hides the latency of the additions. */
static void perm_acc_add(perm_acc *a, const uint32_t *idx, int R, int N, int m) {
    const double *sc = a->scores;
    int r = 0;
    for (; r + 4 <= R; r += 4) {
        const uint32_t *i0 = idx + (size_t)r * m, *i1 = i0 + m, *i2 = i1 + m, *i3 = i2 + m;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int j = 0; j < m; j++) {
            s0 += sc[i0[j]];
            s1 += sc[i1[j]];
            s2 += sc[i2[j]];
            s3 += sc[i3[j]];
        }
        perm_acc_mean(a, N, s0 / m);
        perm_acc_mean(a, N, s1 / m);
        perm_acc_mean(a, N, s2 / m);
        perm_acc_mean(a, N, s3 / m);
    }
    for (; r < R; r++) {
        const uint32_t *ix = idx + (size_t)r * m;
        double s = 0;
        for (int j = 0; j < m; j++) s += sc[ix[j]];
        perm_acc_mean(a, N, s / m);
    }
}

/* p (N) and *z of a after all R resamples: p_i = (1 + #{mean >= thr_i}) / (1 + R). */
static void perm_acc_finish(const perm_acc *a, int N, int R, double *p, double *z) {
    int64_t above = 0;
    for (int q = N - 1; q >= 0; q--) {
        above += a->hist[q + 1];
        p[a->order[q]] = (1.0 + (double)above) / (1.0 + R);
    }
    *z = NAN;
    if (R < 2 || !(a->hi > a->lo)) return;
    double var = (a->s2 - a->s1 * a->s1 / R) / (R - 1);
    if (var > 0) *z = (a->obs_k - (a->c + a->s1 / R)) / sqrt(var);
}

/* The next R uniform random m-subsets of the indices 0..total-1 into idx (R, m), by a partial
 * Fisher-Yates shuffle of perm (total), carried over from draw to draw (the arrangement that
 * one draw leaves does not bias the next). */
static void perm_draw(gsl_rng *rng, uint32_t *perm, size_t total, int m, int R, uint32_t *idx) {
    for (int r = 0; r < R; r++) {
        uint32_t *out = idx + (size_t)r * m;
        for (int j = 0; j < m; j++) {
            size_t u = (size_t)j + gsl_rng_uniform_int(rng, total - (size_t)j);
            uint32_t tmp = perm[u];
            perm[u] = perm[j];
            perm[j] = tmp;
            out[j] = tmp;
        }
    }
}

/* Adds the device's sums (R, na) of R resamples to the tests acc[0..na), each in order: the
 * same means, in the same order, as perm_acc_add on the same subsets. */
static void perm_acc_sums(perm_acc *acc, int na, const double *sums, int R, int N, int m) {
    #pragma omp parallel for schedule(dynamic) if (na > 1)
    for (int a = 0; a < na; a++)
        for (int r = 0; r < R; r++) perm_acc_mean(&acc[a], N, sums[(size_t)r * na + a] / m);
}

/* The device's handle for the tests acc[0..na), or NULL when there is none, the work is below
 * its minimum or it cannot open one. */
static void *perm_open(const pmi_sum_device *dev, const perm_acc *acc, int na, size_t total, int m, int R) {
    if (!dev || (double)na * R * m < dev->min_work) return NULL;
    double *rows = util_malloc(total * (size_t)na * sizeof *rows);
    for (size_t i = 0; i < total; i++)
        for (int a = 0; a < na; a++) rows[i * (size_t)na + a] = acc[a].scores[i];
    void *h = dev->open(rows, na, (int64_t)total);
    free(rows);
    return h;
}

/* The permutation test of the active tests acc[0..na) over R resamples from seed, the sums on
 * dev when it takes them (a failed chunk and the rest are summed here); -1 when GSL cannot
 * create its generator. */
static int perm_run(const pmi_sum_device *dev, perm_acc *acc, int na, int N, int m, int R, uint64_t seed) {
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng) return -1;
    gsl_rng_set(rng, (unsigned long)seed);
    size_t total = (size_t)N * m;
    void *h = perm_open(dev, acc, na, total, m, R);
    int chunk = h ? dev->max_subsets(m, na) : PERM_CHUNK_INDICES / m;
    chunk = chunk < 1 ? 1 : h ? chunk : chunk > PERM_CHUNK ? PERM_CHUNK : chunk;
    uint32_t *perm = util_malloc(total * sizeof *perm), *idx = util_malloc((size_t)chunk * m * sizeof *idx);
    double *sums = h ? util_malloc((size_t)chunk * na * sizeof *sums) : NULL;
    for (size_t i = 0; i < total; i++) perm[i] = (uint32_t)i;
    for (int done = 0; done < R;) {
        int n = R - done < chunk ? R - done : chunk;
        perm_draw(rng, perm, total, m, n, idx);
        if (h && dev->sums(h, idx, n, m, sums) == 0) {
            perm_acc_sums(acc, na, sums, n, N, m);
        } else {
            if (h) dev->close(h), h = NULL;
            #pragma omp parallel for schedule(dynamic) if (na > 1)
            for (int a = 0; a < na; a++) perm_acc_add(&acc[a], idx, n, N, m);
        }
        done += n;
    }
    if (h) dev->close(h);
    free(perm);
    free(idx);
    free(sums);
    gsl_rng_free(rng);
    return 0;
}

int pmi_perm_batch(const double *const *scores, int T, int N, int m, int k, int permutations, uint64_t seed,
                   double *p, double *z) {
    return pmi_perm_batch_on(NULL, scores, T, N, m, k, permutations, seed, p, z);
}

int pmi_perm_batch_on(const pmi_sum_device *dev, const double *const *scores, int T, int N, int m, int k,
                      int permutations, uint64_t seed, double *p, double *z) {
    if (!scores || !p || !z || T < 0) { set_error("pmi: perm batch: NULL scores, p or z, or T = %d < 0", T); return -1; }
    if (check_shape(N, m, k, permutations)) return -1;
    for (int t = 0; t < T; t++)
        if (scores[t] && check_finite(scores[t], N, m, t)) return -1;
    for (size_t i = 0; i < (size_t)T * N; i++) p[i] = NAN;
    for (int t = 0; t < T; t++) z[t] = NAN;
    int na = 0, *active = util_malloc(((size_t)T + 1) * sizeof *active);
    for (int t = 0; t < T; t++)
        if (scores[t]) active[na++] = t;
    perm_acc *acc = util_calloc((size_t)na + 1, sizeof *acc);
    for (int a = 0; a < na; a++) perm_acc_init(&acc[a], scores[active[a]], N, m, k);
    int rc = permutations > 0 && na > 0 ? perm_run(dev, acc, na, N, m, permutations, seed) : 0;
    if (rc) set_error("pmi: cannot create the permutation test's random generator (N = %d, m = %d)", N, m);
    for (int a = 0; a < na; a++) {
        if (!rc && permutations > 0) perm_acc_finish(&acc[a], N, permutations, p + (size_t)active[a] * N, &z[active[a]]);
        perm_acc_free(&acc[a]);
    }
    free(acc);
    free(active);
    return rc;
}

double pmi_perm_p(const double *scores, int N, int m, int k, int permutations, uint64_t seed) {
    if (check_args(scores, N, m, k, permutations) != 0 || permutations == 0) return NAN;
    double *p = util_malloc((size_t)N * sizeof *p), z, pk = NAN;
    if (pmi_perm_batch(&scores, 1, N, m, k, permutations, seed, p, &z) == 0) pk = p[k];
    free(p);
    return pk;
}

void pmi_result_set_perm(pmi_result *r, const double *p_all, double z) {
    r->p[P_PERM] = p_all[r->k];
    r->p_nway[P_PERM] = pmi_holm_min(p_all, r->N, &r->nway_index[P_PERM]);
    r->z_perm = z;
}

/* ---- verification ---------------------------------------------------------------------- */
/* Per mini-dataset moments: mean, sum of squared deviations, median. */
typedef struct {
    double *mean, *ss, *median;
} pool_stats;

static void pool_stats_free(pool_stats *ps) {
    free(ps->mean);
    free(ps->ss);
    free(ps->median);
}

static void pool_stats_fill(pool_stats *ps, const double *scores, int N, int m) {
    ps->mean = util_malloc((size_t)N * sizeof(double));
    ps->ss = util_malloc((size_t)N * sizeof(double));
    ps->median = util_malloc((size_t)N * sizeof(double));
    double *tmp = util_malloc((size_t)m * sizeof *tmp);
    for (int i = 0; i < N; i++) {
        const double *row = scores + (size_t)i * m;
        ps->mean[i] = gsl_stats_mean(row, 1, (size_t)m);
        ps->ss[i] = gsl_stats_tss_m(row, 1, (size_t)m, ps->mean[i]);
        memcpy(tmp, row, (size_t)m * sizeof *tmp);
        ps->median[i] = gsl_stats_median(tmp, 1, (size_t)m);
    }
    free(tmp);
}

/* (best mean - runner-up mean) / sd of all scores; 0 when the sd is 0. */
static double margin_of(const double *mean, int N, const double *scores, size_t total) {
    int best = argmax_d(mean, N), second = best == 0 ? 1 : 0;
    for (int i = 0; i < N; i++)
        if (i != best && mean[i] > mean[second]) second = i;
    double sd = gsl_stats_sd(scores, 1, total);
    return sd > 0 ? (mean[best] - mean[second]) / sd : 0.0;
}

/* Welch p of every mini-dataset against the other N-1, from the pooled moments (the rest's
 * sum of squares is combined exactly: sum_j ss_j + m (mean_j - mean_rest)^2). */
static void welch_all(const pool_stats *ps, int N, int m, double *p) {
    int n2 = (N - 1) * m;
    double msum = 0;
    for (int j = 0; j < N; j++) msum += ps->mean[j];
    for (int i = 0; i < N; i++) {
        if (m < 2) { p[i] = NAN; continue; }
        double mr = (msum - ps->mean[i]) / (N - 1), ss = 0;
        for (int j = 0; j < N; j++)
            if (j != i) ss += ps->ss[j] + m * (ps->mean[j] - mr) * (ps->mean[j] - mr);
        p[i] = welch_from_moments(ps->mean[i], ps->ss[i] / (m - 1), m, mr, ss / (n2 - 1), n2);
    }
}

/* Mann-Whitney p of every mini-dataset against the rest: one ranking of all N*m serves all. */
static void mw_all(const double *scores, int N, int m, double *p) {
    size_t total = (size_t)N * m;
    double *rank = util_malloc(total * sizeof *rank), *u1 = util_malloc((size_t)N * sizeof *u1);
    double tie = midranks(scores, total, rank);
    for (int i = 0; i < N; i++) {
        double r = 0;
        for (int j = 0; j < m; j++) r += rank[(size_t)i * m + j];
        u1[i] = r - 0.5 * m * (m + 1.0);
    }
    mw_pvalues(u1, N, m, (N - 1) * m, tie, p);
    free(rank);
    free(u1);
}

/* pall (P_COUNT, N): every statistic's p-value for every mini-dataset, *z D_k's permutation z;
 * -1 as pmi_perm_batch(). */
static int pvalues_all(const double *scores, int N, int m, int k, const pool_stats *ps, int R, uint64_t seed, double *pall, double *z) {
    for (int i = 0; i < N; i++) pall[(size_t)P_RANK * N + i] = rank_p(ps->mean, N, i);
    welch_all(ps, N, m, pall + (size_t)P_WELCH * N);
    mw_all(scores, N, m, pall + (size_t)P_MW * N);
    return pmi_perm_batch(&scores, 1, N, m, k, R, seed, pall + (size_t)P_PERM * N, z);
}

int pmi_verify(const double *scores, int N, int m, int k, int permutations, uint64_t seed,
               pmi_result *res, double *pool_mean, double *pool_median) {
    if (!res) { set_error("pmi: res is NULL"); return -1; }
    if (check_args(scores, N, m, k, permutations) != 0) return -1;
    pool_stats ps = {0};
    double *pall = util_malloc((size_t)P_COUNT * N * sizeof *pall);
    double z;
    pool_stats_fill(&ps, scores, N, m);
    if (pvalues_all(scores, N, m, k, &ps, permutations, seed, pall, &z) != 0) {
        free(pall);
        pool_stats_free(&ps);
        return -1;
    }
    memset(res, 0, sizeof *res);
    res->N = N, res->m = m, res->k = k;
    res->identified = argmax_d(ps.mean, N);
    res->identified_median = argmax_d(ps.median, N);
    res->margin = margin_of(ps.mean, N, scores, (size_t)N * m);
    for (int s = 0; s < P_COUNT; s++) {
        if (s == P_PERM) continue;
        res->p[s] = pall[(size_t)s * N + k];
        res->p_nway[s] = pmi_holm_min(pall + (size_t)s * N, N, &res->nway_index[s]);
    }
    pmi_result_set_perm(res, pall + (size_t)P_PERM * N, z);
    if (pool_mean) memcpy(pool_mean, ps.mean, (size_t)N * sizeof *pool_mean);
    if (pool_median) memcpy(pool_median, ps.median, (size_t)N * sizeof *pool_median);
    free(pall);
    pool_stats_free(&ps);
    return 0;
}

/* ---- metrics over models ---------------------------------------------------------------- */
double pmi_auc(const double *pos, int npos, const double *neg, int nneg) {
    if (!pos || !neg || npos < 1 || nneg < 1 || any_nan(pos, npos) || any_nan(neg, nneg)) return NAN;
    double *v = concat(pos, npos, neg, nneg);
    if (!v) return NAN;
    double tie, u = u_first(v, npos, nneg, &tie);
    free(v);
    return u / ((double)npos * nneg);
}

/* #{x > t}. */
static int count_above(const double *x, int n, double t) {
    int c = 0;
    for (int i = 0; i < n; i++) c += x[i] > t;
    return c;
}

double pmi_tpr_at_fpr(const double *pos, int npos, const double *neg, int nneg, double fpr) {
    if (!pos || !neg || npos < 1 || nneg < 1 || !(fpr >= 0) || any_nan(pos, npos) || any_nan(neg, nneg)) return NAN;
    if (fpr >= 1) return 1.0;
    double *s = util_malloc((size_t)nneg * sizeof *s);
    memcpy(s, neg, (size_t)nneg * sizeof *s);
    gsl_sort(s, 1, (size_t)nneg);
    int j = 0;
    while (j < nneg) {
        int end = j;
        while (end < nneg && s[end] == s[j]) end++;
        if ((double)(nneg - end) / nneg <= fpr) break;
        j = end;
    }
    double t = s[j];
    free(s);
    return (double)count_above(pos, npos, t) / npos;
}

void pmi_mean_ci95(const double *x, int n, double *mean, double *half) {
    double mu = x && n >= 1 ? gsl_stats_mean(x, 1, (size_t)n) : NAN, h = NAN;
    if (x && n >= 2) h = gsl_cdf_tdist_Qinv(0.025, n - 1.0) * gsl_stats_sd_m(x, 1, (size_t)n, mu) / sqrt((double)n);
    if (mean) *mean = mu;
    if (half) *half = h;
}

void pmi_wilson95(int k, int n, double *lo, double *hi) {
    if (n <= 0) { *lo = *hi = NAN; return; }
    double z = gsl_cdf_ugaussian_Pinv(0.975), z2 = z * z;
    double c = (k + z2 / 2) / (n + z2), h = z / (n + z2) * sqrt((double)k * (n - k) / n + z2 / 4);
    *lo = fmax(0, c - h);
    *hi = fmin(1, c + h);
}
