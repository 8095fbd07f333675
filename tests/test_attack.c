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

/* The one setting of ini fails on the victim with a message that holds word. */
static void apply_fails(const char *ini, const char *word) {
    char err[512];
    int rc, n;
    cfg *c = load_text(ini, err, sizeof err, &rc);
    attack_setting *a = NULL;
    assert_int_equal(attack_plan(c, &a, &n, err, sizeof err), 0);
    attack_ctx ctx = {.attacker = dattack, .p = &params, .spec = spec, .seed = 9};
    nn_model *out = NULL;
    assert_int_equal(attack_apply(a, victim, &ctx, &out, err, sizeof err), -1);
    if (!strstr(err, word)) fail_msg("message '%s' lacks '%s'", err, word);
    free(a); cfg_free(c);
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

static void test_prune_ft_keeps_sparsity(void **state) {
    nn_model *m = apply("[attack.a]\ntype = prune-ft\nsparsity = 0.6\nepochs = 2\n");
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
                       "[attack.chain]\nchain = p5, f1\n"
                       "[attack.smooth]\ntype = smooth\nepochs = 1\n[attack.noisy]\ntype = noisyft\nepochs = 1\nsigma = 1\n"
                       "[attack.adv]\ntype = advtrain\nepochs = 1\n[attack.flood]\ntype = flood\nepochs = 1\n"
                       "[attack.transfer]\ntype = transfer\nepochs = 1\n[attack.label]\ntype = label\n"
                       "[attack.pft]\ntype = prune-ft\nsparsity = 0.4\nepochs = 1\n[attack.shuffle]\ntype = shuffle\n"
                       "[attack.wshift]\ntype = wshift\nsigma = 1\nepochs = 1\n"
                       "[attack.overwrite]\ntype = overwrite\nsamples = 10\nepochs = 1\n",
                       err, sizeof err, &rc);
    assert_int_equal(rc, 0);
    attack_setting *a = NULL;
    assert_int_equal(attack_plan(c, &a, &n, err, sizeof err), 0);
    assert_int_equal(n, 21);
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

static double max_diff(const float *a, const float *b, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* A model of arch (width w) trained two epochs on the 8x8 training set, BatchNorm statistics
 * and all. */
static nn_model *trained(const char *arch, int w) {
    nn_model_spec sp = spec;
    sp.arch = arch; sp.width = w;
    nn_model *m = NULL;
    assert_int_equal(nn_model_create(&sp, &m), NN_OK);
    nn_train_params tp = nn_train_default_params();
    tp.epochs = 2; tp.lr = 0.02; tp.batch_size = 32; tp.seed = 5;
    assert_int_equal(nn_train(m, dtrain, &tp, NULL), NN_OK);
    return m;
}

/* Neuron shuffling moves weights but not the function, in every architecture (ResNet's
 * blocks inside), pruning masks included. */
static void test_shuffle_preserves_function(void **state) {
    const char *archs[] = {"mlp", "lenet", "cnn", "vgg11", "resnet18"};
    const int widths[] = {32, 6, 8, 8, 8};
    int64_t n = nn_data_size(dattack);
    for (int a = 0; a < 5; a++) {
        nn_model *m = trained(archs[a], widths[a]), *s = NULL;
        if (a == 2) assert_int_equal(nn_prune(m, 0.5, 1, NULL), NN_OK);
        assert_int_equal(nn_model_copy(m, &s), NN_OK);
        assert_int_equal(nn_shuffle_units(s, 11), NN_OK);
        float *x = malloc(sizeof(float) * (size_t)n * 10), *y = malloc(sizeof(float) * (size_t)n * 10);
        assert_int_equal(nn_eval_logp(m, dattack, x), NN_OK);
        assert_int_equal(nn_eval_logp(s, dattack, y), NN_OK);
        double d = max_diff(x, y, n * 10);
        if (d > 1e-4) fail_msg("%s: shuffled outputs differ by %g", archs[a], d);
        int moved = 0;
        for (int i = 0; i < nn_param_count(m); i++) moved += !same_tensor(m, s, i);
        if (moved < 2) fail_msg("%s: only %d tensors moved", archs[a], moved);
        if (a == 2) {   /* the masks moved with the weights: training keeps the sparsity */
            nn_train_params tp = nn_train_default_params();
            tp.epochs = 1; tp.batch_size = 32; tp.seed = 2;
            assert_int_equal(nn_train(s, dattack, &tp, NULL), NN_OK);
            assert_true(fabs(nn_sparsity(s) - 0.5) < 0.01);
        }
        free(x); free(y);
        nn_model_free(m); nn_model_free(s);
    }
}

/* Fine-Pruning removes round(f C) of the last convolution's C channels, those least active on
 * the attacker's data, and fine-tuning keeps them removed; a ResNet is refused by name. */
static void test_fineprune_removes_least_active_channels(void **state) {
    nn_model *saved = victim;
    victim = trained("cnn", 8);
    nn_model *m = apply("[attack.a]\ntype = fineprune\nsparsity = 0.5\nepochs = 2\n");
    /* cnn: conv1 (8), conv2 (16 channels): tensors 2 and 3 */
    const char *name; int64_t numel, shape[4]; int nd;
    nn_param_info(m, 2, &name, &numel, shape, &nd);
    assert_string_equal(name, "conv2.weight");
    float *w = malloc(sizeof(float) * (size_t)numel), *b = malloc(sizeof(float) * (size_t)shape[0]);
    nn_param_get(m, 2, w); nn_param_get(m, 3, b);
    int64_t per = numel / shape[0];
    int removed = 0;
    for (int64_t c = 0; c < shape[0]; c++) {
        int zero = b[c] == 0;
        for (int64_t j = 0; j < per; j++) zero &= w[c * per + j] == 0;
        removed += zero;
    }
    assert_int_equal(removed, 8);
    /* conv1 was not pruned */
    nn_param_info(m, 0, &name, &numel, shape, &nd);
    float *w1 = malloc(sizeof(float) * (size_t)numel);
    nn_param_get(m, 0, w1);
    int zeros = 0;
    for (int64_t j = 0; j < numel; j++) zeros += w1[j] == 0;
    assert_int_equal(zeros, 0);
    free(w); free(b); free(w1);
    nn_model_free(m);
    nn_model_free(victim);
    victim = trained("resnet18", 8);
    apply_fails("[attack.a]\ntype = fineprune\nepochs = 1\n", "not sequential");
    nn_model_free(victim);
    victim = saved;
}

/* Weight shifting (WRT): each convolution weight loses lambda times its mean filter (exactly, with
 * sigma 0) and gains noise of sigma times its std (deterministic in the seed); no other tensor
 * moves; through the attack, wshift is that followed by ftal's fine-tuning. */
static void test_wshift_shifts_conv_filters(void **state) {
    nn_model *m = trained("cnn", 8), *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(nn_model_copy(m, &a), NN_OK);
    assert_int_equal(nn_model_copy(m, &b), NN_OK);
    assert_int_equal(nn_model_copy(m, &c), NN_OK);
    assert_int_equal(nn_shift_weights(a, 1.5, 0, 3), NN_OK);
    assert_int_equal(nn_shift_weights(b, 0, 0.5, 3), NN_OK);
    assert_int_equal(nn_shift_weights(c, 0, 0.5, 3), NN_OK);
    assert_int_equal(nn_shift_weights(c, -1, 0, 3), NN_EINVAL);
    int convs = 0;
    for (int q = 0; q < nn_param_count(m); q++) {
        int64_t numel, shape[4]; int nd;
        nn_param_info(m, q, NULL, &numel, shape, &nd);
        float *w0 = malloc(sizeof(float) * (size_t)numel), *wa = malloc(sizeof(float) * (size_t)numel);
        float *wb = malloc(sizeof(float) * (size_t)numel);
        nn_param_get(m, q, w0); nn_param_get(a, q, wa); nn_param_get(b, q, wb);
        if (nd != 4) {
            assert_memory_equal(w0, wa, sizeof(float) * (size_t)numel);
            assert_memory_equal(w0, wb, sizeof(float) * (size_t)numel);
        } else {
            convs++;
            int64_t per = numel / shape[0];
            double mean = 0, sd = 0, dv = 0;
            for (int64_t j = 0; j < numel; j++) mean += w0[j] / (double)numel;
            for (int64_t j = 0; j < numel; j++) sd += (w0[j] - mean) * (w0[j] - mean) / (double)numel;
            for (int64_t j = 0; j < per; j++) {
                double mf = 0;
                for (int64_t o = 0; o < shape[0]; o++) mf += w0[o * per + j] / (double)shape[0];
                for (int64_t o = 0; o < shape[0]; o++)
                    if (fabs(wa[o * per + j] - (w0[o * per + j] - 1.5 * mf)) > 1e-5) fail_msg("tensor %d: not w - 1.5 mean_0(w)", q);
            }
            for (int64_t j = 0; j < numel; j++) dv += (wb[j] - w0[j]) * (wb[j] - w0[j]) / (double)numel;
            double ratio = sqrt(dv) / (0.5 * sqrt(sd));
            if (ratio < 0.8 || ratio > 1.2) fail_msg("tensor %d: noise std %g of sigma * std", q, ratio);
        }
        free(w0); free(wa); free(wb);
    }
    assert_int_equal(convs, 2);
    for (int q = 0; q < nn_param_count(m); q++) assert_true(same_tensor(b, c, q));   /* the seed fixes the noise */
    nn_model *saved = victim;
    victim = m;
    nn_model *shifted = apply("[attack.a]\ntype = wshift\nlambda = 1.5\nsigma = 0.5\nepochs = 0\n");
    assert_false(same_tensor(shifted, m, 0));
    nn_model_free(shifted);
    victim = saved;
    nn_model_free(m); nn_model_free(a); nn_model_free(b); nn_model_free(c);
}

static double mean_ce(nn_model *m, const nn_data *d, const int32_t *y);

/* Overwriting plants the thief's own membership: its mini-dataset (the first `samples` of its
 * data, in its training set `repeat` times) ends with a lower loss than after ftal alone; more
 * samples than the attacker has is refused with the count. */
static void test_overwrite_plants_own_pool(void **state) {
    nn_model *ft = apply("[attack.a]\ntype = ftal\nepochs = 3\n");
    nn_model *ow = apply("[attack.a]\ntype = overwrite\nsamples = 20\nrepeat = 8\nepochs = 3\n");
    int64_t idx[20];
    for (int i = 0; i < 20; i++) idx[i] = i;
    nn_data *own = NULL;
    assert_int_equal(nn_data_subset(dattack, idx, 20, &own), NN_OK);
    int32_t y[20];
    assert_int_equal(nn_data_labels(own, y), NN_OK);
    double lf = mean_ce(ft, own, y), lo = mean_ce(ow, own, y);
    print_message("the thief's own 20 samples: loss %.4f after ftal, %.4f after overwrite\n", lf, lo);
    if (!(lo < 0.8 * lf)) fail_msg("overwrite did not plant its samples: loss %g vs ftal's %g", lo, lf);
    nn_data_free(own);
    nn_model_free(ft); nn_model_free(ow);
    apply_fails("[attack.a]\ntype = overwrite\nsamples = 1000000\nepochs = 1\n", "the attacker's data has only");
}

/* ---- the interface (evaluation-time transforms) ------------------------------------ */
/* m's log-probabilities on the first n samples of the training set, transformed on the host by
 * `host` first when it is given (NULL: as they are). */
static float *logp_of(nn_model *m, int n, void (*host)(float *img, int h, int w)) {
    float *x = malloc(sizeof(float) * (size_t)n * 64), *lp = malloc(sizeof(float) * (size_t)n * 10);
    memcpy(x, train.x, sizeof(float) * (size_t)n * 64);
    if (host) for (int i = 0; i < n; i++) host(x + i * 64, 8, 8);
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(x, train.y, n, 1, 8, 8, NN_CPU, &d), NN_OK);
    assert_int_equal(nn_eval_logp(m, d, lp), NN_OK);
    nn_data_free(d); free(x);
    return lp;
}

static void host_flip(float *a, int h, int w) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w / 2; x++) { float t = a[y * w + x]; a[y * w + x] = a[y * w + w - 1 - x]; a[y * w + w - 1 - x] = t; }
}
static void host_shift2(float *a, int h, int w) {
    float b[64], lo = a[0];
    for (int i = 0; i < h * w; i++) lo = a[i] < lo ? a[i] : lo;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) b[y * w + x] = y >= 2 && x >= 2 ? a[(y - 2) * w + x - 2] : lo;
    memcpy(a, b, sizeof(float) * (size_t)(h * w));
}
static void host_blur1(float *a, int h, int w) {
    float b[64];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double s = 0; int n = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++)
                    if (y + dy >= 0 && y + dy < h && x + dx >= 0 && x + dx < w) { s += a[(y + dy) * w + x + dx]; n++; }
            b[y * w + x] = (float)(s / n);
        }
    memcpy(a, b, sizeof(float) * (size_t)(h * w));
}
static void host_quant2(float *a, int h, int w) {
    float lo = a[0], hi = a[0];
    for (int i = 0; i < h * w; i++) { lo = a[i] < lo ? a[i] : lo; hi = a[i] > hi ? a[i] : hi; }
    double step = (hi - lo) / 3.0;
    for (int i = 0; i < h * w; i++) a[i] = (float)(nearbyint((a[i] - lo) / step) * step + lo);
}

