/* test_eval: eval_permutations, the one permutation batch over a job's evaluations and score
 * kinds, on hand-made evaluations (no model needed: it reads the stored sample scores); and the
 * lnoise score kind (eval_lnoise) on a tiny trained model. */
#include "testutil.h"
#include "data.h"
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

/* torch's bag sums (nn_bag_sums, the GPU's kernel on a GPU) add in order: the same numbers as
 * a loop; bad arguments and an index out of range are errors that name the call. */
static void test_bag_sums_in_order(void **state) {
    enum { ROWS = 50, W = 3, BAGS = 40, LEN = 17 };
    double rows[ROWS * W], out[BAGS * W];
    uint32_t idx[BAGS * LEN];
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    for (int i = 0; i < ROWS * W; i++) rows[i] = gsl_ran_cauchy(g, 1.0) * (i % 2 ? 1e-8 : 1e8);   /* rounding that order shows */
    for (int i = 0; i < BAGS * LEN; i++) idx[i] = (uint32_t)gsl_rng_uniform_int(g, ROWS);
    gsl_rng_free(g);
    nn_bags *b = nn_bag_sums_open(NN_CPU, rows, W, ROWS);
    assert_non_null(b);
    assert_int_equal(nn_bag_sums(b, idx, BAGS, LEN, out), NN_OK);
    for (int r = 0; r < BAGS; r++)
        for (int c = 0; c < W; c++) {
            double s = 0;
            for (int j = 0; j < LEN; j++) s += rows[idx[r * LEN + j] * W + c];
            if (memcmp(&s, &out[r * W + c], sizeof s)) fail_msg("bag %d, column %d: %.17g, in order %.17g", r, c, out[r * W + c], s);
        }
    idx[5] = ROWS;
    assert_int_not_equal(nn_bag_sums(b, idx, BAGS, LEN, out), NN_OK);
    assert_non_null(strstr(nn_last_error(), "nn_bag_sums"));
    assert_int_equal(nn_bag_sums(b, idx, 0, LEN, out), NN_EINVAL);
    nn_bag_sums_close(b);
    assert_null(nn_bag_sums_open(NN_CPU, NULL, W, ROWS));
    assert_non_null(strstr(nn_last_error(), "nn_bag_sums_open"));
    nn_bag_sums_close(NULL);
}

static int three_subsets(int m, int T) { return 3; }
static int bag_calls;
static int counted_sums(void *h, const uint32_t *idx, int R, int m, double *out) {
    bag_calls++;
    return eval_sum_device(NN_CPU)->sums(h, idx, R, m, out);
}

/* A job's permutation tests with their sums on a device (torch's bag sums on the CPU, in chunks
 * of 3 subsets; the GPU's in a build without one, which opens none) give every p-value and z of
 * the CPU's own sums, bit for bit, for the pool's tests and the dataset evidence's. */
static void evals_with_data(store_eval *ev) {
    make_evals(ev);
    for (int e = 0; e < E; e++) {
        ev[e].data_scores = malloc(sizeof(double) * KINDS * 2 * M);
        for (int i = 0; i < KINDS * 2 * M; i++) ev[e].data_scores[i] = sin(17.0 * i + e) + (i % (2 * M) < M ? 0.3 : 0);
        for (int q = 0; q < KINDS; q++) ev[e].data[q] = (pmi_data_result){.n = M, .gap = 0, .p = NAN, .z = NAN};
    }
}

