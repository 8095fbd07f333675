/* test_pmi: the membership scores against numpy, the single statistics against scipy, the
 * verification on hand examples, the calibration of the exact tests under H0, and the batched
 * permutation test against the one-vector test it replaced (bit for bit). */
#include "testutil.h"
#include "pmi.h"
#include "perm_reference.h"
#include <float.h>
#include <math.h>
#include <omp.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>

/* Asserts |got - want| <= rel * max(|want|, 1e-300), printing both on failure. */
static void assert_rel(double got, double want, double rel, const char *what) {
    double err = fabs(got - want), lim = rel * fmax(fabs(want), 1e-300);
    if (!(err <= lim)) fail_msg("%s: got %.17g, want %.17g (rel err %.3g > %.3g)", what, got, want, err / fabs(want), rel);
}

/* Reads up to n numbers from text into out; returns how many were read. */
static int parse_numbers(const char *text, double *out, int n) {
    int k = 0;
    char *end;
    for (const char *s = text; k < n; s = end) {
        double v = strtod(s, &end);
        if (end == s) break;
        out[k++] = v;
    }
    return k;
}

/* ---- scipy reference cases ------------------------------------------------------------- */
enum { REF_WELCH, REF_MW, REF_AUC, REF_MEAN, REF_HALF, REF_COUNT };
#define NCASES 9
#define MAXS 500

typedef struct {
    const char *name;
    double x[MAXS], y[MAXS];
    int n1, n2;
    int exact;          /* the Mann-Whitney method pmi must use: 1 exact, 0 asymptotic */
} sample_case;

static sample_case cases[NCASES];
static double ref[NCASES][REF_COUNT];

static void set_case(sample_case *c, const char *name, const double *x, int n1, const double *y, int n2, int exact) {
    c->name = name, c->n1 = n1, c->n2 = n2, c->exact = exact;
    memcpy(c->x, x, n1 * sizeof *x);
    memcpy(c->y, y, n2 * sizeof *y);
}

/* n1 draws of N(shift, 1) then n2 of lognormal(0, 1), rounded to `decimals` (< 0: not). */
static void random_case(sample_case *c, const char *name, int n1, int n2, double shift, int decimals, int exact, uint64_t seed) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    double scale = decimals >= 0 ? pow(10, decimals) : 0;
    c->name = name, c->n1 = n1, c->n2 = n2, c->exact = exact;
    for (int i = 0; i < n1; i++) c->x[i] = shift + gsl_ran_gaussian(r, 1.0);
    for (int i = 0; i < n2; i++) c->y[i] = gsl_ran_lognormal(r, 0.0, 1.0);
    for (int i = 0; scale > 0 && i < n1; i++) c->x[i] = round(c->x[i] * scale) / scale;
    for (int i = 0; scale > 0 && i < n2; i++) c->y[i] = round(c->y[i] * scale) / scale;
    gsl_rng_free(r);
}

static const char *ref_script =
    "import sys, warnings, numpy as np\n"
    "from scipy import stats\n"
    "warnings.simplefilter('ignore')\n"
    "for line in open(sys.argv[1]):\n"
    "    f, a, b = line.split('|')\n"
    "    x = np.array(a.split(), dtype=float); y = np.array(b.split(), dtype=float)\n"
    "    w = stats.ttest_ind(x, y, equal_var=False, alternative='greater').pvalue\n"
    "    mw = stats.mannwhitneyu(x, y, alternative='greater', method='exact' if int(f) else 'asymptotic', use_continuity=True)\n"
    "    auc = stats.mannwhitneyu(x, y).statistic / (len(x) * len(y))\n"
    "    half = stats.t.ppf(0.975, len(x) - 1) * np.std(x, ddof=1) / np.sqrt(len(x))\n"
    "    print(' '.join(repr(float(v)) for v in (w, mw.pvalue, auc, np.mean(x), half)))\n";

static void write_cases(const char *path) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int c = 0; c < NCASES; c++) {
        fprintf(f, "%d |", cases[c].exact);
        for (int i = 0; i < cases[c].n1; i++) fprintf(f, " %.17g", cases[c].x[i]);
        fprintf(f, " |");
        for (int i = 0; i < cases[c].n2; i++) fprintf(f, " %.17g", cases[c].y[i]);
        fprintf(f, "\n");
    }
    fclose(f);
}

/* Builds the cases (small without ties, with ties, zero variance, large random, around the
 * exact Mann-Whitney limit) and computes their scipy references once for the group. */
static int setup_cases(void **state) {
    static const double ax[] = {2.1, 3.7, 0.4}, ay[] = {1.2, -0.5, 0.9, 2.5, 1.8};
    static const double bx[] = {1, 2, 2, 3, 5, 5}, by[] = {0, 1, 1, 2, 2, 4, 3, 1};
    static const double dx[] = {2, 2, 2, 2}, dy[] = {1, 2.5, 3, 0, 1.5};
    set_case(&cases[0], "n1=3 n2=5 no ties", ax, 3, ay, 5, 1);
    set_case(&cases[1], "n1=6 n2=8 ties", bx, 6, by, 8, 0);
    set_case(&cases[2], "x constant", dx, 4, dy, 5, 0);
    random_case(&cases[3], "n1=10 n2=20 no ties", 10, 20, 0.8, -1, 1, 11);
    random_case(&cases[4], "n1=5 n2=55 no ties (exact limit)", 5, 55, 1.0, -1, 1, 12);
    random_case(&cases[5], "n1=30 n2=31 no ties (asymptotic)", 30, 31, 0.5, -1, 0, 13);
    random_case(&cases[6], "n1=50 n2=450 no ties", 50, 450, 1.2, -1, 0, 14);
    random_case(&cases[7], "n1=50 n2=450 ties", 50, 450, 1.2, 1, 0, 15);
    random_case(&cases[8], "n1=12 n2=40 ties", 12, 40, 0.3, 0, 0, 16);
    char path[300], args[320], out[8192];
    snprintf(path, sizeof path, "%s/cases.txt", tu_tmpdir());
    write_cases(path);
    snprintf(args, sizeof args, "'%s'", path);
    if (tu_python(ref_script, args, out, sizeof out) != 0) return -1;
    return parse_numbers(out, &ref[0][0], NCASES * REF_COUNT) == NCASES * REF_COUNT ? 0 : -1;
}

static void test_welch_matches_scipy(void **state) {
    for (int c = 0; c < NCASES; c++) {
        const sample_case *s = &cases[c];
        assert_rel(pmi_welch_greater(s->x, s->n1, s->y, s->n2), ref[c][REF_WELCH], 1e-9, s->name);
    }
}

static void test_mannwhitney_matches_scipy(void **state) {
    for (int c = 0; c < NCASES; c++) {
        const sample_case *s = &cases[c];
        assert_rel(pmi_mannwhitney_greater(s->x, s->n1, s->y, s->n2), ref[c][REF_MW], s->exact ? 1e-12 : 1e-9, s->name);
    }
}

