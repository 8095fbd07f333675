/* test_eval: eval_permutations, the one permutation batch over a job's evaluations and score
 * kinds, on hand-made evaluations (no model needed: it reads the stored sample scores). */
#include "testutil.h"
#include "eval.h"
#include "pmi.h"
#include <math.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

enum { N = 6, M = 15, K = 2, E = 3, KINDS = 2, R = 999 };

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* E evaluations of KINDS kinds with random scores (D_K shifted in evaluation 0), verified as
 * eval_model() leaves them (pmi_verify without permutations); evaluation 1's second kind is
 * unverifiable (NaN scores, identified -1), as a calibrated kind short of references is. */
static void make_evals(store_eval *ev) {
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(g, 8);
    memset(ev, 0, sizeof *ev * E);
    for (int e = 0; e < E; e++) {
        ev[e].n_kinds = KINDS;
        ev[e].kinds[0] = SCORE_LOSS, ev[e].kinds[1] = SCORE_CONF;
        ev[e].sample_scores = malloc(sizeof(double) * KINDS * N * M);
        for (int q = 0; q < KINDS; q++) {
            double *s = ev[e].sample_scores + q * N * M;
            for (int i = 0; i < N * M; i++) s[i] = gsl_ran_gaussian(g, 1) + (e == 0 && i / M == K ? 1.0 : 0);
            if (e == 1 && q == 1) {
                for (int i = 0; i < N * M; i++) s[i] = NAN;
                ev[e].res[q] = (pmi_result){.N = N, .m = M, .k = K, .identified = -1, .identified_median = -1,
                                            .margin = NAN, .z_perm = NAN,
                                            .p = {NAN, NAN, NAN, NAN}, .p_nway = {NAN, NAN, NAN, NAN},
                                            .nway_index = {-1, -1, -1, -1}};
                continue;
            }
            assert_int_equal(pmi_verify(s, N, M, K, 0, 0, &ev[e].res[q], NULL, NULL), 0);
            assert_true(isnan(ev[e].res[q].p[P_PERM]) && isnan(ev[e].res[q].z_perm));
        }
    }
    gsl_rng_free(g);
}

static void free_evals(store_eval *ev) {
    for (int e = 0; e < E; e++) eval_free(&ev[e]);
}

/* Every verifiable (evaluation, kind) gets exactly what pmi_verify gives it alone with the
 * job's one seed (same subsets for all); the rest of its result is untouched; the
 * unverifiable one keeps its NaN. */
static void test_permutations_fill_every_test(void **state) {
    store_eval ev[E];
    make_evals(ev);
    pmi_result before[E][KINDS];
    for (int e = 0; e < E; e++) memcpy(before[e], ev[e].res, sizeof before[e]);
    eval_input in = {.N = N, .m = M, .secret = K, .permutations = R, .perm_seed = 4711};
    char err[256] = "";
    assert_int_equal(eval_permutations(ev, E, &in, err, sizeof err), 0);
    for (int e = 0; e < E; e++)
        for (int q = 0; q < KINDS; q++) {
            const pmi_result *got = &ev[e].res[q];
            if (e == 1 && q == 1) {
                assert_true(memcmp(got, &before[e][q], sizeof *got) == 0);
                continue;
            }
            pmi_result alone;
            assert_int_equal(pmi_verify(ev[e].sample_scores + q * N * M, N, M, K, R, 4711, &alone, NULL, NULL), 0);
            assert_true(memcmp(got, &alone, sizeof alone) == 0);   /* every field, permutation ones included */
            assert_true(isfinite(got->p[P_PERM]) && isfinite(got->z_perm));
        }
    assert_true(ev[0].res[0].p[P_PERM] <= 2.0 / (R + 1));   /* the shifted D_k */
    free_evals(ev);
}