/* Each input transform is its definition: the model queried through it answers what the plain
 * model answers on images transformed by hand (flip and shift exactly; blur and quantise to
 * float rounding), and its weights are the victim's. */
static void test_interface_inputs_are_their_definition(void **state) {
    struct { const char *ini; void (*host)(float *, int, int); double tol; } cases[] = {
        {"[attack.a]\ntype = flip\n", host_flip, 0},
        {"[attack.a]\ntype = shift\npixels = 2\n", host_shift2, 0},
        {"[attack.a]\ntype = blur\npixels = 1\n", host_blur1, 1e-4},
        {"[attack.a]\ntype = inquant\nbits = 2\n", host_quant2, 1e-4},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nn_model *m = apply(cases[c].ini);
        for (int i = 0; i < nn_param_count(m); i++) assert_true(same_tensor(m, victim, i));
        float *got = logp_of(m, 100, NULL), *want = logp_of(victim, 100, cases[c].host), *plain = logp_of(victim, 100, NULL);
        double d = max_diff(got, want, 1000);
        if (d > cases[c].tol) fail_msg("%s: differs from its definition by %g", cases[c].ini, d);
        assert_true(max_diff(got, plain, 1000) > 1e-3);   /* and it did change the answers */
        free(got); free(want); free(plain);
        nn_model_free(m);
    }
    /* wider than the 8x8 image, more classes than 10: refused with the range */
    apply_fails("[attack.a]\ntype = shift\npixels = 20\n", "shift needs a whole number of pixels in [0, 7], got 20");
    apply_fails("[attack.a]\ntype = topk\nk = 11\n", "topk needs k in [1, 10], got 11");
}