static void test_auc_matches_scipy(void **state) {
    for (int c = 0; c < NCASES; c++) {
        const sample_case *s = &cases[c];
        assert_rel(pmi_auc(s->x, s->n1, s->y, s->n2), ref[c][REF_AUC], 1e-12, s->name);
    }
}

static void test_ci95_matches_scipy(void **state) {
    for (int c = 0; c < NCASES; c++) {
        const sample_case *s = &cases[c];
        double mean, half;
        pmi_mean_ci95(s->x, s->n1, &mean, &half);
        assert_rel(mean, ref[c][REF_MEAN], 1e-12, s->name);
        /* 1e-8: scipy 1.10's t.ppf(0.975, 49) is 1.3e-9 off (mpmath agrees with GSL) */
        assert_rel(half, ref[c][REF_HALF], 1e-8, s->name);
    }
    double one = 3.5, mean, half;
    pmi_mean_ci95(&one, 1, &mean, &half);
    assert_true(mean == 3.5 && isnan(half));
}

/* ---- scores against numpy ------------------------------------------------------------- */
#define NROWS 11
#define NCLS 4

/* Float log-softmax of logits, as a float network output would hold it. */
static void log_softmax_f(const float *z, float *out) {
    float mx = z[0], s = 0;
    for (int j = 1; j < NCLS; j++) mx = fmaxf(mx, z[j]);
    for (int j = 0; j < NCLS; j++) s += expf(z[j] - mx);
    for (int j = 0; j < NCLS; j++) out[j] = z[j] - mx - logf(s);
}

static const char *score_script =
    "import sys, numpy as np\n"
    "np.seterr(all='ignore')\n"
    "FLOOR, L1M = float(sys.argv[2]), float(sys.argv[3])\n"
    "for line in open(sys.argv[1]):\n"
    "    v = line.split(); y = int(v[0]); raw = np.array(v[1:], dtype=np.float32)\n"
    "    lp = np.clip(raw.astype(np.float64), FLOOR, 0.0); p = np.exp(lp)\n"
    "    l1m = np.maximum(np.log1p(-p), L1M)\n"
    "    other = np.arange(len(p)) != y\n"
    "    out = [lp[y], p[y], float(np.argmax(raw) == y), np.sum(p * lp),\n"
    "           (1 - p[y]) * lp[y] + np.sum(p[other] * l1m[other]), lp[y] - l1m[y]]\n"
    "    print(' '.join(repr(float(o)) for o in out))\n";

static void test_scores_match_numpy(void **state) {
    static const float logits[][NCLS] = {
        {2.0f, 0.5f, -1.0f, 0.1f}, {30, 0, -2, 1}, {12, 0, -2, 1}, {200, 0, -2, 1}, {0, 0, 0, 0}};
    static const int rowsrc[NROWS] = {0, 0, 1, 2, 1, 3, 4, 4, -1, -1, 2};
    static const int32_t y[NROWS] = {0, 2, 0, 0, 2, 1, 3, 0, 1, 0, 3};
    float logp[NROWS][NCLS];
    for (int i = 0; i < NROWS; i++) {
        if (rowsrc[i] >= 0) log_softmax_f(logits[rowsrc[i]], logp[i]);
        else for (int j = 0; j < NCLS; j++) logp[i][j] = j == 0 ? 0.0f : -INFINITY;
    }
    assert_true(logp[2][0] == 0.0f);   /* p_y = 1 to float precision: log(1 - p) must be floored */
    char path[300], args[400], out[8192];
    snprintf(path, sizeof path, "%s/logp.txt", tu_tmpdir());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < NROWS; i++) {
        fprintf(f, "%d", y[i]);
        for (int j = 0; j < NCLS; j++) fprintf(f, " %.9g", logp[i][j]);
        fprintf(f, "\n");
    }
    fclose(f);
    snprintf(args, sizeof args, "'%s' %.17g %.17g", path, PMI_LOGP_MIN, PMI_LOG1MP_MIN);
    assert_int_equal(tu_python(score_script, args, out, sizeof out), 0);
    double want[NROWS * SCORE_DEFAULT_COUNT], got[NROWS], lnoise[NROWS];
    assert_int_equal(parse_numbers(out, want, NROWS * SCORE_DEFAULT_COUNT), NROWS * SCORE_DEFAULT_COUNT);
    pmi_scores(SCORE_LNOISE, &logp[0][0], y, NROWS, NCLS, lnoise);   /* one answer's term: its correctness */
    for (int i = 0; i < NROWS; i++) assert_true(lnoise[i] == want[i * SCORE_DEFAULT_COUNT + SCORE_CORRECT]);
    for (int k = 0; k < SCORE_DEFAULT_COUNT; k++) {
        pmi_scores((pmi_score_kind)k, &logp[0][0], y, NROWS, NCLS, got);
        for (int i = 0; i < NROWS; i++) {
            char what[64];
            snprintf(what, sizeof what, "%s row %d", pmi_score_name((pmi_score_kind)k), i);
            if (!isfinite(got[i])) fail_msg("%s: not finite (%g)", what, got[i]);
            double w = want[i * SCORE_DEFAULT_COUNT + k];
            if (fabs(got[i] - w) > 1e-300) assert_rel(got[i], w, 1e-9, what);
        }
    }
}

static void test_score_names_and_bad_input(void **state) {
    for (int k = 0; k < SCORE_COUNT; k++) assert_int_equal(pmi_score_parse(pmi_score_name((pmi_score_kind)k)), k);
    for (int k = 0; k < P_COUNT; k++) assert_int_equal(pmi_pvalue_parse(pmi_pvalue_name((pmi_pvalue)k)), k);
    assert_int_equal(pmi_score_parse("lss"), -1);
    assert_int_equal(pmi_pvalue_parse(NULL), -1);
    assert_string_equal(pmi_score_name(SCORE_COUNT), "unknown");
    float logp[2][2] = {{-0.1f, -2.4f}, {NAN, -0.5f}};
    int32_t y[3] = {2, 0, 0};
    double out[2];
    pmi_scores(SCORE_LOSS, &logp[0][0], y, 2, 2, out);
    assert_true(isnan(out[0]) && isnan(out[1]));   /* label out of range; NaN input */
    pmi_scores((pmi_score_kind)99, &logp[0][0], y + 1, 1, 2, out);
    assert_true(isnan(out[0]));
}

