/* pmi: membership scores, pooling over mini-datasets, and the ownership statistics.
 *
 * Pure C over arrays (no torch): the runner hands in per-sample log-probabilities from
 * nn_eval_logp() and labels. Higher score = more member-like, for every score kind.
 * One kind, lnoise, is not a function of one answer per sample: it needs `queries` noisy
 * queries of the model (pmi_score_queried), which eval.c makes (eval_lnoise).
 *
 * Statistics for the secret index k (one-sided: D_k scores higher than the rest):
 *   p_rank   exact rank p-value rank/N of D_k's pooled mean among the N (ties count against k)
 *   p_perm   permutation test: D_k's mean against `permutations` random m-subsets of all N*m
 *            pool samples (GSL rng), p = (1 + #{perm mean >= observed}) / (1 + permutations);
 *            exact under H0 (pool samples exchangeable when the model never saw them)
 *   p_welch  one-sided Welch t-test, D_k's m scores vs the other (N-1)m (GSL t distribution);
 *            asymptotic, can be anti-conservative
 *   p_mw     one-sided Mann-Whitney U (D_k vs the rest): exact distribution for small samples
 *            without ties (m*(N-1)m within limits), normal approximation with tie and continuity
 *            correction otherwise
 * N-way (for a verifier who does not trust the claimed k): every statistic's smallest p over
 * the N mini-datasets, Holm-corrected (= min over i of N * p_i, capped at 1).
 *
 * Conventions, fixed here so results are reproducible and comparable with scipy:
 *   - Scores never hold inf or NaN for finite or -inf inputs: a log-probability is clamped to
 *     [PMI_LOGP_MIN, 0] before use (-inf, i.e. p underflowed to 0, reads as log(DBL_MIN); no
 *     real log-softmax reaches that, so finite inputs are unchanged), and log(1 - p) is
 *     computed stably (log(-expm1) or log1p(-exp)) and floored at PMI_LOG1MP_MIN = log(2^-24),
 *     the resolution of 1 - p that a float log-softmax carries near p = 1 (it rounds log p to 0
 *     there). So SCORE_LOGIT lies in [PMI_LOGP_MIN, -PMI_LOG1MP_MIN]. A NaN input, or a label
 *     outside [0, classes), gives a NaN score for that sample.
 *   - Permutation test: every permutation draws a uniform random m-subset of the N*m pool
 *     positions by a partial Fisher-Yates shuffle of the indices 0..N*m-1 (gsl_rng_mt19937
 *     seeded with `seed`, one gsl_rng_uniform_int per drawn index, the shuffled arrangement
 *     carried over from draw to draw; GSL maps seed 0 to its default seed 4357), and its mean
 *     is the sum of the subset's scores in draw order divided by m. A permutation mean counts
 *     as >= the observed mean when it is within 4 m DBL_EPSILON max|score| below it (max over
 *     that score vector), so that rounding never breaks a tie. For the N-way p-value one set
 *     of permutation means serves every i: under H0 the distribution of a random m-subset
 *     mean is the same whichever i is tested. The subsets depend on the seed alone, never on
 *     the scores, so any number of score vectors of the same pool can share one draw
 *     (pmi_perm_batch) and each p-value stays exact; a vector's p-values are bit-identical
 *     whether it is tested alone or in a batch, whatever the thread count. z_perm comes from
 *     one pass: the sum and sum of squares of (permutation mean - mean of the vector's N*m
 *     scores).
 *   - Welch: t = (mean x - mean y) / sqrt(vx/n1 + vy/n2) with sample variances, p = Q_t(t, df)
 *     with the Welch-Satterthwaite df (as scipy.stats.ttest_ind(equal_var=False,
 *     alternative='greater')). When both variances are 0 (scipy gives NaN) p is 0.5 if the
 *     means are equal, 0 if mean x > mean y, 1 otherwise. NaN when n1 < 2 or n2 < 2.
 *   - Mann-Whitney: U = rank sum of x (midranks) - n1(n1+1)/2; p = P(U >= U_obs). Exact (the
 *     permutation distribution of the rank sum, counted by dynamic programming as scipy's
 *     method='exact') when there are no ties and n1 + n2 <= PMI_MW_EXACT_MAX; otherwise the
 *     normal approximation with tie and continuity correction, as scipy.stats.mannwhitneyu(x, y,
 *     alternative='greater', method='asymptotic', use_continuity=True); when every value is tied
 *     (zero variance) p = 1, as scipy.
 *   - Functions that return a double return NAN on bad arguments (NULL, sizes out of range,
 *     NaN data); pmi_verify() returns -1 and leaves a message for pmi_error(). */
