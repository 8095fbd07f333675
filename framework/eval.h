/* eval: evaluates one model, un-attacked or attacked, the same way: its test accuracy, the
 * per-sample membership scores of every pool sample for every score kind, and the PMI
 * statistics of each kind (pmi_verify). The permutation test comes last, for all of a job's
 * evaluations at once (eval_permutations: one pmi_perm_batch, so every test of the job
 * shares one set of random subsets, drawn once). The lnoise kind queries the model again,
 * lnoise_queries times per sample (eval_lnoise), only when it is listed. A model whose outputs
 * are NaN (an attack diverged) is recorded as unverifiable: identified -1 and NaN p-values,
 * which no alpha claims.
 *
 *   eval_input in = { .pool = ..., .pool_labels = ..., ... };
 *   store_eval ev[n] = { { .attack = "none", ... }, ... };
 *   for each model i: if (eval_model(model_i, &in, &ev[i], err, sizeof err)) ...;
 *   if (eval_permutations(ev, n, &in, err, sizeof err)) ...;
 *   ... eval_free(&ev[i]); */
#ifndef PMI_EVAL_H
#define PMI_EVAL_H
#include <stddef.h>
#include <stdint.h>
#include "nn.h"
#include "pmi.h"
#include "store.h"

typedef struct {
    const nn_data *pool;          /* the N*m pool samples, mini-dataset by mini-dataset */
    const int32_t *pool_labels;   /* their labels, (N*m) */
    const nn_data *test;          /* the test split */
    int classes;
    int N, m, secret;             /* pool shape and the secret index k */
    int permutations;             /* resamples of the permutation test */
    const int *kinds; int n_kinds;/* score kinds (pmi_score_kind), decision kind first */
    uint64_t perm_seed;           /* the one rng stream of all the permutation tests */
    const pmi_sum_device *sums;   /* where the permutation tests sum (pmi_perm_batch_on): NULL the CPU */
    /* Reference calibration (score kinds diff and lira, pmi_calibrate): ref_scores[b] holds the
     * base kind b's scores of the n_refs reference models on every pool sample, (n_refs, N*m),
     * for each base that a listed calibrated kind needs (NULL otherwise). ref_skip is the
     * evaluated model's own index among the references (left out: leave-one-out), or -1. When
     * leaving it out leaves too few references for a kind, that kind is recorded as
     * unverifiable (NaN scores and p-values). */
    const double *ref_scores[SCORE_COUNT];
    int n_refs, ref_skip;
    /* Dataset evidence (pmi.h), off when n_side = 0: dset holds n_side samples of the owner's
     * training set S then n_side held-out samples H, labels dset_labels (2 n_side); dref_scores[b]
     * the references' base scores on them, (n_refs, 2 n_side), as ref_scores (references that
     * saw neither side); its permutation test draws data_permutations n-subsets from data_seed. */
    const nn_data *dset;
    const int32_t *dset_labels;
    int64_t n_side;
    const double *dref_scores[SCORE_COUNT];
    int data_permutations;
    uint64_t data_seed;
    /* The lnoise kind (pmi.h), used only when listed in kinds: lnoise_queries noisy queries per
     * sample, each pixel plus N(0, lnoise_sigma^2) (eval_lnoise). The pool's query q draws from
     * lnoise_seed + q N m, the dataset evidence's from lnoise_seed + lnoise_queries N m + q 2 n_side,
     * so that every model evaluated with this `in` is asked the same noisy queries. */
    int lnoise_queries;
    double lnoise_sigma;
    uint64_t lnoise_seed;
    const char *who;              /* job id, for the diverged-model message */
} eval_input;

/* The permutation tests' sums on dev (pmi_sum_device over nn_bag_sums; the same p-values bit
 * for bit): a job on a GPU puts eval_sum_device(NN_CUDA) in eval_input.sums unless
 * PMI_PERM_GPU=0. A batch of fewer than 1e8 summed scores stays on the CPU; a chunk holds at
 * most 16M drawn indices and 8M sums. NN_CPU's (torch's CPU kernel, slower than pmi.c's own
 * sums) is there for the tests. A device that fails says why on stderr and the CPU sums. */
const pmi_sum_device *eval_sum_device(nn_device dev);