/* ---- hand examples ------------------------------------------------------------------- */
static void test_rank_p_hand(void **state) {
    const double mean[5] = {0.1, 0.5, 0.3, 0.5, 0.2};
    assert_true(pmi_rank_p(mean, 5, 1) == 0.4);   /* the tie with index 3 counts against k */
    assert_true(pmi_rank_p(mean, 5, 3) == 0.4);
    assert_true(pmi_rank_p(mean, 5, 2) == 0.6);
    assert_true(pmi_rank_p(mean, 5, 0) == 1.0);
    assert_true(isnan(pmi_rank_p(mean, 5, 5)));
}

static void test_holm_min_hand(void **state) {
    const double a[4] = {0.2, 0.01, 0.03, NAN}, b[2] = {0.5, 0.4}, c[2] = {0.9, 0.6}, d[2] = {0.1, 0.1}, e[2] = {NAN, NAN};
    int i;
    assert_rel(pmi_holm_min(a, 4, &i), 0.04, 1e-15, "a");
    assert_int_equal(i, 1);
    assert_rel(pmi_holm_min(b, 2, &i), 0.8, 1e-15, "b");
    assert_int_equal(i, 1);
    assert_true(pmi_holm_min(c, 2, NULL) == 1.0);
    assert_rel(pmi_holm_min(d, 2, &i), 0.2, 1e-15, "d");
    assert_int_equal(i, 0);
    assert_true(isnan(pmi_holm_min(e, 2, &i)));
    assert_int_equal(i, -1);
}

static void test_tpr_at_fpr_hand(void **state) {
    const double neg[10] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
    const double pos[5] = {0.35, 0.75, 0.95, 1.5, 2.0};
    assert_true(pmi_tpr_at_fpr(pos, 5, neg, 10, 0.0) == 0.4);    /* t = 1.0 */
    assert_true(pmi_tpr_at_fpr(pos, 5, neg, 10, 0.1) == 0.6);    /* t = 0.9 */
    assert_true(pmi_tpr_at_fpr(pos, 5, neg, 10, 0.29) == 0.6);   /* t = 0.8 */
    assert_true(pmi_tpr_at_fpr(pos, 5, neg, 10, 0.3) == 0.8);    /* t = 0.7 */
    assert_true(pmi_tpr_at_fpr(pos, 5, neg, 10, 1.0) == 1.0);
    const double tneg[6] = {0.5, 0.5, 0.5, 1.0, 1.0, 1.0}, tpos[2] = {0.7, 1.2};
    assert_true(pmi_tpr_at_fpr(tpos, 2, tneg, 6, 0.4) == 0.5);   /* ties: t = 1.0 */
    assert_true(pmi_tpr_at_fpr(tpos, 2, tneg, 6, 0.5) == 1.0);   /* t = 0.5 */
    assert_true(isnan(pmi_tpr_at_fpr(tpos, 2, tneg, 6, -0.1)));
    assert_true(isnan(pmi_tpr_at_fpr(tpos, 0, tneg, 6, 0.1)));
}

static void test_welch_degenerate(void **state) {
    const double two[3] = {2, 2, 2}, one[3] = {1, 1, 1};
    assert_true(pmi_welch_greater(two, 3, one, 3) == 0.0);
    assert_true(pmi_welch_greater(one, 3, two, 3) == 1.0);
    assert_true(pmi_welch_greater(one, 3, one, 3) == 0.5);
    assert_true(isnan(pmi_welch_greater(one, 1, two, 3)));
    assert_true(pmi_mannwhitney_greater(one, 3, one, 3) == 1.0);   /* all tied, as scipy */
    assert_true(isnan(pmi_mannwhitney_greater(one, 0, two, 3)));
    const double withnan[2] = {1, NAN};
    assert_true(isnan(pmi_mannwhitney_greater(withnan, 2, two, 3)));
    assert_true(isnan(pmi_auc(withnan, 2, two, 3)));
}

/* Hand example: mean and median disagree; every p of verify equals the direct statistic. */
static void test_verify_hand(void **state) {
    const double s[12] = {1, 2, 3, 10, /* mean 4, median 2.5 */
                          3, 3.5, 4, 4.5, /* mean 3.75, median 3.75 */
                          0, 1, 1, 2}; /* mean 1, median 1 */
    pmi_result r;
    double mean[3], med[3];
    assert_int_equal(pmi_verify(s, 3, 4, 1, 499, 42, &r, mean, med), 0);
    assert_int_equal(r.N, 3);
    assert_int_equal(r.k, 1);
    assert_int_equal(r.identified, 0);
    assert_int_equal(r.identified_median, 1);
    assert_true(mean[0] == 4 && mean[1] == 3.75 && mean[2] == 1);
    assert_true(med[0] == 2.5 && med[1] == 3.75 && med[2] == 1);
    double mu = 35.0 / 12, ss = 0;
    for (int i = 0; i < 12; i++) ss += (s[i] - mu) * (s[i] - mu);
    assert_rel(r.margin, 0.25 / sqrt(ss / 11), 1e-12, "margin");
    assert_true(r.p[P_RANK] == 2.0 / 3);
    assert_true(r.p[P_PERM] == pmi_perm_p(s, 3, 4, 1, 499, 42));
    double pw[3], pm[3];
    for (int i = 0; i < 3; i++) {
        double rest[8];
        for (int j = 0, n = 0; j < 3; j++)
            if (j != i) memcpy(rest + 4 * n++, s + 4 * j, 4 * sizeof *s);
        pw[i] = pmi_welch_greater(s + 4 * i, 4, rest, 8);
        pm[i] = pmi_mannwhitney_greater(s + 4 * i, 4, rest, 8);
    }
    assert_rel(r.p[P_WELCH], pw[1], 1e-12, "welch");
    assert_rel(r.p[P_MW], pm[1], 1e-12, "mw");
    int iw, im;
    assert_rel(r.p_nway[P_WELCH], pmi_holm_min(pw, 3, &iw), 1e-12, "nway welch");
    assert_rel(r.p_nway[P_MW], pmi_holm_min(pm, 3, &im), 1e-12, "nway mw");
    assert_int_equal(r.nway_index[P_WELCH], iw);
    assert_int_equal(r.nway_index[P_MW], im);
    assert_true(r.p_nway[P_RANK] == 1.0);   /* rank has no N-way power: N * (1/N) */
}

/* Equal means: the lowest index is identified, the margin is 0; all equal scores: sd 0. */
static void test_verify_ties(void **state) {
    const double s[6] = {1, 3, 3, 1, 2, 2}, c[6] = {5, 5, 5, 5, 5, 5};
    pmi_result r;
    assert_int_equal(pmi_verify(s, 3, 2, 2, 0, 1, &r, NULL, NULL), 0);
    assert_int_equal(r.identified, 0);
    assert_int_equal(r.identified_median, 0);
    assert_true(r.margin == 0.0);
    assert_true(r.p[P_RANK] == 1.0);
    assert_true(isnan(r.p[P_PERM]) && isnan(r.p_nway[P_PERM]));
    assert_int_equal(r.nway_index[P_PERM], -1);
    assert_int_equal(pmi_verify(c, 3, 2, 0, 99, 1, &r, NULL, NULL), 0);
    assert_true(r.margin == 0.0);
    assert_true(r.p[P_PERM] == 1.0 && r.p[P_WELCH] == 0.5 && r.p[P_MW] == 1.0);
}