#ifndef PMI_PMI_H
#define PMI_PMI_H
#include <stddef.h>
#include <stdint.h>

#define PMI_LOGP_MIN    (-708.39641853226408)  /* log(DBL_MIN): floor of every log-probability */
#define PMI_LOG1MP_MIN  (-16.635532333438686)  /* log(2^-24): floor of every log(1 - p) */
#define PMI_MW_EXACT_MAX 60                    /* exact Mann-Whitney when n1 + n2 <= this, no ties */

typedef enum {
    SCORE_LOSS = 0,     /* -CE = log p_y */
    SCORE_CONF,         /* p_y */
    SCORE_CORRECT,      /* 1 if argmax = y else 0 */
    SCORE_ENTROPY,      /* -H(p) */
    SCORE_MENTROPY,     /* -Mentr(p, y), Song & Mittal 2021 */
    SCORE_LOGIT,        /* log p_y - log(1 - p_y), LiRA's logit-scaled confidence */
    SCORE_LNOISE,       /* label-only: the fraction of K queries x + N(0, sigma^2) answered y (Choquette-Choo
                         * et al. 2021); pmi_scores gives one answer's term, 1 if argmax = y else 0 */
    SCORE_DIFF,         /* calibrated: log p_y minus the references' mean log p_y (Watson et al. 2022) */
    SCORE_LIRA,         /* calibrated: offline LiRA, (logit - mu_ref) / sigma_ref (Carlini et al. 2022) */
    SCORE_COUNT
} pmi_score_kind;
#define SCORE_RAW_COUNT SCORE_DIFF        /* kinds below this are raw (not calibrated by references) */
#define SCORE_DEFAULT_COUNT SCORE_LNOISE  /* kinds below this are functions of the model's answer on each
                                           * sample alone: pmi.scores's default (lnoise, which costs K
                                           * evaluations, and the calibrated kinds are named explicitly) */

const char *pmi_score_name(pmi_score_kind k);     /* "loss", "conf", ...; "unknown" if out of range */
int pmi_score_parse(const char *name);            /* -1 if unknown */
int pmi_score_queried(pmi_score_kind k);          /* 1 for lnoise (a mean over noisy queries), else 0 */

/* Reference calibration. A calibrated kind (diff, lira) is computed from a raw kind, its base
 * (loss for diff, logit for lira), of the model and of R reference models that the owner
 * trained without any pool sample. Per pool sample i, with ref (R, n) the references' base
 * scores and s the model's:
 *   diff  s_i - mean_r ref[r][i]
 *   lira  (s_i - mu_i) / sigma, mu_i = mean_r ref[r][i]; sigma is the per-sample standard
 *         deviation sd_r ref[r][i] (R - 1 denominator) when R >= PMI_LIRA_PERSAMPLE_MIN, and
 *         otherwise the pooled sqrt(mean_i sd_i^2) over all n pool samples (few references
 *         estimate one spread far better than n); a per-sample sigma is floored at
 *         PMI_LIRA_SIGMA_FLOOR times the pooled one, so a sample every reference scores alike
 *         cannot dominate. lira needs R >= 2 (a spread), diff R >= 1.
 * Neither uses the partition into mini-datasets, so the permutation test stays exact when no
 * reference saw a pool sample. `skip` (0..R-1, or -1 for none) leaves one reference out: a
 * reference evaluated as a suspect is calibrated by the others. */
#define PMI_LIRA_PERSAMPLE_MIN 16
#define PMI_LIRA_SIGMA_FLOOR   0.1
int pmi_score_calibrated(pmi_score_kind k);       /* 1 for diff and lira, else 0 */
pmi_score_kind pmi_score_base(pmi_score_kind k);  /* loss for diff, logit for lira, k otherwise */
int pmi_score_min_refs(pmi_score_kind k);         /* references a kind needs: 0 raw, 1 diff, 2 lira */
/* out[i] = the calibrated score of sample i (above) from the model's base scores s (n) and the
 * references' ref (R, n) row-major. Returns 0, or -1 (out untouched, pmi_error() says why) on
 * NULL arrays, n < 1, a kind that is not calibrated, fewer references than it needs once
 * `skip` is left out, or a non-finite input. */
int pmi_calibrate(pmi_score_kind kind, const double *s, const double *ref, int R, int skip, int64_t n, double *out);

/* out[i] = score of sample i, from logp (n, classes) row-major and labels y (n). Nothing is
 * written when a pointer is NULL, n < 1 or classes < 1; an unknown kind gives NaN scores. */
void pmi_scores(pmi_score_kind kind, const float *logp, const int32_t *y, int64_t n, int classes, double *out);