/* Fills ev's accuracy, scores and results (ev's attack names are the caller's), all but the
 * permutation test: p[P_PERM], p_nway[P_PERM] and z_perm are NAN, nway_index[P_PERM] -1,
 * until eval_permutations(). With dataset evidence, ev->data[k] gets n and gap (p and z NAN
 * until eval_permutations) and ev->data_scores the S-then-H scores; without, n = 0 and NANs. Kinds are verified in parallel (OpenMP); results do not depend
 * on the thread count. Returns 0, or -1 with err; ev's arrays are owned by ev either way. */
int eval_model(nn_model *model, const eval_input *in, store_eval *ev, char *err, size_t errlen);
/* Where eval_model's time goes, summed over the calls given it (eval_model_timed): the model's
 * forward passes and their copies to the host (accuracy, log-probabilities, lnoise queries,
 * sparsity: on a GPU they wait for the device, so work still queued there counts here), and
 * the scores and statistics computed on the host. The runner prints them per attack batch. */
typedef struct { double forward_s, stats_s; } eval_times;
/* eval_model, adding its times to *t. */
int eval_model_timed(nn_model *model, const eval_input *in, store_eval *ev, eval_times *t, char *err, size_t errlen);
/* eval_model in two halves, so that the host's half may run on another thread while the device
 * trains (the runner's attack batches on a GPU): eval_forward runs the model (accuracy,
 * log-probabilities, lnoise queries, sparsity) into ev and *pend, after which the model may be
 * freed; eval_finish computes the scores and statistics from *pend (no torch call) and frees
 * it. Together they store what eval_model stores, bit for bit; ev->wall_s is the two halves'
 * time. Each returns 0, or -1 with err; eval_finish frees *pend either way. */
typedef struct eval_pending {
    float *logp, *dlogp;   /* the pool's and the dataset evidence's log-probabilities */
    double *q, *dq;        /* their lnoise scores, or NULL */
    int diverged;
    double forward_s;
} eval_pending;
int eval_forward(nn_model *model, const eval_input *in, store_eval *ev, eval_pending *pend, char *err, size_t errlen);
/* eval_forward of model[b] with in[b] into ev[b] and pend[b], b < k, the models' forward passes
 * together (nn_eval_many: fused on a GPU, so the same numbers up to rounding there; one by one,
 * bit for bit, on the CPU); each pend[b].forward_s is an equal share of their time; *fused (fused
 * may be NULL) how many models the pool's pass ran fused. On error every pend[b] is freed. */
int eval_forward_many(nn_model *const *model, const eval_input *const *in, store_eval *const *ev, eval_pending *pend, int k,
                      int *fused, char *err, size_t errlen);
int eval_finish(const eval_input *in, store_eval *ev, eval_pending *pend, eval_times *t, char *err, size_t errlen);
/* Frees what eval_forward left in *pend (once eval_finish will not run). */
void eval_pending_free(eval_pending *pend);
/* The permutation test of every verifiable (evaluation, kind) of evs[0..n), all evaluated by
 * eval_model() with this `in`: one pmi_perm_batch with in->perm_seed and in->permutations
 * over their sample scores, so all of them share one set of random m-subsets (each p-value
 * stays exact: the subsets do not depend on the scores). Fills p[P_PERM], p_nway[P_PERM],
 * nway_index[P_PERM] and z_perm (pmi_result_set_perm); unverifiable ones (identified -1) keep
 * their NaN. With dataset evidence, a second pmi_perm_batch (N = 2, m = n_side, k = 0, from
 * in->data_seed) fills every verifiable data[k].p and z. Returns 0, or -1 with err. */
int eval_permutations(store_eval *evs, int n, const eval_input *in, char *err, size_t errlen);
/* The lnoise scores (pmi.h) of the n = nn_data_size(d) samples of d with labels y: out[i] is the
 * fraction of `queries` answers to x_i + N(0, sigma^2) (nn_eval_logp_noisy, through the model's
 * interface) whose argmax is y[i], a multiple of 1 / queries; query q draws its noise from
 * seed + q n. With sigma = 0 it is the correct kind. 0, or -1 with err (queries < 1 or the
 * model's error). */
int eval_lnoise(nn_model *model, const nn_data *d, const int32_t *y, int classes, int queries, double sigma,
                uint64_t seed, double *out, char *err, size_t errlen);
/* Frees the arrays of ev. */
void eval_free(store_eval *ev);

#endif