/* In a small pool without ties verify uses the exact Mann-Whitney distribution. */
static void test_verify_small_pool_exact(void **state) {
    const sample_case *c = &cases[3];   /* n1 = 10, n2 = 20: as a pool of N = 3, m = 10, k = 0 */
    double s[30];
    memcpy(s, c->x, 10 * sizeof *s);
    memcpy(s + 10, c->y, 20 * sizeof *s);
    pmi_result r;
    assert_int_equal(pmi_verify(s, 3, 10, 0, 99, 7, &r, NULL, NULL), 0);
    assert_rel(r.p[P_MW], ref[3][REF_MW], 1e-9, "verify mw exact");
    assert_rel(r.p[P_WELCH], ref[3][REF_WELCH], 1e-9, "verify welch");
}

static void test_verify_bad_input(void **state) {
    double s[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    pmi_result r;
    assert_int_equal(pmi_verify(s, 1, 8, 0, 9, 1, &r, NULL, NULL), -1);
    assert_non_null(strstr(pmi_error(), "N = 1"));
    assert_int_equal(pmi_verify(s, 2, 4, 2, 9, 1, &r, NULL, NULL), -1);
    assert_non_null(strstr(pmi_error(), "k = 2"));
    assert_int_equal(pmi_verify(s, 2, 0, 0, 9, 1, &r, NULL, NULL), -1);
    assert_non_null(strstr(pmi_error(), "m = 0"));
    assert_int_equal(pmi_verify(s, 2, 4, 0, -1, 1, &r, NULL, NULL), -1);
    assert_non_null(strstr(pmi_error(), "permutations"));
    assert_int_equal(pmi_verify(NULL, 2, 4, 0, 9, 1, &r, NULL, NULL), -1);
    assert_int_equal(pmi_verify(s, 2, 4, 0, 9, 1, NULL, NULL, NULL), -1);
    s[6] = NAN;
    assert_int_equal(pmi_verify(s, 2, 4, 0, 9, 1, &r, NULL, NULL), -1);
    assert_non_null(strstr(pmi_error(), "score [1][2]"));
    assert_true(isnan(pmi_perm_p(s, 2, 4, 0, 9, 1)));
}

/* ---- permutation test --------------------------------------------------------------- */
/* Pool (N, m) of iid lognormal(0, 1.5) scores, D_k shifted by `shift`. */
static void h0_pool(double *s, int N, int m, int k, double shift, uint64_t seed) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    for (int i = 0; i < N * m; i++) s[i] = gsl_ran_lognormal(r, 0.0, 1.5) + (i / m == k ? shift : 0);
    gsl_rng_free(r);
}

static void test_perm_strong_signal(void **state) {
    double s[20 * 10];
    h0_pool(s, 20, 10, 7, 100.0, 3);
    pmi_result r;
    assert_int_equal(pmi_verify(s, 20, 10, 7, 999, 5, &r, NULL, NULL), 0);
    assert_true(r.p[P_PERM] == 1.0 / 1000);
    assert_true(r.p[P_RANK] == 1.0 / 20);
    assert_int_equal(r.identified, 7);
    assert_rel(r.p_nway[P_PERM], 20.0 / 1000, 1e-12, "nway perm");
    assert_int_equal(r.nway_index[P_PERM], 7);
    assert_int_equal(r.nway_index[P_MW], 7);
    assert_true(r.p[P_MW] < 1e-6 && r.p[P_WELCH] < 1e-6);
}

static void test_perm_deterministic(void **state) {
    double s[10 * 20];
    h0_pool(s, 10, 20, 4, 0.8, 9);
    double p = pmi_perm_p(s, 10, 20, 4, 999, 1234);
    assert_true(p > 1.0 / 1000 && p < 1.0);   /* a moderate p, so seeds can change it */
    assert_true(pmi_perm_p(s, 10, 20, 4, 999, 1234) == p);
    pmi_result r;
    assert_int_equal(pmi_verify(s, 10, 20, 4, 999, 1234, &r, NULL, NULL), 0);
    assert_true(r.p[P_PERM] == p);
    int differs = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) differs |= pmi_perm_p(s, 10, 20, 4, 999, seed) != p;
    assert_true(differs);
}

#define REPS 400

/* p_perm and p_rank of D_k over REPS pools without any membership signal. */
static void h0_pvalues(int N, int m, double *pperm, double *prank) {
    double *s = malloc((size_t)N * m * sizeof *s);
    assert_non_null(s);
    for (int rep = 0; rep < REPS; rep++) {
        pmi_result r;
        h0_pool(s, N, m, 0, 0.0, 1000 + rep);
        assert_int_equal(pmi_verify(s, N, m, rep % N, 199, 5000 + rep, &r, NULL, NULL), 0);
        pperm[rep] = r.p[P_PERM];
        prank[rep] = r.p[P_RANK];
    }
    free(s);
}

/* Under H0 the permutation p-values are uniform (KS below the 1% critical value) and the
 * false-positive rate at alpha = 0.05 is within binomial sampling error. */
static void test_perm_calibrated_under_h0(void **state) {
    double pperm[REPS], prank[REPS];
    h0_pvalues(10, 20, pperm, prank);
    gsl_sort(pperm, 1, REPS);
    double ks = 0;
    int fp = 0;
    for (int i = 0; i < REPS; i++) {
        ks = fmax(ks, fmax((i + 1.0) / REPS - pperm[i], pperm[i] - (double)i / REPS));
        fp += pperm[i] <= 0.05;
    }
    double crit = 1.63 / sqrt(REPS), fpr = (double)fp / REPS;
    if (ks >= crit) fail_msg("KS statistic %.4f >= 1%% critical value %.4f", ks, crit);
    if (fpr > 0.05 + 3 * sqrt(0.05 * 0.95 / REPS)) fail_msg("false-positive rate %.4f at alpha 0.05", fpr);
}

/* Under H0 p_rank takes only the values j/N, each with probability 1/N (chi-square, 1%). */
static void test_rank_uniform_under_h0(void **state) {
    enum { N = 10 };
    double pperm[REPS], prank[REPS];
    int count[N] = {0};
    h0_pvalues(N, 5, pperm, prank);
    for (int i = 0; i < REPS; i++) {
        int j = (int)lround(prank[i] * N);
        assert_true(j >= 1 && j <= N && prank[i] == (double)j / N);
        count[j - 1]++;
    }
    double chi2 = 0, e = (double)REPS / N;
    for (int j = 0; j < N; j++) chi2 += (count[j] - e) * (count[j] - e) / e;
    double crit = gsl_cdf_chisq_Qinv(0.01, N - 1);
    if (chi2 >= crit) fail_msg("chi-square %.3f >= 1%% critical value %.3f", chi2, crit);
}