static int argmax_row(const float *r) {
    int a = 0;
    for (int k = 1; k < 10; k++) if (r[k] > r[a]) a = k;
    return a;
}

/* Each output transform gives what it says: label a one-hot answer of the same class, topk k
 * probabilities (the largest, renormalised), round multiples of 10^-d, temperature
 * log_softmax(logp / T), rsigmoid a distribution; accuracy is measured on the answers; the
 * noise transforms are deterministic in the seed and sigma = 0 is no transform. */
static void test_interface_outputs_are_their_definition(void **state) {
    const int n = 100;
    float *plain = logp_of(victim, n, NULL);
    nn_model *m = apply("[attack.a]\ntype = label\n");
    float *lp = logp_of(m, n, NULL);
    for (int i = 0; i < n; i++) {
        int a = argmax_row(plain + i * 10);
        for (int k = 0; k < 10; k++) assert_true(k == a ? lp[i * 10 + k] == 0.0f : expf(lp[i * 10 + k]) <= 1.0001e-12);
    }
    double acc_plain, acc_label;
    assert_int_equal(nn_accuracy(victim, dattack, &acc_plain), NN_OK);
    assert_int_equal(nn_accuracy(m, dattack, &acc_label), NN_OK);
    assert_true(acc_plain == acc_label);
    free(lp); nn_model_free(m);

    m = apply("[attack.a]\ntype = topk\nk = 3\n");
    lp = logp_of(m, n, NULL);
    for (int i = 0; i < n; i++) {
        double kept = 0, sum = 0; int nk = 0;
        float third = -INFINITY;   /* the third largest plain log-probability */
        float r[10]; memcpy(r, plain + i * 10, sizeof r);
        for (int t = 0; t < 3; t++) { int a = argmax_row(r); third = r[a]; kept += exp(r[a]); r[a] = -INFINITY; }
        for (int k = 0; k < 10; k++) {
            double p = exp(lp[i * 10 + k]);
            if (p > 1e-11) { nk++; sum += p; assert_true(plain[i * 10 + k] >= third);
                             assert_true(fabs(p - exp(plain[i * 10 + k]) / kept) < 1e-5); }
        }
        assert_true(nk <= 3 && fabs(sum - 1) < 1e-5);
    }
    free(lp); nn_model_free(m);

    m = apply("[attack.a]\ntype = round\ndecimals = 1\n");
    lp = logp_of(m, n, NULL);
    for (int i = 0; i < n * 10; i++) {
        double p = exp(lp[i]);
        if (p > 1e-11) assert_true(fabs(p * 10 - nearbyint(p * 10)) < 1e-5);
        assert_true(fabs(p - exp(plain[i])) <= 0.05 + 1e-6 || p <= 1e-11);
    }
    free(lp); nn_model_free(m);

    m = apply("[attack.a]\ntype = temperature\ntemperature = 3\n");
    lp = logp_of(m, n, NULL);
    for (int i = 0; i < n; i++) {
        double z = 0;
        for (int k = 0; k < 10; k++) z += exp(plain[i * 10 + k] / 3.0);
        for (int k = 0; k < 10; k++) assert_true(fabs(lp[i * 10 + k] - (plain[i * 10 + k] / 3.0 - log(z))) < 1e-4);
        assert_int_equal(argmax_row(lp + i * 10), argmax_row(plain + i * 10));
    }
    free(lp); nn_model_free(m);

    m = apply("[attack.a]\ntype = rsigmoid\nbeta = 0.7\ngamma = 0.5\n");
    lp = logp_of(m, n, NULL);
    for (int i = 0; i < n; i++) {
        double sum = 0;
        for (int k = 0; k < 10; k++) sum += exp(lp[i * 10 + k]);
        assert_true(fabs(sum - 1) < 1e-4);
    }
    assert_true(max_diff(lp, plain, n * 10) > 1e-3);
    free(lp); nn_model_free(m);

    for (int side = 0; side < 2; side++) {
        const char *noisy = side ? "[attack.a]\ntype = outnoise\nsigma = 0.05\n" : "[attack.a]\ntype = innoise\nsigma = 0.3\n";
        const char *zero = side ? "[attack.a]\ntype = outnoise\nsigma = 0\n" : "[attack.a]\ntype = innoise\nsigma = 0\n";
        nn_model *a = apply(noisy), *b = apply(noisy), *z = apply(zero);
        float *la = logp_of(a, n, NULL), *lb = logp_of(b, n, NULL), *lz = logp_of(z, n, NULL);
        assert_true(max_diff(la, lb, n * 10) == 0);      /* the same seed, the same noise */
        assert_true(max_diff(la, plain, n * 10) > 1e-3);
        assert_true(max_diff(lz, plain, n * 10) < 1e-5);
        free(la); free(lb); free(lz);
        nn_model_free(a); nn_model_free(b); nn_model_free(z);
    }
    /* a copy keeps the interface */
    m = apply("[attack.a]\ntype = label\n");
    nn_model *c = NULL;
    assert_int_equal(nn_model_copy(m, &c), NN_OK);
    float *l1 = logp_of(m, n, NULL), *l2 = logp_of(c, n, NULL);
    assert_true(max_diff(l1, l2, n * 10) == 0);
    free(l1); free(l2); nn_model_free(c); nn_model_free(m);
    free(plain);
}

