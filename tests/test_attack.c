/* Tests of the attack module: [attack.*] sections expand into the right settings (sweeps,
 * chains, enabled), bad sections fail with file:line, and every attack does what it says on
 * a tiny model through attack_apply (the same path the runner takes). */
#include "testutil.h"
#include "attack.h"
#include "config.h"
#include "data.h"
#include "nn.h"
#include <math.h>

static cfg *load_text(const char *text, char *err, size_t errlen, int *rc) {
    char path[300];
    snprintf(path, sizeof path, "%s/attack-%d.ini", tu_tmpdir(), rand());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    cfg *c = cfg_create();
    *rc = cfg_load(c, path, err, errlen);
    return c;
}

static void test_plan_sweep_and_chain(void **state) {
    char err[512];
    int rc, n = 0;
    cfg *c = load_text("[attack.prune]\ntype = prune\nsparsity = 0.2, 0.5, 0.8\nglobal = 0\n"
                       "[attack.ft]\ntype = ftal\nepochs = 1,2\nlr = 0.01\n"
                       "[attack.p5]\ntype = prune\nsparsity = 0.5\nenabled = 0\n"
                       "[attack.p5ft]\nchain = p5, ft1\n"
                       "[attack.ft1]\ntype = ftal\nepochs = 1\nenabled = 0\n",
                       err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    attack_setting *a = NULL;
    assert_int_equal(attack_plan(c, &a, &n, err, sizeof err), 0);
    assert_int_equal(n, 3 + 2 + 1);
    assert_string_equal(a[0].name, "prune");
    assert_string_equal(a[0].strength_key, "sparsity");
    assert_true(fabs(a[1].strength - 0.5) < 1e-12);
    assert_non_null(strstr(a[2].label, "global=0"));
    assert_true(fabs(a[4].strength - 2) < 1e-12);
    assert_string_equal(a[5].type, "prune+ftal");
    assert_int_equal(a[5].n_steps, 2);
    free(a);
    cfg_free(c);
}

static void expect_error(const char *text, const char *line, const char *word) {
    char err[512];
    int rc, n;
    cfg *c = load_text(text, err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    attack_setting *a = NULL;
    assert_int_equal(attack_plan(c, &a, &n, err, sizeof err), -1);
    if (!strstr(err, line) || !strstr(err, word)) fail_msg("message '%s' lacks '%s' or '%s'", err, line, word);
    cfg_free(c);
}

static void test_plan_errors_name_file_line(void **state) {
    expect_error("[attack.x]\ntype = melt\n", ".ini:2", "melt");
    expect_error("[attack.x]\ntype = prune\nsparsity = 1.5\n", ".ini:3", "sparsity");
    expect_error("[attack.x]\ntype = prune\nepochs = 3\n", ".ini:3", "epochs");
    expect_error("[attack.x]\ntype = distill\narch = transformer\n", ".ini:3", "transformer");
    expect_error("[attack.x]\nsparsity = 0.5\n", ".ini:2", "type");
    expect_error("[attack.x]\nchain = nothere\n", ".ini:2", "nothere");
    expect_error("[attack.x]\ntype = ftal\noptimizer = rmsprop\n", ".ini:3", "optimizer");
}

/* Integer parameters refuse fractions (epochs = 0.5 once ran 0 epochs under a 0.5 label). */
static void test_plan_whole_numbers(void **state) {
    expect_error("[attack.x]\ntype = ftal\nepochs = 0.5\n", ".ini:3", "whole number");
    expect_error("[attack.x]\ntype = ftal\nbatch_size = 32.5\n", ".ini:3", "batch_size");
    expect_error("[attack.x]\ntype = quantize\nbits = 4, 2.5\n", ".ini:3", "bits");
    expect_error("[attack.x]\ntype = prune\nglobal = 0.5\n", ".ini:3", "global");
    expect_error("[attack.x]\ntype = distill\nwidth = 8.25\n", ".ini:3", "width");
}

/* Every value of a long sweep becomes a setting (once silently cut at 16), and the limits
 * that remain are errors that name them. */
static void test_plan_long_sweep_and_limits(void **state) {
    char text[4096] = "[attack.q]\ntype = noise\nsigma = 0";
    for (int i = 1; i < 40; i++)   /* continuation lines: inih limits a line's length */
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s, %g", i % 10 ? "" : "\n  ", i * 0.01);
    strcat(text, "\n");
    char err[512];
    int rc, n = 0;
    cfg *c = load_text(text, err, sizeof err, &rc);
    if (rc) fail_msg("cfg_load: %s", err);
    attack_setting *a = NULL;
    if (attack_plan(c, &a, &n, err, sizeof err)) fail_msg("attack_plan: %s", err);
    assert_int_equal(n, 40);
    assert_true(fabs(a[39].strength - 0.39) < 1e-12);
    free(a);
    cfg_free(c);
    expect_error("[attack.x]\ntype = ftal\nepochs=1\n[attack.c]\nchain = x, x, x, x, x\n", ".ini:5", "1 to 4");
}

/* ---- attacks on a tiny trained model ---------------------------------------------- */
static pmi_dataset train;
static nn_data *dtrain, *dattack;
static nn_model *victim;
static nn_model_spec spec;
static pmi_params params;

static int setup_model(void **state) {
    nn_set_threads(0);
    if (data_synthetic(600, 1, 8, 8, 10, 3, &train)) return -1;
    data_normalize(&train, DATA_NORM_UNIT, NULL, NULL);
    if (nn_data_create(train.x, train.y, 400, 1, 8, 8, NN_CPU, &dtrain) != NN_OK) return -1;
    int64_t idx[200];
    nn_data *all = NULL;
    if (nn_data_create(train.x, train.y, train.n, 1, 8, 8, NN_CPU, &all) != NN_OK) return -1;
    for (int i = 0; i < 200; i++) idx[i] = 400 + i;
    if (nn_data_subset(all, idx, 200, &dattack) != NN_OK) return -1;
    nn_data_free(all);
    spec = (nn_model_spec){.arch = "mlp", .c = 1, .h = 8, .w = 8, .classes = 10, .width = 64, .device = NN_CPU, .seed = 1};
    if (nn_model_create(&spec, &victim) != NN_OK) return -1;
    nn_train_params tp = nn_train_default_params();
    tp.epochs = 10; tp.lr = 0.05; tp.batch_size = 32; tp.seed = 1;
    return nn_train(victim, dtrain, &tp, NULL) == NN_OK ? 0 : -1;
}

static int teardown_model(void **state) {
    nn_model_free(victim); nn_data_free(dtrain); nn_data_free(dattack); data_free(&train);
    return 0;
}

static nn_model *apply(const char *ini) {
    char err[512];
    int rc, n;
    cfg *c = load_text(ini, err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    attack_setting *a = NULL;
    assert_int_equal(attack_plan(c, &a, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    attack_ctx ctx = {.attacker = dattack, .p = &params, .spec = spec, .seed = 9};
    nn_model *out = NULL;
    if (attack_apply(a, victim, &ctx, &out, err, sizeof err)) fail_msg("attack_apply: %s", err);
    free(a);
    cfg_free(c);
    return out;
}

/* 1 if tensor i of a and b are identical. */
static int same_tensor(nn_model *a, nn_model *b, int i) {
    const char *name; int64_t numel, shape[4]; int nd;
    nn_param_info(a, i, &name, &numel, shape, &nd);
    float *x = malloc(sizeof(float) * (size_t)numel), *y = malloc(sizeof(float) * (size_t)numel);
    nn_param_get(a, i, x); nn_param_get(b, i, y);
    int same = !memcmp(x, y, sizeof(float) * (size_t)numel);
    free(x); free(y);
    return same;
}

static void test_ftll_changes_only_last_layer(void **state) {
    nn_model *m = apply("[attack.a]\ntype = ftll\nepochs = 2\nlr = 0.05\n");
    int last = nn_last_layer_first_param(m);
    for (int i = 0; i < nn_param_count(m); i++)
        assert_int_equal(same_tensor(m, victim, i), i < last);
    nn_model_free(m);
}

static void test_rtal_changes_all_layers(void **state) {
    nn_model *m = apply("[attack.a]\ntype = rtal\nepochs = 1\n");
    for (int i = 0; i < nn_param_count(m); i++) assert_false(same_tensor(m, victim, i));
    nn_model_free(m);
}

static void test_fineprune_keeps_sparsity(void **state) {
    nn_model *m = apply("[attack.a]\ntype = fineprune\nsparsity = 0.6\nepochs = 2\n");
    assert_true(fabs(nn_sparsity(m) - 0.6) < 0.01);
    assert_true(nn_sparsity(victim) < 0.01);   /* the victim itself is untouched */
    nn_model_free(m);
}

/* Every attack type, a chain and a second victim applied at once through attack_apply_many give
 * what attack_apply gives for each alone, bit for bit on the CPU (the runner's batched path). */
static void test_apply_many_equals_one_by_one(void **state) {
    char err[512];
    int rc, n;
    cfg *c = load_text("[attack.ftll]\ntype = ftll\nepochs = 1\n[attack.ftal]\ntype = ftal\nepochs = 2\n"
                       "[attack.rtll]\ntype = rtll\nepochs = 1\n[attack.rtal]\ntype = rtal\nepochs = 1\n"
                       "[attack.prune]\ntype = prune\nsparsity = 0.5\n[attack.fp]\ntype = fineprune\nsparsity = 0.4\nepochs = 1\n"
                       "[attack.distill]\ntype = distill\nepochs = 1\n[attack.extract]\ntype = extract\narch = cnn\nepochs = 1\n"
                       "[attack.q]\ntype = quantize\nbits = 4\n[attack.noise]\ntype = noise\nsigma = 0.2\n"
                       "[attack.p5]\ntype = prune\nsparsity = 0.5\nenabled = 0\n[attack.f1]\ntype = ftal\nepochs = 1\nenabled = 0\n"
                       "[attack.chain]\nchain = p5, f1\n",
                       err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    attack_setting *a = NULL;
    assert_int_equal(attack_plan(c, &a, &n, err, sizeof err), 0);
    assert_int_equal(n, 11);
    nn_model *second = NULL;
    assert_int_equal(nn_model_copy(victim, &second), NN_OK);
    nn_add_noise(second, 0.5, 77);
    /* every setting on the victim, then every setting on the second victim: 2n at once */
    const attack_setting **as = calloc(2 * (size_t)n, sizeof *as);
    const nn_model **vs = calloc(2 * (size_t)n, sizeof *vs);
    attack_ctx *ctx = calloc(2 * (size_t)n, sizeof *ctx);
    nn_model **many = calloc(2 * (size_t)n, sizeof *many);
    for (int i = 0; i < 2 * n; i++) {
        as[i] = &a[i % n];
        vs[i] = i < n ? victim : second;
        ctx[i] = (attack_ctx){.attacker = dattack, .p = &params, .spec = spec, .seed = 9 + (uint64_t)(i / n)};
    }
    if (attack_apply_many(as, vs, ctx, 2 * n, many, err, sizeof err)) fail_msg("attack_apply_many: %s", err);
    for (int i = 0; i < 2 * n; i++) {
        nn_model *one = NULL;
        if (attack_apply(as[i], vs[i], &ctx[i], &one, err, sizeof err)) fail_msg("attack_apply: %s", err);
        assert_int_equal(nn_param_count(one), nn_param_count(many[i]));
        for (int q = 0; q < nn_param_count(one); q++)
            if (!same_tensor(one, many[i], q)) fail_msg("attack %s on victim %d: tensor %d differs", as[i]->name, i / n, q);
        nn_model_free(one);
        nn_model_free(many[i]);
    }
    /* an attack that cannot run names itself, and nothing is returned */
    ctx[0].attacker = NULL;
    assert_int_equal(attack_apply_many(as, vs, ctx, 2, many, err, sizeof err), -1);
    assert_non_null(strstr(err, "attack ftll (ftll): needs attacker data"));
    free(as); free(vs); free(ctx); free(many); free(a);
    nn_model_free(second);
    cfg_free(c);
}

static void test_quantize_levels(void **state) {
    nn_model *m = apply("[attack.a]\ntype = quantize\nbits = 3\n");
    for (int i = 0; i < nn_param_count(m); i++) {
        const char *name; int64_t numel, shape[4]; int nd;
        nn_param_info(m, i, &name, &numel, shape, &nd);
        float *x = malloc(sizeof(float) * (size_t)numel);
        nn_param_get(m, i, x);
        float seen[16]; int ns = 0;
        for (int64_t j = 0; j < numel; j++) {
            int found = 0;
            for (int q = 0; q < ns && !found; q++) found = seen[q] == x[j];
            if (!found) { assert_true(ns < 8); seen[ns++] = x[j]; }
        }
        free(x);
    }
    nn_model_free(m);
}

static void test_distill_student_is_fresh_and_close(void **state) {
    nn_model *m = apply("[attack.a]\ntype = distill\narch = cnn\nepochs = 60\nlr = 0.003\noptimizer = adam\ntemperature = 2\nalpha = 1\n");
    /* a different architecture: the student's tensors have other names/counts than the victim's */
    assert_int_not_equal(nn_param_count(m), nn_param_count(victim));
    int64_t n = nn_data_size(dattack);
    float *a = malloc(sizeof(float) * (size_t)n * 10), *b = malloc(sizeof(float) * (size_t)n * 10);
    nn_eval_logp(m, dattack, a);
    nn_eval_logp(victim, dattack, b);
    int agree = 0;
    for (int64_t i = 0; i < n; i++) {
        int am = 0, bm = 0;
        for (int k = 1; k < 10; k++) { if (a[i * 10 + k] > a[i * 10 + am]) am = k; if (b[i * 10 + k] > b[i * 10 + bm]) bm = k; }
        agree += am == bm;
    }
    if (agree <= 0.8 * (double)n) fail_msg("student agrees with the teacher on %d of %lld", agree, (long long)n);
    free(a); free(b);
    nn_model_free(m);
}

static void test_noise_changes_weights(void **state) {
    nn_model *m = apply("[attack.a]\ntype = noise\nsigma = 0.5\n");
    for (int i = 0; i < nn_param_count(m); i++) assert_false(same_tensor(m, victim, i));
    nn_model_free(m);
}

int main(void) {
    const struct CMUnitTest plan_tests[] = {
        cmocka_unit_test(test_plan_sweep_and_chain),
        cmocka_unit_test(test_plan_errors_name_file_line),
        cmocka_unit_test(test_plan_whole_numbers),
        cmocka_unit_test(test_plan_long_sweep_and_limits),
    };
    const struct CMUnitTest model_tests[] = {
        cmocka_unit_test(test_ftll_changes_only_last_layer),
        cmocka_unit_test(test_rtal_changes_all_layers),
        cmocka_unit_test(test_fineprune_keeps_sparsity),
        cmocka_unit_test(test_quantize_levels),
        cmocka_unit_test(test_apply_many_equals_one_by_one),
        cmocka_unit_test(test_distill_student_is_fresh_and_close),
        cmocka_unit_test(test_noise_changes_weights),
    };
    int fails = cmocka_run_group_tests_name("attack plan", plan_tests, NULL, NULL);
    return fails + cmocka_run_group_tests_name("attack apply", model_tests, setup_model, teardown_model);
}