static void test_permutations_zero_and_errors(void **state) {
    store_eval ev[E];
    make_evals(ev);
    eval_input in = {.N = N, .m = M, .secret = K, .permutations = 0, .perm_seed = 1};
    char err[256] = "";
    assert_int_equal(eval_permutations(ev, E, &in, err, sizeof err), 0);
    assert_true(isnan(ev[0].res[0].p[P_PERM]) && isnan(ev[0].res[0].p_nway[P_PERM]) && isnan(ev[0].res[0].z_perm));
    assert_int_equal(ev[0].res[0].nway_index[P_PERM], -1);
    ev[2].sample_scores[N * M + 5] = INFINITY;   /* evaluation 2, kind 1: test 4 of the batch */
    in.permutations = R;
    assert_int_equal(eval_permutations(ev, E, &in, err, sizeof err), -1);
    if (!strstr(err, "permutation tests") || !strstr(err, "test 4: score [0][5] = inf")) fail_msg("message: %s", err);
    free_evals(ev);
}

/* The dataset evidence's test (eval_permutations' second batch): each p-value is the pool
 * test with N = 2, m = n, k = 0 over S then H; on null scores (S and H alike, heavy-tailed as
 * losses are) the p-values are uniform (Kolmogorov-Smirnov) and the rate below alpha within its
 * binomial bound; a shifted S is found at the permutation floor. */
enum { DE = 300, DN = 25, DR = 199 };
static void test_data_evidence_exact(void **state) {
    store_eval *ev = calloc(DE, sizeof *ev);
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(g, 21);
    for (int e = 0; e < DE; e++) {
        ev[e].n_kinds = 1;
        ev[e].kinds[0] = SCORE_LOSS;
        ev[e].res[0].identified = 0;
        ev[e].data_scores = malloc(sizeof(double) * 2 * DN);
        for (int i = 0; i < 2 * DN; i++)   /* minus an exponential loss: S and H alike, except evaluation 0 */
            ev[e].data_scores[i] = -gsl_ran_exponential(g, 1.0) + (e == 0 && i < DN ? 2.0 : 0);
        ev[e].data[0] = (pmi_data_result){.n = DN, .gap = 0, .p = NAN, .z = NAN};
    }
    gsl_rng_free(g);
    eval_input in = {.N = N, .m = M, .secret = K, .permutations = 0, .perm_seed = 1,
                     .n_side = DN, .data_permutations = DR, .data_seed = 99};
    char err[256] = "";
    assert_int_equal(eval_permutations(ev, DE, &in, err, sizeof err), 0);
    assert_true(ev[0].data[0].p <= 2.0 / (DR + 1) && ev[0].data[0].z > 3);
    double alone = pmi_perm_p(ev[1].data_scores, 2, DN, 0, DR, 99);
    assert_true(alone == ev[1].data[0].p);
    double p[DE - 1];
    int below = 0;
    for (int e = 1; e < DE; e++) { p[e - 1] = ev[e].data[0].p; below += p[e - 1] <= 0.05; assert_true(isfinite(ev[e].data[0].z)); }
    /* KS distance to the uniform on the grid (i / (DR + 1)); 1.63 / sqrt(n) is the 1% critical value */
    qsort(p, DE - 1, sizeof *p, cmp_double);
    double d = 0;
    for (int i = 0; i < DE - 1; i++) d = fmax(d, fmax(fabs(p[i] - (double)(i + 1) / (DE - 1)), fabs(p[i] - (double)i / (DE - 1))));
    if (d > 1.63 / sqrt(DE - 1) + 1.0 / (DR + 1)) fail_msg("KS distance %.3f: dataset p-values of null scores are not uniform", d);
    /* P(X >= 27) for X ~ Binomial(299, 0.05) is below 0.01 */
    if (below > 26) fail_msg("%d of %d null dataset p-values <= 0.05", below, DE - 1);
    for (int e = 0; e < DE; e++) eval_free(&ev[e]);
    free(ev);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_permutations_fill_every_test),
        cmocka_unit_test(test_permutations_zero_and_errors),
        cmocka_unit_test(test_data_evidence_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