/* ---- reference calibration ---------------------------------------------------------- */
/* numpy, written from the rule in pmi.h: diff = s - mean; lira = (s - mu) / sigma with the pooled
 * sigma below PMI_LIRA_PERSAMPLE_MIN references, else the per-sample sd floored at
 * PMI_LIRA_SIGMA_FLOOR x pooled; skip leaves a reference out. Input lines: R n skip, s, ref rows. */
static const char *calib_script =
    "import sys, numpy as np\n"
    "MIN, FLOOR = int(sys.argv[2]), float(sys.argv[3])\n"
    "L = [l.split() for l in open(sys.argv[1])]\n"
    "i = 0\n"
    "while i < len(L):\n"
    "    R, n, skip = map(int, L[i]); s = np.array(L[i + 1], float)\n"
    "    ref = np.array(L[i + 2:i + 2 + R], float); i += 2 + R\n"
    "    if skip >= 0: ref = np.delete(ref, skip, axis=0)\n"
    "    mu = ref.mean(0); sd = ref.std(0, ddof=1); pooled = np.sqrt(np.mean(sd ** 2))\n"
    "    sig = np.maximum(sd, FLOOR * pooled) if ref.shape[0] >= MIN else np.full(n, pooled)\n"
    "    print(' '.join(repr(float(v)) for v in np.concatenate([s - mu, (s - mu) / sig])))\n";

static void test_calibrate_matches_numpy(void **state) {
    enum { n = 9 };
    static const struct { int R, skip; } cases[] = {{2, -1}, {3, 1}, {5, -1}, {17, -1}, {17, 4}, {20, -1}};
    enum { NC = sizeof cases / sizeof cases[0] };
    double s[NC][n], ref[NC][20 * n];
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 77);
    char path[300], args[400], out[32768];
    snprintf(path, sizeof path, "%s/calib.txt", tu_tmpdir());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int c = 0; c < NC; c++) {
        fprintf(f, "%d %d %d\n", cases[c].R, n, cases[c].skip);
        for (int i = 0; i < n; i++) fprintf(f, "%.17g ", s[c][i] = -gsl_ran_lognormal(r, 0, 1.2));
        fprintf(f, "\n");
        for (int q = 0; q < cases[c].R; q++) {
            /* sample 3 has the same score under every reference: the floor of the per-sample sigma */
            for (int i = 0; i < n; i++) fprintf(f, "%.17g ", ref[c][q * n + i] = i == 3 ? -0.5 : s[c][i] * (0.5 + gsl_rng_uniform(r)));
            fprintf(f, "\n");
        }
    }
    fclose(f);
    gsl_rng_free(r);
    snprintf(args, sizeof args, "'%s' %d %.17g", path, PMI_LIRA_PERSAMPLE_MIN, PMI_LIRA_SIGMA_FLOOR);
    assert_int_equal(tu_python(calib_script, args, out, sizeof out), 0);
    double want[NC * 2 * n], got[n];
    assert_int_equal(parse_numbers(out, want, NC * 2 * n), NC * 2 * n);
    for (int c = 0; c < NC; c++)
        for (int k = 0; k < 2; k++) {
            pmi_score_kind kind = k ? SCORE_LIRA : SCORE_DIFF;
            assert_int_equal(pmi_calibrate(kind, s[c], ref[c], cases[c].R, cases[c].skip, n, got), 0);
            for (int i = 0; i < n; i++) {
                char what[64];
                snprintf(what, sizeof what, "%s case %d sample %d", pmi_score_name(kind), c, i);
                assert_rel(got[i], want[(c * 2 + k) * n + i], 1e-12, what);
            }
        }
}

/* Hand values: diff of 1 against references 0 and 4 is -1; lira with R = 2 < 16 uses the
 * pooled sigma sqrt(mean(8, 2)) = sqrt(5). */
static void test_calibrate_hand_and_bad_input(void **state) {
    const double s[2] = {1, 2}, ref[4] = {0, 1, 4, 3};   /* ref rows: (0, 1), (4, 3) */
    double out[2] = {7, 7};
    assert_int_equal(pmi_calibrate(SCORE_DIFF, s, ref, 2, -1, 2, out), 0);
    assert_rel(out[0], -1, 1e-15, "diff 0"); assert_rel(out[1], 0, 1e-15, "diff 1");
    assert_int_equal(pmi_calibrate(SCORE_LIRA, s, ref, 2, -1, 2, out), 0);
    assert_rel(out[0], -1 / sqrt(5), 1e-15, "lira 0");
    assert_int_equal(pmi_calibrate(SCORE_DIFF, s, ref, 2, 0, 2, out), 0);   /* leave-one-out: ref row 1 */
    assert_rel(out[0], -3, 1e-15, "diff loo");
    out[0] = 7;
    assert_int_equal(pmi_calibrate(SCORE_LIRA, s, ref, 2, 1, 2, out), -1);   /* one reference left */
    assert_non_null(strstr(pmi_error(), "needs 2 reference models, 1 given"));
    assert_true(out[0] == 7);
    assert_int_equal(pmi_calibrate(SCORE_DIFF, s, ref, 0, -1, 2, out), -1);
    assert_int_equal(pmi_calibrate(SCORE_LOSS, s, ref, 2, -1, 2, out), -1);
    const double bad[4] = {0, NAN, 4, 3};
    assert_int_equal(pmi_calibrate(SCORE_DIFF, s, bad, 2, -1, 2, out), -1);
    assert_int_equal(pmi_calibrate(SCORE_DIFF, NULL, ref, 2, -1, 2, out), -1);
    assert_int_equal(pmi_score_base(SCORE_DIFF), SCORE_LOSS);
    assert_int_equal(pmi_score_base(SCORE_LIRA), SCORE_LOGIT);
    assert_int_equal(pmi_score_min_refs(SCORE_LIRA), 2);
    assert_int_equal(pmi_score_min_refs(SCORE_CONF), 0);
    assert_true(pmi_score_calibrated(SCORE_DIFF) && !pmi_score_calibrated(SCORE_LOGIT));
    assert_true(!pmi_score_calibrated(SCORE_LNOISE) && SCORE_LNOISE < SCORE_RAW_COUNT && SCORE_LNOISE >= SCORE_DEFAULT_COUNT);
    assert_true(pmi_score_queried(SCORE_LNOISE) && !pmi_score_queried(SCORE_CORRECT) && pmi_score_min_refs(SCORE_LNOISE) == 0);
    float logp[2] = {-0.1f, -2.4f};
    int32_t y = 0;
    pmi_scores(SCORE_DIFF, logp, &y, 1, 2, out);   /* needs references: not from the outputs alone */
    assert_true(isnan(out[0]));
}

