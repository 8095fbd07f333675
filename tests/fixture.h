/* fixture: a small fixed results file for the report and plot tests, built through
 * store_write_shard + store_merge: two architectures, three seeds, owner / clean / indep-data
 * models, and a prune attack at three sparsities whose effect on the synthetic scores grows
 * with the sparsity; the p-values come from pmi_verify. Owner accuracy is clean + 0.002 for
 * every pair; D_k's losses are scaled by 1 - 0.5 * (1 - sparsity) for owners. */
#ifndef PMI_TEST_FIXTURE_H
#define PMI_TEST_FIXTURE_H
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <sys/stat.h>
#include "store.h"

#define PN 8
#define PM 20
#define NSEED 3
#define NSTR 3
static const double sparsities[NSTR] = {0.2, 0.5, 0.8};
static const char *const archs[2] = {"mlp", "cnn"};
static const char *const roles[3] = {"owner", "clean", "indep-data"};

static const char *config_text =
    "[experiment]\nname = plot-test\nseeds = 3\n[pool]\nN = 8\nm = 20\n"
    "[pmi]\nscores = loss,conf\ndecide = perm\nalpha = 0.01,0.05\npermutations = 200\n"
    "[attack.prune]\ntype = prune\nsparsity = 0.2,0.5,0.8\n";

/* The decision settings of config_text's [pmi] section. */
static store_settings fixture_settings(void) {
    return (store_settings){.decide = "perm", .alphas = {0.01, 0.05}, .n_alphas = 2, .permutations = 200,
                            .n_kinds = 2, .kinds = {SCORE_LOSS, SCORE_CONF}};
}

/* One job in memory: evals[0] is un-attacked, evals[1..NSTR] pruned at sparsities[]. */
typedef struct {
    store_job job;
    store_eval evals[1 + NSTR];
    double scores[1 + NSTR][2 * PN * PM], mean[1 + NSTR][2 * PN], median[1 + NSTR][2 * PN];
} fixture;

/* Scores of one evaluation: log p_y = -Exp(1) losses; D_k's are shifted up by `member`. */
static void fill_eval(store_eval *ev, double *sc, double *mean, double *median, int k, double member, gsl_rng *rng, int seed) {
    ev->n_kinds = 2;
    ev->kinds[0] = SCORE_LOSS; ev->kinds[1] = SCORE_CONF;
    for (int i = 0; i < PN; i++)
        for (int j = 0; j < PM; j++) {
            double loss = gsl_ran_exponential(rng, 0.6) * (i == k ? 1 - member : 1);
            sc[i * PM + j] = -loss;
            sc[PN * PM + i * PM + j] = exp(-loss);
        }
    for (int q = 0; q < 2; q++)
        assert_int_equal(pmi_verify(sc + q * PN * PM, PN, PM, k, 200, (uint64_t)seed, &ev->res[q], mean + q * PN, median + q * PN), 0);
    ev->sample_scores = sc; ev->pool_mean = mean; ev->pool_median = median;
}

static void fill_job(fixture *x, int arch, int role, int seed, int with_attacks) {
    memset(x, 0, sizeof *x);
    store_job *j = &x->job;
    snprintf(j->id, sizeof j->id, "s%d-%s-%s", seed, archs[arch], roles[role]);
    snprintf(j->experiment, sizeof j->experiment, "plot-test");
    snprintf(j->dataset, sizeof j->dataset, "synthetic");
    snprintf(j->arch, sizeof j->arch, "%s", archs[arch]);
    snprintf(j->role, sizeof j->role, "%s", roles[role]);
    j->seed = seed; j->N = PN; j->m = PM; j->secret_k = (3 * seed) % PN; j->trained_on_k = role == 0;
    j->independent = role == 2;
    j->test_acc = 0.86 + 0.03 * arch + 0.004 * seed + (role == 0 ? 0.002 : 0); j->train_acc = 0.99;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, (unsigned long)(1000 * seed + 10 * arch + role));
    j->n_evals = with_attacks ? 1 + NSTR : 1;
    for (int e = 0; e < j->n_evals; e++) {
        store_eval *ev = &x->evals[e];
        double s = e ? sparsities[e - 1] : 0;
        snprintf(ev->attack, sizeof ev->attack, "%s", e ? "prune" : "none");
        snprintf(ev->type, sizeof ev->type, "%s", e ? "prune" : "none");
        if (e) snprintf(ev->params, sizeof ev->params, "sparsity=%g,global=1", s);
        if (e) snprintf(ev->strength_key, sizeof ev->strength_key, "sparsity");
        ev->strength = e ? s : NAN;
        ev->test_acc = j->test_acc - 0.3 * s * s;
        ev->sparsity = s;
        fill_eval(ev, x->scores[e], x->mean[e], x->median[e], j->secret_k, role == 0 ? 0.5 * (1 - s) : 0, rng, seed);
    }
    gsl_rng_free(rng);
    j->evals = x->evals;
}

/* Writes every job's shard into <dir>/shards and merges them into <dir>/results.h5. */
static inline void build_results(const char *dir, int with_attacks, char *out, size_t len) {
    char shards[300], p[400], err[512];
    snprintf(shards, sizeof shards, "%s/shards", dir);
    mkdir(dir, 0777); mkdir(shards, 0777);
    store_provenance prov = {.config = config_text, .settings = fixture_settings()};
    fixture *x = malloc(sizeof *x);
    for (int a = 0; a < 2; a++)
        for (int r = 0; r < 3; r++)
            for (int s = 1; s <= NSEED; s++) {
                fill_job(x, a, r, s, with_attacks);
                snprintf(p, sizeof p, "%s/%s.h5", shards, x->job.id);
                assert_int_equal(store_write_shard(p, &x->job, &prov, err, sizeof err), 0);
            }
    free(x);
    snprintf(out, len, "%s/results.h5", dir);
    if (store_merge(shards, out, &prov, err, sizeof err)) fail_msg("merge: %s", err);
}

#endif
