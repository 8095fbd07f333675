/* pmi: membership scores, pooling over mini-datasets, and the ownership statistics.
 *
 * Pure C over arrays (no torch): the runner hands in per-sample log-probabilities from
 * nn_eval_logp() and labels. Higher score = more member-like, for every score kind.
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
 * the N mini-datasets, Holm-corrected (= min over i of N * p_i, capped at 1). */
#ifndef PMI_PMI_H
#define PMI_PMI_H
#include <stddef.h>
#include <stdint.h>

typedef enum {
    SCORE_LOSS = 0,     /* -CE = log p_y */
    SCORE_CONF,         /* p_y */
    SCORE_CORRECT,      /* 1 if argmax = y else 0 */
    SCORE_ENTROPY,      /* -H(p) */
    SCORE_MENTROPY,     /* -Mentr(p, y), Song & Mittal 2021 */
    SCORE_LOGIT,        /* log p_y - log(1 - p_y), LiRA's logit-scaled confidence */
    SCORE_COUNT
} pmi_score_kind;

const char *pmi_score_name(pmi_score_kind k);     /* "loss", "conf", ... */
int pmi_score_parse(const char *name);            /* -1 if unknown */

/* out[i] = score of sample i, from logp (n, classes) row-major and labels y (n). */
void pmi_scores(pmi_score_kind kind, const float *logp, const int32_t *y, int64_t n, int classes, double *out);

typedef enum { P_RANK = 0, P_PERM, P_WELCH, P_MW, P_COUNT } pmi_pvalue;
const char *pmi_pvalue_name(pmi_pvalue p);        /* "rank", "perm", "welch", "mw" */
int pmi_pvalue_parse(const char *name);           /* -1 if unknown */

#define PMI_MAX_N 4096

typedef struct {
    int N, m, k;
    int identified;             /* argmax of pooled mean (lowest index on ties) */
    int identified_median;      /* argmax of pooled median */
    double margin;              /* (best mean - runner-up mean) / pooled std of all N*m scores */
    double p[P_COUNT];          /* one-sided p-values of D_k, indexed by pmi_pvalue */
    double p_nway[P_COUNT];     /* Holm-corrected smallest p over all N mini-datasets */
    int nway_index[P_COUNT];    /* the mini-dataset attaining it */
} pmi_result;

/* Pooled statistics of scores (N, m) row-major. pool_mean, pool_median (optional, N) get each
 * mini-dataset's mean and median. Deterministic in seed. Returns 0, or -1 on bad arguments. */
int pmi_verify(const double *scores, int N, int m, int k, int permutations, uint64_t seed,
               pmi_result *res, double *pool_mean, double *pool_median);

/* Single statistics, exposed for tests and for reuse (x: n1 samples, y: n2 samples). */
double pmi_welch_greater(const double *x, int n1, const double *y, int n2);        /* H1: mean x > mean y */
double pmi_mannwhitney_greater(const double *x, int n1, const double *y, int n2);  /* H1: x stochastically greater */
double pmi_rank_p(const double *pool_mean, int N, int k);
double pmi_perm_p(const double *scores, int N, int m, int k, int permutations, uint64_t seed);
/* Holm-corrected minimum of n p-values (min_i min(1, n * p_i)); *argmin (optional) gets i. */
double pmi_holm_min(const double *p, int n, int *argmin);

/* ---- metrics over models --------------------------------------------------------- */
/* ROC AUC of positives vs negatives on a score (higher = positive); ties count 1/2. */
double pmi_auc(const double *pos, int npos, const double *neg, int nneg);
/* True-positive rate at the threshold that gives false-positive rate <= fpr on neg. */
double pmi_tpr_at_fpr(const double *pos, int npos, const double *neg, int nneg, double fpr);
/* Mean and the half-width of the 95% t confidence interval (GSL t quantile); n < 2: half = NAN. */
void pmi_mean_ci95(const double *x, int n, double *mean, double *half);

#endif