/* z_perm: D_k's mean in sd of the permutation means, computed here from the same draws
 * (pmi_perm_p's p-value pins them: both use the seed's means). */
static void test_z_perm(void **state) {
    double s[10 * 20];
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(g, 9);
    for (int i = 0; i < 200; i++) s[i] = gsl_ran_gaussian(g, 1) + (i / 20 == 4 ? 1.5 : 0);
    gsl_rng_free(g);
    pmi_result r;
    assert_int_equal(pmi_verify(s, 10, 20, 4, 999, 1234, &r, NULL, NULL), 0);
    if (!(isfinite(r.z_perm) && r.z_perm > 3)) fail_msg("z_perm %g", r.z_perm);   /* D_k shifted by 1.5 sd */
    /* the permutation means' spread is that of an m-subset mean without replacement */
    double mu = 0, v = 0;
    for (int i = 0; i < 200; i++) mu += s[i] / 200;
    for (int i = 0; i < 200; i++) v += (s[i] - mu) * (s[i] - mu) / 199;
    double dk = 0;
    for (int j = 0; j < 20; j++) dk += s[80 + j] / 20;
    double zth = (dk - mu) / sqrt(v / 20 * (200 - 20) / (200.0 - 1));
    assert_rel(r.z_perm, zth, 0.1, "z_perm vs the finite-population sd");
    assert_int_equal(pmi_verify(s, 10, 20, 4, 1, 1234, &r, NULL, NULL), 0);
    assert_true(isnan(r.z_perm));
    assert_int_equal(pmi_verify(s, 10, 20, 4, 0, 1234, &r, NULL, NULL), 0);
    assert_true(isnan(r.z_perm));
}

/* ---- the batched permutation test ----------------------------------------------------- */
enum { BN = 10, BM = 20, BK = 4, BT = 5, BR = 9999 };   /* BR spans three chunks of 4096 */

/* BT score vectors of one pool: lognormal, gaussian with D_k shifted, small integers (ties
 * with the observed means, and rows 0 and 2 with equal means), a zero vector (no spread:
 * z NAN), and one left NULL (vector 1). */
static void batch_vectors(double v[BT][BN * BM], const double *sv[BT]) {
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(g, 31);
    h0_pool(v[0], BN, BM, BK, 0.4, 17);
    for (int i = 0; i < BN * BM; i++) v[2][i] = gsl_ran_gaussian(g, 1) + (i / BM == BK ? 0.7 : 0);
    for (int i = 0; i < BN * BM; i++) v[3][i] = (double)gsl_rng_uniform_int(g, 4);
    for (int j = 0; j < BM; j++) v[3][2 * BM + j] = v[3][(BM - 1 - j)];
    for (int i = 0; i < BN * BM; i++) v[4][i] = 0;   /* tol 0: the means equal the thresholds */
    gsl_rng_free(g);
    for (int t = 0; t < BT; t++) sv[t] = t == 1 ? NULL : v[t];
}

/* Every p of a batch is bit-identical to the vector's own test (the old one-vector code, and
 * pmi_perm_p / pmi_verify now) with the same seed; z within 1e-9 of the two-pass z. */
static void test_perm_batch_matches_alone(void **state) {
    static double v[BT][BN * BM];
    const double *sv[BT];
    batch_vectors(v, sv);
    double p[BT * BN], z[BT];
    assert_int_equal(pmi_perm_batch(sv, BT, BN, BM, BK, BR, 2024, p, z), 0);
    for (int i = 0; i < BN; i++) assert_true(isnan(p[1 * BN + i]));
    assert_true(isnan(z[1]));
    for (int t = 0; t < BT; t++) {
        if (!sv[t]) continue;
        double pr[BN], zr, pa[BN], za;
        ref_perm(sv[t], BN, BM, BK, BR, 2024, pr, &zr);
        assert_int_equal(pmi_perm_batch(&sv[t], 1, BN, BM, BK, BR, 2024, pa, &za), 0);
        for (int i = 0; i < BN; i++)
            if (p[t * BN + i] != pr[i] || pa[i] != pr[i])
                fail_msg("test %d, i = %d: batch %.17g, alone %.17g, reference %.17g", t, i, p[t * BN + i], pa[i], pr[i]);
        assert_true(memcmp(&za, &z[t], sizeof za) == 0);   /* z does not depend on the batch either */
        assert_true(pmi_perm_p(sv[t], BN, BM, BK, BR, 2024) == pr[BK]);
        pmi_result r;
        assert_int_equal(pmi_verify(sv[t], BN, BM, BK, BR, 2024, &r, NULL, NULL), 0);
        int ix;
        double nway = pmi_holm_min(pr, BN, &ix);
        assert_true(r.p[P_PERM] == pr[BK] && r.p_nway[P_PERM] == nway);
        assert_int_equal(r.nway_index[P_PERM], ix);
        assert_true(memcmp(&r.z_perm, &z[t], sizeof za) == 0);
        if (isnan(zr)) assert_true(isnan(z[t]));
        else assert_rel(z[t], zr, 1e-9, "z vs the two-pass reference");
    }
    assert_true(isfinite(z[0]) && isfinite(z[2]) && isnan(z[4]));
    assert_true(p[4 * BN] == 1.0);                     /* zero scores: every mean ties, with tol 0 */
    assert_true(p[3 * BN + 0] == p[3 * BN + 2]);       /* equal means, equal p */
    int ties = 0;                                      /* the integer vector does exercise ties */
    for (int i = 0; i < BN; i++) ties += p[3 * BN + i] > 0.01 && p[3 * BN + i] < 1;
    assert_true(ties > 0);
    pmi_result r = {.N = BN, .k = BK};
    pmi_result_set_perm(&r, p + 2 * BN, z[2]);
    assert_true(r.p[P_PERM] == p[2 * BN + BK] && r.z_perm == z[2]);
    assert_true(r.p_nway[P_PERM] == pmi_holm_min(p + 2 * BN, BN, NULL));
    assert_int_equal(r.nway_index[P_PERM], BK);        /* D_k, shifted by 0.7 sd, has the smallest p */
}

/* The thread count changes nothing, to the bit. */
static void test_perm_batch_threads(void **state) {
    static double v[BT][BN * BM];
    const double *sv[BT];
    batch_vectors(v, sv);
    double p1[BT * BN], z1[BT], p2[BT * BN], z2[BT];
    int was = omp_get_max_threads();
    omp_set_num_threads(1);
    assert_int_equal(pmi_perm_batch(sv, BT, BN, BM, BK, BR, 99, p1, z1), 0);
    omp_set_num_threads(2);
    assert_int_equal(pmi_perm_batch(sv, BT, BN, BM, BK, BR, 99, p2, z2), 0);
    omp_set_num_threads(was);
    assert_true(memcmp(p1, p2, sizeof p1) == 0);
    assert_true(memcmp(z1, z2, sizeof z1) == 0);
}