/* The training recipes: at their neutral value each is plain fine-tuning bit for bit
 * (smoothing 0, clip never reached with no noise, eps 0); at a real value each trains
 * differently and deterministically. */
static void test_recipes_neutral_and_deterministic(void **state) {
    nn_model *ft = apply("[attack.a]\ntype = ftal\nepochs = 2\n");
    const char *neutral[] = {"[attack.a]\ntype = smooth\nsmoothing = 0\nepochs = 2\n",
                             "[attack.a]\ntype = noisyft\nclip = 1000000\nsigma = 0\nepochs = 2\n",
                             "[attack.a]\ntype = advtrain\neps = 0\nepochs = 2\n",
                             "[attack.a]\ntype = wshift\nlambda = 0\nsigma = 0\nepochs = 2\n",
                             "[attack.a]\ntype = overwrite\nrepeat = 1\nepochs = 2\n"};
    const char *real[] = {"[attack.a]\ntype = smooth\nsmoothing = 0.3\nepochs = 2\n",
                          "[attack.a]\ntype = noisyft\nclip = 1\nsigma = 1\nepochs = 2\n",
                          "[attack.a]\ntype = advtrain\neps = 0.3\nsteps = 2\nepochs = 2\n",
                          "[attack.a]\ntype = flood\nlevel = 1\nepochs = 2\n",
                          "[attack.a]\ntype = overwrite\nsamples = 20\nrepeat = 4\nepochs = 2\n"};
    for (size_t c = 0; c < sizeof neutral / sizeof neutral[0]; c++) {
        nn_model *m = apply(neutral[c]);
        for (int i = 0; i < nn_param_count(m); i++)
            if (!same_tensor(m, ft, i)) fail_msg("%s: tensor %d differs from ftal's", neutral[c], i);
        nn_model_free(m);
    }
    for (size_t c = 0; c < sizeof real / sizeof real[0]; c++) {
        nn_model *a = apply(real[c]), *b = apply(real[c]);
        int differs = 0;
        for (int i = 0; i < nn_param_count(a); i++) {
            if (!same_tensor(a, b, i)) fail_msg("%s: tensor %d differs between two runs", real[c], i);
            differs |= !same_tensor(a, ft, i);
        }
        if (!differs) fail_msg("%s: the same as ftal", real[c]);
        nn_model_free(a); nn_model_free(b);
    }
    nn_model_free(ft);
}