typedef enum { P_RANK = 0, P_PERM, P_WELCH, P_MW, P_COUNT } pmi_pvalue;
const char *pmi_pvalue_name(pmi_pvalue p);        /* "rank", "perm", "welch", "mw"; "unknown" if out of range */
int pmi_pvalue_parse(const char *name);           /* -1 if unknown */

#define PMI_MAX_N 4096

typedef struct {
    int N, m, k;
    int identified;             /* argmax of pooled mean (lowest index on ties) */
    int identified_median;      /* argmax of pooled median (lowest index on ties) */
    double margin;              /* (best mean - runner-up mean) / pooled std of all N*m scores */
    double p[P_COUNT];          /* one-sided p-values of D_k, indexed by pmi_pvalue */
    double p_nway[P_COUNT];     /* Holm-corrected smallest p over all N mini-datasets */
    int nway_index[P_COUNT];    /* the mini-dataset attaining it */
    double z_perm;              /* (D_k's mean - mean of the permutation means) / their sd: the evidence
                                 * beyond the permutation floor 1/(permutations+1); NAN when
                                 * permutations < 2 or the permutation means do not vary */
} pmi_result;

/* Pooled statistics of scores (N, m) row-major. pool_mean, pool_median (optional, N) get each
 * mini-dataset's mean and median. Deterministic in seed. Returns 0, or -1 on bad arguments
 * (NULL scores or res, N outside [2, PMI_MAX_N], m < 1, k outside [0, N), permutations < 0, a
 * non-finite score) or when GSL cannot create its generator; pmi_error() then says which (out
 * of memory exits through util_malloc with file:line). permutations = 0
 * skips the permutation test: p[P_PERM] and p_nway[P_PERM] are NAN, nway_index[P_PERM] is -1.
 * The margin is 0 when all N*m scores are equal. */
int pmi_verify(const double *scores, int N, int m, int k, int permutations, uint64_t seed,
               pmi_result *res, double *pool_mean, double *pool_median);
/* The message of the calling thread's last failed pmi_verify(), pmi_perm_p() or
 * pmi_perm_batch() ("" if none). */
const char *pmi_error(void);

/* Single statistics, exposed for tests and for reuse (x: n1 samples, y: n2 samples). */
double pmi_welch_greater(const double *x, int n1, const double *y, int n2);        /* H1: mean x > mean y */
double pmi_mannwhitney_greater(const double *x, int n1, const double *y, int n2);  /* H1: x stochastically greater */
/* rank / N with rank = 1 + #{i != k: pool_mean[i] >= pool_mean[k]}. */
double pmi_rank_p(const double *pool_mean, int N, int k);
/* The permutation p-value of pmi_verify() alone (same value for the same seed); NAN when
 * permutations = 0 or the arguments are bad. */
double pmi_perm_p(const double *scores, int N, int m, int k, int permutations, uint64_t seed);
/* The permutation tests of T score vectors of one pool, all from ONE set of random m-subsets
 * (one rng stream from seed, drawn in chunks; the tests of a chunk run in parallel with
 * OpenMP, with results that do not depend on the thread count). scores[t] (N*m, row-major by
 * mini-dataset) for t in [0, T); a NULL scores[t] is skipped. p (T, N): p[t*N + i] = the
 * permutation p-value of mini-dataset i's mean in test t, bit-identical to what pmi_verify()
 * gives for scores[t] alone with the same seed; z (T): test t's z_perm of D_k (as pmi_result).
 * A skipped test's row and z are NAN, as are all of them when permutations = 0. Returns 0, or
 * -1 with pmi_error() on the arguments pmi_verify() refuses (a non-finite score names its test
 * t and sample), NULL scores, p or z, T < 0, or when GSL cannot create its generator. */
int pmi_perm_batch(const double *const *scores, int T, int N, int m, int k, int permutations, uint64_t seed,
                   double *p, double *z);
/* A device that sums the permutation means for pmi_perm_batch_on (the runner passes the GPU's,
 * nn_bag_sums_*, when it trains on one): the subsets are still drawn here, from the same stream,
 * and each sum is the same additions in the same order, so every p-value and z is the same number,
 * bit for bit, as on the CPU. open: rows (total, T) row-major, every test's scores at one pool
 * position per row; a handle, or NULL when the device cannot (the CPU sums). sums: out (R, T),
 * out[r T + t] = 0 + rows[idx[r m] T + t] + rows[idx[r m + 1] T + t] + ... (j = 0..m-1, in that
 * order) for R <= max_subsets(m, T) subsets idx (R, m); 0, or -1 (the CPU sums those subsets
 * and the rest). close: frees the handle. A batch whose T * R * m is below min_work sums on the
 * CPU. */