/* A sum device in plain C for pmi_perm_batch_on: rows (total, T) summed in order as the GPU's
 * (eval_sum_device) must, subsets at most fake_max per call; a call fails when fake_fail_at
 * reaches 0 (counted down per call, -1 never) or opens none when fake_refuse. */
static int fake_max = 7, fake_fail_at = -1, fake_refuse, fake_calls, fake_opened;
typedef struct { double *rows; int T; } fake_dev;
static void *fake_open(const double *rows, int T, int64_t total) {
    if (fake_refuse) return NULL;
    fake_dev *d = malloc(sizeof *d);
    d->rows = malloc(sizeof *d->rows * (size_t)total * T);
    memcpy(d->rows, rows, sizeof *d->rows * (size_t)total * T);
    d->T = T;
    fake_opened++;
    return d;
}
static int fake_sums(void *h, const uint32_t *idx, int R, int m, double *out) {
    fake_dev *d = h;
    assert_true(R <= fake_max);
    fake_calls++;
    if (fake_fail_at >= 0 && fake_fail_at-- == 0) return -1;
    for (int r = 0; r < R; r++)
        for (int t = 0; t < d->T; t++) {
            double s = 0;
            for (int j = 0; j < m; j++) s += d->rows[(size_t)idx[(size_t)r * m + j] * d->T + t];
            out[(size_t)r * d->T + t] = s;
        }
    return 0;
}
static void fake_close(void *h) { fake_dev *d = h; free(d->rows); free(d); }
static int fake_max_subsets(int m, int T) { return fake_max; }

/* Sums on a device give the CPU's p-values and z bit for bit: in chunks of fake_max subsets,
 * when the device fails in the middle (the CPU sums the rest), when it opens none, and below
 * its minimum work (not opened). */
static void test_perm_batch_on_device(void **state) {
    static double v[BT][BN * BM];
    const double *sv[BT];
    batch_vectors(v, sv);
    double p[BT * BN], z[BT], pd[BT * BN], zd[BT];
    assert_int_equal(pmi_perm_batch(sv, BT, BN, BM, BK, BR, 77, p, z), 0);
    pmi_sum_device dev = {fake_open, fake_sums, fake_close, fake_max_subsets, 0};
    struct { int fail_at, refuse; double min_work; int opened, calls; } cases[] = {
        {-1, 0, 0, 1, (BR + 6) / 7},   /* every chunk on the device */
        {3, 0, 0, 1, 4},               /* the fourth call fails: the CPU sums it and the rest */
        {-1, 1, 0, 0, 0},              /* the device opens none */
        {-1, 0, 1e12, 0, 0},           /* too little work for the device */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        fake_fail_at = cases[c].fail_at, fake_refuse = cases[c].refuse, dev.min_work = cases[c].min_work;
        fake_calls = fake_opened = 0;
        memset(pd, 0, sizeof pd);
        assert_int_equal(pmi_perm_batch_on(&dev, sv, BT, BN, BM, BK, BR, 77, pd, zd), 0);
        assert_int_equal(fake_opened, cases[c].opened);
        assert_int_equal(fake_calls, cases[c].calls);
        for (int i = 0; i < BT * BN; i++)
            if (memcmp(&p[i], &pd[i], sizeof *p)) fail_msg("case %zu, p[%d]: device %.17g, CPU %.17g", c, i, pd[i], p[i]);
        assert_true(memcmp(z, zd, sizeof z) == 0);
    }
    fake_fail_at = -1, fake_refuse = 0;
}

static void test_perm_batch_bad_input(void **state) {
    static double v[BT][BN * BM];
    const double *sv[BT];
    batch_vectors(v, sv);
    double p[BT * BN], z[BT];
    assert_int_equal(pmi_perm_batch(sv, BT, BN, BM, BK, 0, 1, p, z), 0);   /* no permutations: all NAN */
    for (int i = 0; i < BT * BN; i++) assert_true(isnan(p[i]));
    for (int t = 0; t < BT; t++) assert_true(isnan(z[t]));
    v[3][7] = INFINITY;
    assert_int_equal(pmi_perm_batch(sv, BT, BN, BM, BK, 99, 1, p, z), -1);
    assert_non_null(strstr(pmi_error(), "test 3: score [0][7] = inf"));
    v[3][7] = 0;
    assert_int_equal(pmi_perm_batch(sv, BT, BN, BM, BN, 99, 1, p, z), -1);
    assert_non_null(strstr(pmi_error(), "k = 10"));
    assert_int_equal(pmi_perm_batch(sv, BT, BN, BM, BK, -1, 1, p, z), -1);
    assert_non_null(strstr(pmi_error(), "permutations"));
    assert_int_equal(pmi_perm_batch(sv, -1, BN, BM, BK, 99, 1, p, z), -1);
    assert_int_equal(pmi_perm_batch(NULL, BT, BN, BM, BK, 99, 1, p, z), -1);
    assert_int_equal(pmi_perm_batch(sv, BT, BN, BM, BK, 99, 1, NULL, z), -1);
    assert_int_equal(pmi_perm_batch(sv, 0, BN, BM, BK, 99, 1, p, z), 0);     /* nothing to test */
}

/* A null pool with per-sample difficulty: sample i's base score under any model is
 * mu_i + sd_i * noise, mu_i = -lognormal(0, 1.5) (heavy-tailed difficulty), sd_i growing with
 * it; the suspect and R references are independent draws, none trained on any sample. */
static void null_scores(gsl_rng *r, int n, int R, double *s, double *ref) {
    for (int i = 0; i < n; i++) {
        double mu = -gsl_ran_lognormal(r, 0, 1.5), sd = 0.2 + 0.5 * sqrt(-mu);
        s[i] = mu + sd * gsl_ran_gaussian(r, 1);
        for (int q = 0; q < R; q++) ref[q * n + i] = mu + sd * gsl_ran_gaussian(r, 1);
    }
}

/* KS distance of sorted p (n) from the uniform. */
static double ks_uniform(double *p, int n) {
    gsl_sort(p, 1, (size_t)n);
    double ks = 0;
    for (int i = 0; i < n; i++) ks = fmax(ks, fmax((i + 1.0) / n - p[i], p[i] - (double)i / n));
    return ks;
}

/* The two-sided 95% binomial interval [*lo, *hi] of the count of n draws below alpha. */
static void binom95(double alpha, int n, int *lo, int *hi) {
    *lo = 0;
    while (gsl_cdf_binomial_P((unsigned)*lo, alpha, (unsigned)n) < 0.025) (*lo)++;
    *hi = *lo;
    while (gsl_cdf_binomial_P((unsigned)*hi, alpha, (unsigned)n) < 0.975) (*hi)++;
}