/* m's mean cross-entropy on d. */
static double mean_ce(nn_model *m, const nn_data *d, const int32_t *y) {
    int64_t n = nn_data_size(d);
    float *lp = malloc(sizeof(float) * (size_t)n * 10);
    assert_int_equal(nn_eval_logp(m, d, lp), NN_OK);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s -= lp[i * 10 + y[i]];
    free(lp);
    return s / (double)n;
}

/* Flooding above every sample's loss is gradient ascent: the loss on the training data rises
 * (while the flooded objective, 2 level - loss, falls). */
static void test_flood_pushes_loss_up(void **state) {
    nn_model *m = NULL;
    assert_int_equal(nn_model_copy(victim, &m), NN_OK);
    int32_t *y = malloc(sizeof *y * (size_t)nn_data_size(dattack));
    assert_int_equal(nn_data_labels(dattack, y), NN_OK);
    for (int i = 0; i < 200; i++) assert_int_equal(y[i], train.y[400 + i]);
    double before = mean_ce(m, dattack, y);
    nn_train_params tp = nn_train_default_params();
    tp.epochs = 4; tp.lr = 0.01; tp.batch_size = 32; tp.seed = 3; tp.flood = 100;
    assert_int_equal(nn_train(m, dattack, &tp, NULL), NN_OK);
    double after = mean_ce(m, dattack, y);
    if (!(after > before + 1)) fail_msg("loss %g -> %g under flooding at 100", before, after);
    free(y);
    tp.flood = -1;
    assert_int_equal(nn_train(m, dattack, &tp, NULL), NN_EINVAL);
    nn_model_free(m);
}