typedef struct {
    void *(*open)(const double *rows, int T, int64_t total);
    int (*sums)(void *h, const uint32_t *idx, int R, int m, double *out);
    void (*close)(void *h);
    int (*max_subsets)(int m, int T);
    double min_work;
} pmi_sum_device;
/* pmi_perm_batch with its sums on dev (NULL: the CPU; pmi_perm_batch is this with NULL). */
int pmi_perm_batch_on(const pmi_sum_device *dev, const double *const *scores, int T, int N, int m, int k,
                      int permutations, uint64_t seed, double *p, double *z);
/* Sets r's permutation fields from p_all (r->N), the permutation p-values of every mini-dataset
 * (a row of pmi_perm_batch): p[P_PERM] = p_all[r->k], p_nway[P_PERM] and nway_index[P_PERM]
 * their Holm-corrected minimum (pmi_holm_min), z_perm = z. */
void pmi_result_set_perm(pmi_result *r, const double *p_all, double z);
/* Holm-corrected minimum of n p-values (min_i min(1, n * p_i)); *argmin (optional) gets i
 * (lowest on ties). NaN entries are never the minimum but still count in n; if all are NaN
 * (or p is NULL, n < 1) it returns NAN and *argmin gets -1. */
double pmi_holm_min(const double *p, int n, int *argmin);

/* ---- dataset evidence (DESIGN.md 3c) ------------------------------------------------
 * The owner's training set S against a held-out set H of the same data (a random split, so
 * a model that never saw S or H treats them alike): n samples of S and n of H, scored like the
 * pool, S first. The statistic is S's mean score; its one-sided permutation p-value over the
 * 2n samples (random n-subsets, the pool test with N = 2, m = n, k = 0: pmi_perm_batch) is exact
 * under H0 by the argument of the pool's test, raw or calibrated by references that saw
 * neither S nor H. */
typedef struct {
    int n;                      /* samples per side (0: no dataset evidence) */
    double gap;                 /* mean score of S minus mean score of H */
    double p;                   /* one-sided permutation p-value of S's mean; NAN when not tested */
    double z;                   /* (S's mean - mean of the permutation means) / their sd */
} pmi_data_result;

/* The combined verdict's p-value, valid under any dependence of the two (Bonferroni):
 * min(1, 2 min(p_pool, p_data)). A NaN side is absent: the other is returned alone (both NaN:
 * NAN). Claimed when below alpha. */
double pmi_combine_p(double p_pool, double p_data);

/* Pool audit (DESIGN.md 3b). The references never saw the pool, so D_k standing out on their
 * mean score means the pool is intrinsically easy: every innocent model would look like a
 * member on raw scores. audit_p is the permutation p-value of D_k on the references' mean
 * score of a raw kind; a pool with audit_p < PMI_AUDIT_ALPHA is unsafe for that raw kind:
 * its pool evidence is refused (pmi_pool_p returns NAN) and the decision falls to the first
 * calibrated kind listed, which subtracts exactly this difficulty, or to the dataset evidence
 * alone. Calibrated kinds, and pools without references (audit_p NAN), are not refused. */
#define PMI_AUDIT_ALPHA 0.05
int pmi_pool_unsafe(pmi_score_kind kind, double audit_p);            /* 1 when refused by the rule above */
double pmi_pool_p(pmi_score_kind kind, double p_pool, double audit_p); /* p_pool, or NAN when unsafe */

/* ---- metrics over models --------------------------------------------------------- */
/* ROC AUC of positives vs negatives on a score (higher = positive); ties count 1/2. */
double pmi_auc(const double *pos, int npos, const double *neg, int nneg);
/* True-positive rate at the threshold that gives false-positive rate <= fpr on neg: a sample
 * is claimed when its score is > t; t is the lowest value (over the extended reals) with
 * #{neg > t} / nneg <= fpr, and the result is #{pos > t} / npos. fpr >= 1 gives 1. */
double pmi_tpr_at_fpr(const double *pos, int npos, const double *neg, int nneg, double fpr);
/* Mean and the half-width of the 95% t confidence interval (GSL t quantile); n < 2: half = NAN,
 * n < 1 or x NULL: mean = NAN too. Either output may be NULL. */
void pmi_mean_ci95(const double *x, int n, double *mean, double *half);
/* Wilson score 95% interval of k successes of n (E. B. Wilson, JASA 22 (1927) 209-212):
 * (k + z^2/2 +- z sqrt(k (n - k) / n + z^2 / 4)) / (n + z^2), inside [0, 1]; NAN for n <= 0. */
void pmi_wilson95(int k, int n, double *lo, double *hi);

#endif