static void test_permutations_sum_device(void **state) {
    store_eval a[E], b[E];
    evals_with_data(a);
    pmi_sum_device cpu = *eval_sum_device(NN_CPU);
    cpu.min_work = 0, cpu.max_subsets = three_subsets, cpu.sums = counted_sums;
    const pmi_sum_device *devs[] = {&cpu, eval_sum_device(NN_CUDA)};
    eval_input in = {.N = N, .m = M, .secret = K, .permutations = R, .perm_seed = 4711,
                     .n_side = M, .data_permutations = R, .data_seed = 5};
    char err[256] = "";
    assert_int_equal(eval_permutations(a, E, &in, err, sizeof err), 0);
    for (size_t d = 0; d < sizeof devs / sizeof *devs; d++) {
        if (d == 1 && nn_cuda_device_count() > 0) continue;   /* test_gpu compares the GPU's */
        in.sums = devs[d];
        evals_with_data(b);
        assert_int_equal(eval_permutations(b, E, &in, err, sizeof err), 0);
        for (int e = 0; e < E; e++) {
            assert_true(memcmp(a[e].res, b[e].res, sizeof a[e].res) == 0);
            assert_true(memcmp(a[e].data, b[e].data, sizeof a[e].data) == 0);
        }
        free_evals(b);
        if (d == 0) assert_int_equal(bag_calls, 2 * ((R + 2) / 3));   /* the pool's chunks, then the data's */
    }
    assert_true(isfinite(a[0].data[0].p) && isfinite(a[0].res[0].p[P_PERM]));
    free_evals(a);
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

/* ---- the lnoise score kind on a tiny model ---------------------------------------------- */
enum { NMEM = 100, NNON = 300, LQ = 8 };
static pmi_dataset ds;
static nn_data *dmem, *dnon;   /* the model's training samples (members), and samples it never saw */
static nn_model *model;

static int setup_model(void **state) {
    nn_set_threads(0);
    if (data_synthetic(NMEM + NNON, 1, 8, 8, 10, 5, &ds)) return -1;
    double mean, sd;
    data_channel_stats(&ds, NULL, NMEM, &mean, &sd);
    data_normalize(&ds, DATA_NORM_STANDARD, &mean, &sd);
    if (nn_data_create(ds.x, ds.y, NMEM, 1, 8, 8, NN_CPU, &dmem) != NN_OK ||
        nn_data_create(ds.x + NMEM * 64, ds.y + NMEM, NNON, 1, 8, 8, NN_CPU, &dnon) != NN_OK) return -1;
    nn_model_spec spec = {.arch = "mlp", .c = 1, .h = 8, .w = 8, .classes = 10, .width = 64, .device = NN_CPU, .seed = 3};
    if (nn_model_create(&spec, &model) != NN_OK) return -1;
    nn_train_params tp = nn_train_default_params();
    tp.epochs = 30; tp.lr = 0.05; tp.batch_size = 20; tp.seed = 2;
    return nn_train(model, dmem, &tp, NULL) == NN_OK ? 0 : -1;
}

static int teardown_model(void **state) {
    nn_model_free(model); nn_data_free(dmem); nn_data_free(dnon); data_free(&ds);
    return 0;
}

/* eval_lnoise of m on the non-members (malloc'd). */
static double *lnoise_of(nn_model *m, int queries, double sigma, uint64_t seed) {
    double *s = malloc(sizeof *s * NNON);
    char err[256] = "";
    if (eval_lnoise(m, dnon, ds.y + NMEM, 10, queries, sigma, seed, s, err, sizeof err)) fail_msg("%s", err);
    return s;
}

/* Its definition: sigma = 0 is the correct kind exactly (and the noisy query the plain one, bit
 * for bit); with noise the scores are multiples of 1/K in [0, 1], some strictly between,
 * the same for the same seed and not for another; queries < 1 and sigma < 0 are refused. */
static void test_lnoise_definition(void **state) {
    float *lp = malloc(sizeof *lp * NNON * 10), *lq = malloc(sizeof *lq * NNON * 10);
    double correct[NNON];
    assert_int_equal(nn_eval_logp(model, dnon, lp), NN_OK);
    assert_int_equal(nn_eval_logp_noisy(model, dnon, 0, 77, lq), NN_OK);
    assert_true(memcmp(lp, lq, sizeof *lp * NNON * 10) == 0);
    pmi_scores(SCORE_CORRECT, lp, ds.y + NMEM, NNON, 10, correct);
    double *s0 = lnoise_of(model, LQ, 0, 77);
    assert_true(memcmp(s0, correct, sizeof correct) == 0);
    double *a = lnoise_of(model, LQ, 1.0, 77), *b = lnoise_of(model, LQ, 1.0, 77), *c = lnoise_of(model, LQ, 1.0, 78);
    int between = 0, differ = 0;
    for (int i = 0; i < NNON; i++) {
        assert_true(a[i] >= 0 && a[i] <= 1 && a[i] * LQ == nearbyint(a[i] * LQ));
        between += a[i] > 0 && a[i] < 1;
        differ += a[i] != c[i];
    }
    assert_true(memcmp(a, b, sizeof *a * NNON) == 0);
    assert_true(between > 0 && differ > 0);
    char err[256] = "";
    assert_int_equal(eval_lnoise(model, dnon, ds.y + NMEM, 10, 0, 1.0, 1, a, err, sizeof err), -1);
    assert_non_null(strstr(err, "queries"));
    assert_int_equal(nn_eval_logp_noisy(model, dnon, -1, 1, lq), NN_EINVAL);
    free(lp); free(lq); free(s0); free(a); free(b); free(c);
}

/* It needs only labels: behind the label-only interface it scores exactly as without one,
 * while the loss kind changes (it becomes the correct kind in other units). */
static void test_lnoise_label_interface(void **state) {
    nn_model *m = NULL;
    assert_int_equal(nn_model_copy(model, &m), NN_OK);
    nn_interface q = {.output = NN_OUT_LABEL};
    assert_int_equal(nn_set_interface(m, &q), NN_OK);
    double *plain = lnoise_of(model, LQ, 1.0, 5), *label = lnoise_of(m, LQ, 1.0, 5);
    assert_true(memcmp(plain, label, sizeof *plain * NNON) == 0);
    float *lp = malloc(sizeof *lp * NNON * 10), *ll = malloc(sizeof *ll * NNON * 10);
    double lossp[NNON], lossl[NNON];
    assert_int_equal(nn_eval_logp(model, dnon, lp), NN_OK);
    assert_int_equal(nn_eval_logp(m, dnon, ll), NN_OK);
    pmi_scores(SCORE_LOSS, lp, ds.y + NMEM, NNON, 10, lossp);
    pmi_scores(SCORE_LOSS, ll, ds.y + NMEM, NNON, 10, lossl);
    assert_true(memcmp(lossp, lossl, sizeof lossp) != 0);
    free(plain); free(label); free(lp); free(ll);
    nn_model_free(m);
}

/* The signal: the model's training samples keep their label under more noise than samples it
 * never saw (mean lnoise higher). */
static void test_lnoise_members_higher(void **state) {
    double *mem = malloc(sizeof *mem * NMEM), *non = lnoise_of(model, 16, 1.0, 9), a = 0, b = 0;
    char err[256] = "";
    assert_int_equal(eval_lnoise(model, dmem, ds.y, 10, 16, 1.0, 9, mem, err, sizeof err), 0);
    for (int i = 0; i < NMEM; i++) a += mem[i] / NMEM;
    for (int i = 0; i < NNON; i++) b += non[i] / NNON;
    if (!(a > b)) fail_msg("members' mean lnoise %.3f, non-members' %.3f", a, b);
    free(mem); free(non);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_permutations_fill_every_test),
        cmocka_unit_test(test_permutations_zero_and_errors),
        cmocka_unit_test(test_bag_sums_in_order),
        cmocka_unit_test(test_permutations_sum_device),
        cmocka_unit_test(test_data_evidence_exact),
    };
    const struct CMUnitTest model_tests[] = {
        cmocka_unit_test(test_lnoise_definition),
        cmocka_unit_test(test_lnoise_label_interface),
        cmocka_unit_test(test_lnoise_members_higher),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    return rc | cmocka_run_group_tests_name("lnoise", model_tests, setup_model, teardown_model);
}