/* Transfer with freeze = 1 changes the head only, and the model then answers only the new
 * task's classes; a new task as large as the old is refused by name. */
static void test_transfer_freezes_and_narrows(void **state) {
    nn_model *m = apply("[attack.a]\ntype = transfer\nclasses = 5\nfreeze = 1\nepochs = 10\nlr = 0.05\n");
    int last = nn_last_layer_first_param(m);
    for (int i = 0; i < nn_param_count(m); i++) assert_int_equal(same_tensor(m, victim, i), i < last);
    int64_t n = nn_data_size(dattack);
    float *lp = malloc(sizeof(float) * (size_t)n * 10);
    assert_int_equal(nn_eval_logp(m, dattack, lp), NN_OK);
    int inside = 0;
    for (int64_t i = 0; i < n; i++) inside += argmax_row(lp + i * 10) < 5;
    if (inside < 0.95 * (double)n) fail_msg("%d of %lld answers in the new task's 5 classes", inside, (long long)n);
    free(lp);
    nn_model_free(m);
    m = apply("[attack.a]\ntype = transfer\nclasses = 5\nfreeze = 0\nepochs = 1\n");
    for (int i = 0; i < nn_param_count(m); i++) assert_false(same_tensor(m, victim, i));
    nn_model_free(m);
    apply_fails("[attack.a]\ntype = transfer\nclasses = 10\n", "classes = 10");
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
        cmocka_unit_test(test_prune_ft_keeps_sparsity),
        cmocka_unit_test(test_fineprune_removes_least_active_channels),
        cmocka_unit_test(test_shuffle_preserves_function),
        cmocka_unit_test(test_wshift_shifts_conv_filters),
        cmocka_unit_test(test_overwrite_plants_own_pool),
        cmocka_unit_test(test_quantize_levels),
        cmocka_unit_test(test_apply_many_equals_one_by_one),
        cmocka_unit_test(test_distill_student_is_fresh_and_close),
        cmocka_unit_test(test_noise_changes_weights),
        cmocka_unit_test(test_interface_inputs_are_their_definition),
        cmocka_unit_test(test_interface_outputs_are_their_definition),
        cmocka_unit_test(test_recipes_neutral_and_deterministic),
        cmocka_unit_test(test_flood_pushes_loss_up),
        cmocka_unit_test(test_transfer_freezes_and_narrows),
    };
    int fails = cmocka_run_group_tests_name("attack plan", plan_tests, NULL, NULL);
    return fails + cmocka_run_group_tests_name("attack apply", model_tests, setup_model, teardown_model);
}