/* Checks p (n null p-values): KS below its 1% critical value 1.63/sqrt(n), and the count
 * below 0.01 and 0.05 inside the binomial 95% interval. */
static void assert_uniform(double *p, int n, const char *what) {
    int below[2] = {0, 0};
    for (int i = 0; i < n; i++) { below[0] += p[i] < 0.01; below[1] += p[i] < 0.05; }
    print_message("%s: %d and %d of %d null p_perm below 0.01 and 0.05, KS %.4f\n", what, below[0], below[1], n, ks_uniform(p, n));
    for (int a = 0; a < 2; a++) {
        double alpha = a ? 0.05 : 0.01;
        int fp = 0, lo, hi;
        for (int i = 0; i < n; i++) fp += p[i] < alpha;
        binom95(alpha, n, &lo, &hi);
        if (fp < lo || fp > hi) fail_msg("%s: %d of %d null p-values below %g, binomial 95%% interval [%d, %d]", what, fp, n, alpha, lo, hi);
    }
    double ks = ks_uniform(p, n), crit = 1.63 / sqrt(n);
    if (ks >= crit) fail_msg("%s: KS statistic %.4f >= 1%% critical value %.4f", what, ks, crit);
}

enum { NULLS = 600 };

/* p_perm of D_k on NULLS null pools (N = 10, m = 20, k = rep % N) for the calibrated kind,
 * with R references; unpart = 1 breaks the calibration on purpose by centring each
 * mini-dataset on its own mean (a calibration that uses the partition). */
static void null_pvalues(pmi_score_kind kind, int R, int unpart, double *p) {
    enum { N = 10, m = 20, n = N * m };
    double *s = malloc(sizeof(double) * n), *ref = malloc(sizeof(double) * n * (size_t)R), *c = malloc(sizeof(double) * n);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 4242 + (uint64_t)R);
    for (int rep = 0; rep < NULLS; rep++) {
        null_scores(r, n, R, s, ref);
        assert_int_equal(pmi_calibrate(kind, s, ref, R, -1, n, c), 0);
        for (int i = 0; unpart && i < N; i++) {
            double mu = 0;
            for (int j = 0; j < m; j++) mu += c[i * m + j] / m;
            for (int j = 0; j < m; j++) c[i * m + j] -= mu;
        }
        pmi_result res;
        assert_int_equal(pmi_verify(c, N, m, rep % N, 199, 9000 + (uint64_t)rep, &res, NULL, NULL), 0);
        p[rep] = res.p[P_PERM];
    }
    gsl_rng_free(r);
    free(s); free(ref); free(c);
}

/* Exactness: on null pools the calibrated p_perm is uniform, for diff and for lira with the
 * pooled sigma (R = 4) and the per-sample sigma (R = 16). */
static void test_calibrated_perm_uniform_under_h0(void **state) {
    double *p = malloc(sizeof(double) * NULLS);
    null_pvalues(SCORE_DIFF, 4, 0, p);
    assert_uniform(p, NULLS, "diff, R = 4");
    null_pvalues(SCORE_LIRA, 4, 0, p);
    assert_uniform(p, NULLS, "lira, R = 4 (pooled sigma)");
    null_pvalues(SCORE_LIRA, 16, 0, p);
    assert_uniform(p, NULLS, "lira, R = 16 (per-sample sigma)");
    /* the check can fail: a calibration that uses the partition is far from uniform */
    null_pvalues(SCORE_DIFF, 4, 1, p);
    assert_true(ks_uniform(p, NULLS) > 0.3);   /* every p near 0.5 */
    free(p);
}

/* The combined verdict is Bonferroni (valid under any dependence) and a missing side is absent;
 * the pool audit refuses a raw kind's pool evidence below PMI_AUDIT_ALPHA, never a calibrated one. */
static void test_combine_and_audit(void **state) {
    assert_true(pmi_combine_p(0.004, 0.3) == 0.008);
    assert_true(pmi_combine_p(0.3, 0.004) == 0.008);
    assert_true(pmi_combine_p(0.7, 0.9) == 1);
    assert_true(pmi_combine_p(NAN, 0.004) == 0.004);
    assert_true(pmi_combine_p(0.02, NAN) == 0.02);
    assert_true(isnan(pmi_combine_p(NAN, NAN)));
    assert_true(pmi_pool_unsafe(SCORE_LOSS, 0.01) && pmi_pool_unsafe(SCORE_CONF, PMI_AUDIT_ALPHA / 2));
    assert_false(pmi_pool_unsafe(SCORE_LOSS, PMI_AUDIT_ALPHA) || pmi_pool_unsafe(SCORE_LOSS, NAN));
    assert_false(pmi_pool_unsafe(SCORE_DIFF, 0.001) || pmi_pool_unsafe(SCORE_LIRA, 0.001));
    assert_true(isnan(pmi_pool_p(SCORE_LOSS, 0.001, 0.01)));
    assert_true(pmi_pool_p(SCORE_LOSS, 0.001, 0.5) == 0.001 && pmi_pool_p(SCORE_DIFF, 0.001, 0.01) == 0.001);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_combine_and_audit),
        cmocka_unit_test(test_welch_matches_scipy),
        cmocka_unit_test(test_mannwhitney_matches_scipy),
        cmocka_unit_test(test_auc_matches_scipy),
        cmocka_unit_test(test_ci95_matches_scipy),
        cmocka_unit_test(test_scores_match_numpy),
        cmocka_unit_test(test_score_names_and_bad_input),
        cmocka_unit_test(test_rank_p_hand),
        cmocka_unit_test(test_holm_min_hand),
        cmocka_unit_test(test_tpr_at_fpr_hand),
        cmocka_unit_test(test_welch_degenerate),
        cmocka_unit_test(test_verify_hand),
        cmocka_unit_test(test_verify_ties),
        cmocka_unit_test(test_verify_small_pool_exact),
        cmocka_unit_test(test_verify_bad_input),
        cmocka_unit_test(test_perm_strong_signal),
        cmocka_unit_test(test_perm_deterministic),
        cmocka_unit_test(test_perm_calibrated_under_h0),
        cmocka_unit_test(test_rank_uniform_under_h0),
        cmocka_unit_test(test_calibrate_matches_numpy),
        cmocka_unit_test(test_calibrate_hand_and_bad_input),
        cmocka_unit_test(test_z_perm),
        cmocka_unit_test(test_calibrated_perm_uniform_under_h0),
        cmocka_unit_test(test_perm_batch_matches_alone),
        cmocka_unit_test(test_perm_batch_threads),
        cmocka_unit_test(test_perm_batch_on_device),
        cmocka_unit_test(test_perm_batch_bad_input),
    };
    return cmocka_run_group_tests(tests, setup_cases, NULL);
}
