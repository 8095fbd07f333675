/* GPU tests: run on a machine whose libtorch has CUDA (the GPU machine, see README); every
 * test skips itself where CUDA is absent (CI). They check that the CUDA path computes what
 * the CPU path computes (one CPU test of the group trainer runs everywhere): the same weights give the same log-probabilities on both devices,
 * CUDA-graph training (SGD) follows eager training, and a model trained on the GPU fits. */
#include "testutil.h"
#include "data.h"
#include "nn.h"
#include "eval.h"
#include "pmi.h"
#include <math.h>
#include <pthread.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

static int have_cuda(void) {
    nn_device dev;
    char name[128];
    return nn_device_resolve(2, &dev, name, sizeof name) == NN_OK;
}

static pmi_dataset data;
static int setup(void **state) {
    if (data_synthetic(2000, 1, 8, 8, 10, 5, &data)) return -1;
    data_normalize(&data, DATA_NORM_UNIT, NULL, NULL);
    return 0;
}
static int teardown(void **state) { data_free(&data); return 0; }

static nn_model *make(const char *arch, nn_device dev, uint64_t seed) {
    nn_model_spec spec = {.arch = arch, .c = 1, .h = 8, .w = 8, .classes = 10, .device = dev, .seed = seed};
    nn_model *m = NULL;
    assert_int_equal(nn_model_create(&spec, &m), NN_OK);
    return m;
}

/* b's state := a's, parameters and buffers (the same architecture, any devices). */
static void copy_weights(nn_model *a, nn_model *b) {
    for (int i = 0; i < nn_state_count(a); i++) {
        int64_t numel, shape[NN_MAX_DIMS];
        nn_dtype dt;
        int nd;
        assert_int_equal(nn_state_info(a, i, NULL, &dt, shape, &nd, &numel), NN_OK);
        void *w = malloc(8 * (size_t)numel);
        assert_int_equal(nn_state_get(a, i, w), NN_OK);
        assert_int_equal(nn_state_set(b, i, w), NN_OK);
        free(w);
    }
}

/* The same weights give the same log-probabilities on the CPU and on the GPU. */
static void test_cpu_gpu_same_logp(void **state) {
    if (!have_cuda()) skip();
    nn_model *a = make("cnn", NN_CPU, 3), *b = make("cnn", NN_CUDA, 4);
    copy_weights(a, b);
    nn_data *dc = NULL, *dg = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, 500, 1, 8, 8, NN_CPU, &dc), NN_OK);
    assert_int_equal(nn_data_create(data.x, data.y, 500, 1, 8, 8, NN_CUDA, &dg), NN_OK);
    float *la = malloc(sizeof(float) * 5000), *lb = malloc(sizeof(float) * 5000);
    assert_int_equal(nn_eval_logp(a, dc, la), NN_OK);
    assert_int_equal(nn_eval_logp(b, dg, lb), NN_OK);
    double num = 0, den = 0;
    for (int i = 0; i < 5000; i++) { num += (la[i] - lb[i]) * (la[i] - lb[i]); den += la[i] * la[i]; }
    if (sqrt(num / den) > 1e-3) fail_msg("relative difference %g", sqrt(num / den));
    free(la); free(lb);
    nn_data_free(dc); nn_data_free(dg); nn_model_free(a); nn_model_free(b);
}

static void train_curve(int graph, double *curve) {
    setenv("PMI_CUDA_GRAPH", graph ? "1" : "0", 1);
    nn_model *m = make("cnn", NN_CUDA, 7);
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, data.n, 1, 8, 8, NN_CUDA, &d), NN_OK);
    nn_train_params tp = nn_train_default_params();
    tp.epochs = 5; tp.lr = 0.02; tp.momentum = 0.9; tp.batch_size = 64; tp.seed = 3;
    assert_int_equal(nn_train(m, d, &tp, curve), NN_OK);
    nn_data_free(d); nn_model_free(m);
    unsetenv("PMI_CUDA_GRAPH");
}

/* CUDA-graph replays (SGD) follow eager training: the same seeds give loss curves that agree
 * to GPU rounding, and the loss falls. */
static void test_graph_matches_eager(void **state) {
    if (!have_cuda()) skip();
    double g[5], e[5];
    train_curve(1, g);
    train_curve(0, e);
    for (int i = 0; i < 5; i++) {
        fprintf(stderr, "epoch %d: graph %.6f eager %.6f\n", i, g[i], e[i]);
        if (fabs(g[i] - e[i]) > 1e-3 * fabs(e[i]) + 1e-5) fail_msg("epoch %d: graph %g vs eager %g", i, g[i], e[i]);
    }
    assert_true(g[4] < g[0]);
}

/* vgg11 (BatchNorm) trains through the graph path too and fits the data. */
static void test_graph_batchnorm_fits(void **state) {
    if (!have_cuda()) skip();
    nn_model *m = make("vgg11", NN_CUDA, 9);
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, data.n, 1, 8, 8, NN_CUDA, &d), NN_OK);
    nn_train_params tp = nn_train_default_params();
    tp.epochs = 15; tp.lr = 0.02; tp.momentum = 0.9; tp.batch_size = 64; tp.seed = 3;
    assert_int_equal(nn_train(m, d, &tp, NULL), NN_OK);
    double acc;
    assert_int_equal(nn_accuracy(m, d, &acc), NN_OK);
    /* 15 epochs on 2000 synthetic 8x8 samples: 0.40-0.6 on H100s in five runs (GPU training is
     * not deterministic); a broken captured BatchNorm step stays near chance, 0.1 */
    print_message("VGG-11 (BatchNorm) training accuracy after 15 graph epochs: %.3f\n", acc);
    if (acc < 0.3) fail_msg("training accuracy %g (chance: 0.1)", acc);
    nn_data_free(d); nn_model_free(m);
}

/* nn_train_group leaves every model as its own nn_train would: bit for bit on the CPU (one
 * after another), to GPU rounding on a GPU (streams and graphs, interleaved). */
static void group_vs_single(nn_device dev, double tol) {
    enum { K = 3 };
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, data.n, 1, 8, 8, dev, &d), NN_OK);
    nn_model *g[K], *s[K];
    const nn_data *ds[K];
    nn_train_params tp[K];
    double cg[K][4], cs[K][4], *curves[K];
    for (int i = 0; i < K; i++) {
        g[i] = make("cnn", dev, 20 + i);
        s[i] = make("cnn", dev, 20 + i);
        ds[i] = d;
        tp[i] = nn_train_default_params();
        tp[i].epochs = 4 - (i == 2); tp[i].lr = 0.02; tp[i].momentum = 0.9; tp[i].batch_size = 64; tp[i].seed = 5 + i;
        curves[i] = cg[i];
    }
    assert_int_equal(nn_train_group(g, ds, tp, K, curves), NN_OK);
    for (int i = 0; i < K; i++) assert_int_equal(nn_train(s[i], d, &tp[i], cs[i]), NN_OK);
    for (int i = 0; i < K; i++)
        for (int e = 0; e < tp[i].epochs; e++)
            if (fabs(cg[i][e] - cs[i][e]) > tol * fabs(cs[i][e]))
                fail_msg("model %d epoch %d: group %.8f single %.8f", i, e, cg[i][e], cs[i][e]);
    for (int i = 0; i < K; i++) { nn_model_free(g[i]); nn_model_free(s[i]); }
    nn_data_free(d);
}

static void test_group_cpu_equals_single(void **state) { group_vs_single(NN_CPU, 0); }

static void test_group_gpu_equals_single(void **state) {
    if (!have_cuda()) skip();
    group_vs_single(NN_CUDA, 1e-4);
}

/* nn_train_tasks with the attacks' mix (all layers, last layer only, soft-label distillation,
 * hard-label extraction, a teacher shared by three students) leaves every model as nn_train or
 * nn_distill of its task alone would: bit for bit on the CPU, to GPU rounding on a GPU. */
static void tasks_vs_single(nn_device dev, double tol) {
    enum { K = 4, E = 3 };
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, data.n, 1, 8, 8, dev, &d), NN_OK);
    nn_model *teacher = make("cnn", dev, 30);
    nn_train_params base = nn_train_default_params();
    base.epochs = E; base.lr = 0.02; base.momentum = 0.9; base.batch_size = 64;
    assert_int_equal(nn_train(teacher, d, &base, NULL), NN_OK);
    static const char *arch[K] = {"cnn", "cnn", "cnn", "mlp"};
    nn_train_task t[K];
    double cg[K][E], cs[K][E];
    nn_model *single[K];
    for (int i = 0; i < K; i++) {
        t[i] = (nn_train_task){.model = make(arch[i], dev, 31 + i), .data = d, .params = base, .loss_curve = cg[i]};
        t[i].params.seed = 40 + i;
        single[i] = make(arch[i], dev, 31 + i);
    }
    t[1].params.trainable = NN_TRAIN_LAST;
    t[2].teacher = teacher; t[2].distill = (nn_distill_params){4.0, 0.9, 0};
    t[3].teacher = teacher; t[3].distill = (nn_distill_params){1.0, 0.0, 1};
    t[0].teacher = NULL; t[0].params.epochs = E - 1;
    assert_int_equal(nn_train_tasks(t, K), NN_OK);
    for (int i = 0; i < K; i++) {
        nn_status st = t[i].teacher ? nn_distill(single[i], teacher, d, &t[i].params, &t[i].distill, cs[i])
                                    : nn_train(single[i], d, &t[i].params, cs[i]);
        assert_int_equal(st, NN_OK);
        for (int e = 0; e < t[i].params.epochs; e++)
            if (!(fabs(cg[i][e] - cs[i][e]) <= tol * fabs(cs[i][e])))
                fail_msg("task %d epoch %d: tasks %.8f single %.8f", i, e, cg[i][e], cs[i][e]);
    }
    /* the last-layer task changed only the last layer */
    nn_model *fresh = make("cnn", dev, 32);
    for (int q = 0; q < nn_last_layer_first_param(fresh); q++) {
        int64_t numel;
        nn_param_info(fresh, q, NULL, &numel, NULL, NULL);
        float *a = malloc(sizeof(float) * (size_t)numel), *b = malloc(sizeof(float) * (size_t)numel);
        nn_param_get(fresh, q, a); nn_param_get(t[1].model, q, b);
        assert_memory_equal(a, b, sizeof(float) * (size_t)numel);
        free(a); free(b);
    }
    nn_model_free(fresh);
    for (int i = 0; i < K; i++) { nn_model_free(t[i].model); nn_model_free(single[i]); }
    nn_model_free(teacher);
    nn_data_free(d);
}

static void test_tasks_cpu_equal_single(void **state) { tasks_vs_single(NN_CPU, 0); }

static void test_tasks_gpu_equal_single(void **state) {
    if (!have_cuda()) skip();
    tasks_vs_single(NN_CUDA, 1e-4);
}

/* 1 if tensor q of a and b are equal. */
static int same_weights(nn_model *a, nn_model *b, int q) {
    int64_t numel;
    nn_param_info(a, q, NULL, &numel, NULL, NULL);
    float *x = malloc(sizeof(float) * (size_t)numel), *y = malloc(sizeof(float) * (size_t)numel);
    nn_param_get(a, q, x); nn_param_get(b, q, y);
    int same = !memcmp(x, y, sizeof(float) * (size_t)numel);
    free(x); free(y);
    return same;
}

/* The largest absolute difference between a's and b's parameters (the same architecture). */
static double largest_weight_diff(nn_model *a, nn_model *b) {
    double worst = 0;
    for (int q = 0; q < nn_param_count(a); q++) {
        int64_t numel;
        nn_param_info(a, q, NULL, &numel, NULL, NULL);
        float *x = malloc(sizeof(float) * (size_t)numel), *y = malloc(sizeof(float) * (size_t)numel);
        nn_param_get(a, q, x); nn_param_get(b, q, y);
        for (int64_t j = 0; j < numel; j++) worst = fmax(worst, fabs(x[j] - y[j]));
        free(x); free(y);
    }
    return worst;
}

/* Fused ensembles (PMI_FUSE=1 forces them on the CPU too): K models of one plain architecture
 * trained as one grouped network end where each trained alone does, to rounding: three LeNets
 * (one pruned: its mask must hold), two MLPs and a CNN on a different data size (trains alone). */
static void fused_vs_single(nn_device dev, double tol) {
    enum { K = 8, E = 3 };
    nn_data *d = NULL, *d2 = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, data.n, 1, 8, 8, dev, &d), NN_OK);
    assert_int_equal(nn_data_create(data.x, data.y, data.n - 100, 1, 8, 8, dev, &d2), NN_OK);
    static const char *arch[K] = {"lenet", "lenet", "lenet", "mlp", "mlp", "cnn", "lenet", "lenet"};
    nn_train_task t[K];
    nn_model *single[K];
    double cg[K][E], cs[K][E];
    for (int i = 0; i < K; i++) {
        t[i] = (nn_train_task){.model = make(arch[i], dev, 50 + i), .data = i == 5 ? d2 : d, .loss_curve = cg[i]};
        t[i].params = nn_train_default_params();
        t[i].params.epochs = E; t[i].params.lr = 0.02; t[i].params.momentum = 0.9; t[i].params.batch_size = 64;
        t[i].params.weight_decay = 1e-4; t[i].params.seed = 60 + i;
        single[i] = make(arch[i], dev, 50 + i);
    }
    t[6].params.trainable = t[7].params.trainable = NN_TRAIN_LAST;   /* an ensemble of last-layer fine-tunes */
    assert_int_equal(nn_prune(t[1].model, 0.5, 1, NULL), NN_OK);
    assert_int_equal(nn_prune(single[1], 0.5, 1, NULL), NN_OK);
    setenv("PMI_FUSE", "1", 1);
    nn_status st = nn_train_tasks(t, K);
    setenv("PMI_FUSE", "0", 1);
    if (st != NN_OK) fail_msg("nn_train_tasks: %s", nn_last_error());
    assert_int_equal(nn_fused_models(), 7);   /* the LeNets (two ensembles) and the MLPs; the CNN has other data */
    for (int i = 0; i < K; i++) {
        assert_int_equal(nn_train(single[i], t[i].data, &t[i].params, cs[i]), NN_OK);
        for (int e = 0; e < E; e++)
            if (!(fabs(cg[i][e] - cs[i][e]) <= tol * fabs(cs[i][e])))
                fail_msg("%s %d epoch %d: fused %.8f single %.8f", arch[i], i, e, cg[i][e], cs[i][e]);
        double worst = 0;
        for (int q = 0; q < nn_param_count(single[i]); q++) {
            int64_t numel;
            nn_param_info(single[i], q, NULL, &numel, NULL, NULL);
            float *a = malloc(sizeof(float) * (size_t)numel), *b = malloc(sizeof(float) * (size_t)numel);
            nn_param_get(single[i], q, a); nn_param_get(t[i].model, q, b);
            for (int64_t j = 0; j < numel; j++) {
                worst = fmax(worst, fabs(a[j] - b[j]));
                if (i == 1 && (a[j] == 0) != (b[j] == 0) && q % 2 == 0) fail_msg("pruned weight %d[%lld] revived", q, (long long)j);
            }
            free(a); free(b);
        }
        if (worst > 100 * tol) fail_msg("%s %d: weights differ by %g", arch[i], i, worst);
        if (t[i].params.trainable == NN_TRAIN_LAST) {   /* the layers before the last are the fresh model's */
            nn_model *fresh = make(arch[i], dev, 50 + i);
            for (int q = 0; q < nn_last_layer_first_param(fresh); q++)
                if (!same_weights(fresh, t[i].model, q)) fail_msg("%s %d: frozen tensor %d changed", arch[i], i, q);
            nn_model_free(fresh);
        }
        print_message("fused %s %d: largest weight difference %.3g\n", arch[i], i, worst);
    }
    assert_true(fabs(nn_sparsity(t[1].model) - 0.5) < 0.01);
    for (int i = 0; i < K; i++) { nn_model_free(t[i].model); nn_model_free(single[i]); }
    nn_data_free(d); nn_data_free(d2);
}

static void test_fused_cpu_close_to_single(void **state) { fused_vs_single(NN_CPU, 1e-5); }

/* Ensembles of one recipe are as equal in size as PMI_FUSE_MAX allows (nn_train_tasks): 7 MLPs
 * of one key with at most 3 a ensemble fuse as 3 + 2 + 2, all 7 (filled greedily, 3 + 3 + 1
 * left one to train alone); a task with no key (Adam) trains alone. On the CPU (PMI_FUSE=1). */
static void test_fused_equal_sizes(void **state) {
    enum { K = 8 };
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, data.n, 1, 8, 8, NN_CPU, &d), NN_OK);
    nn_train_task t[K];
    for (int i = 0; i < K; i++) {
        t[i] = (nn_train_task){.model = make("mlp", NN_CPU, 80 + i), .data = d};
        t[i].params = nn_train_default_params();
        t[i].params.epochs = 1; t[i].params.lr = 0.02; t[i].params.momentum = 0.9; t[i].params.batch_size = 64;
        t[i].params.seed = 90 + i;
    }
    t[K - 1].params.optimizer = NN_ADAM;
    setenv("PMI_FUSE", "1", 1);
    setenv("PMI_FUSE_MAX", "3", 1);
    nn_status st = nn_train_tasks(t, K);
    setenv("PMI_FUSE", "0", 1);
    unsetenv("PMI_FUSE_MAX");
    if (st != NN_OK) fail_msg("nn_train_tasks: %s", nn_last_error());
    assert_int_equal(nn_fused_models(), K - 1);
    for (int i = 0; i < K; i++) nn_model_free(t[i].model);
    nn_data_free(d);
}

/* In exact fp32 (TF32 off, as nn_set_numerics(0, 0) sets for a run with train.tf32 = 0): the
 * fused convolutions may be the shim's own kernels (fp32), the single models' cuDNN's. */
static void test_fused_gpu_close_to_single(void **state) {
    if (!have_cuda()) skip();
    nn_set_numerics(0, 0);
    fused_vs_single(NN_CUDA, 1e-4);
    nn_set_numerics(1, 0);
}

/* The attacks' recipes fuse too (PMI_FUSE=1 forces it on the CPU): distillation students of
 * different teachers (each teacher's logits computed once), extraction students (hard labels),
 * label smoothing, and flooding with smoothing each train as one ensemble and end where each
 * trained alone (nn_distill, nn_train) does, to rounding; a student with another temperature
 * trains alone. */
static void fused_recipes_vs_single(nn_device dev, double tol) {
    enum { K = 10, E = 3 };
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, data.n, 1, 8, 8, dev, &d), NN_OK);
    nn_train_params base = nn_train_default_params();
    base.epochs = E; base.lr = 0.02; base.momentum = 0.9; base.batch_size = 64; base.weight_decay = 1e-4;
    nn_model *teacher[2] = {make("cnn", dev, 70), make("lenet", dev, 71)};
    for (int i = 0; i < 2; i++) assert_int_equal(nn_train(teacher[i], d, &base, NULL), NN_OK);
    static const char *arch[K] = {"lenet", "lenet", "lenet", "mlp", "mlp", "mlp", "mlp", "mlp", "mlp", "lenet"};
    nn_train_task t[K];
    nn_model *single[K];
    double cg[K][E], cs[K][E];
    for (int i = 0; i < K; i++) {
        t[i] = (nn_train_task){.model = make(arch[i], dev, 80 + i), .data = d, .params = base, .loss_curve = cg[i]};
        t[i].params.seed = 90 + i;
        single[i] = make(arch[i], dev, 80 + i);
    }
    for (int i = 0; i < 3; i++) { t[i].teacher = teacher[i % 2]; t[i].distill = (nn_distill_params){4.0, 0.9, 0}; }
    for (int i = 3; i < 5; i++) { t[i].teacher = teacher[i % 2]; t[i].distill = (nn_distill_params){1.0, 0.0, 1}; }
    t[5].params.label_smoothing = t[6].params.label_smoothing = 0.2;
    t[7].params.flood = t[8].params.flood = 2.28;   /* the loss falls below it in the first epoch: ascent */
    t[7].params.label_smoothing = t[8].params.label_smoothing = 0.1;
    t[9].teacher = teacher[1]; t[9].distill = (nn_distill_params){2.0, 0.9, 0};
    setenv("PMI_FUSE", "1", 1);
    nn_status st = nn_train_tasks(t, K);
    setenv("PMI_FUSE", "0", 1);
    if (st != NN_OK) fail_msg("nn_train_tasks: %s", nn_last_error());
    assert_int_equal(nn_fused_models(), 9);   /* four ensembles; the student at temperature 2 alone */
    for (int i = 0; i < K; i++) {
        st = t[i].teacher ? nn_distill(single[i], t[i].teacher, d, &t[i].params, &t[i].distill, cs[i])
                          : nn_train(single[i], d, &t[i].params, cs[i]);
        if (st != NN_OK) fail_msg("task %d alone: %s", i, nn_last_error());
        for (int e = 0; e < E; e++)
            if (!(fabs(cg[i][e] - cs[i][e]) <= tol * fabs(cs[i][e])))
                fail_msg("task %d (%s) epoch %d: fused %.8f alone %.8f", i, arch[i], e, cg[i][e], cs[i][e]);
        double worst = largest_weight_diff(single[i], t[i].model);
        if (worst > 100 * tol) fail_msg("task %d (%s): weights differ by %g", i, arch[i], worst);
        print_message("fused recipe task %d (%s): loss %.6f, largest weight difference %.3g\n", i, arch[i], cg[i][E - 1], worst);
    }
    for (int i = 0; i < K; i++) { nn_model_free(t[i].model); nn_model_free(single[i]); }
    nn_model_free(teacher[0]); nn_model_free(teacher[1]);
    nn_data_free(d);
}

static void test_fused_recipes_cpu_close_to_single(void **state) { fused_recipes_vs_single(NN_CPU, 1e-5); }

static void test_fused_recipes_gpu_close_to_single(void **state) {
    if (!have_cuda()) skip();
    nn_set_numerics(0, 0);
    fused_recipes_vs_single(NN_CUDA, 1e-4);
    nn_set_numerics(1, 0);
}

/* train.precision = bf16: the forward pass is autocast to bfloat16, so the weights end away
 * from fp32's while the loss stays close; the autocast ends with training (an fp32 run after a
 * bf16 one equals an fp32 run before it, bit for bit, on the CPU); and a fused ensemble in bf16
 * (PMI_FUSE=1) follows its models trained alone in bf16. A small CNN: it learns in 6 epochs of
 * the synthetic data (loss 2.30 to about 1.25; bf16's final loss 0.1-3.3% from fp32's on a Xeon,
 * an EPYC and an H100, one run each), so "close" compares models that learned. */
static void bf16_vs_fp32(nn_device dev, double tol) {
    enum { E = 6, K = 3 };
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, data.n, 1, 8, 8, dev, &d), NN_OK);
    nn_train_params p = nn_train_default_params();
    p.epochs = E; p.lr = 0.1; p.batch_size = 64; p.seed = 71;
    double c32[E], c16[E], c32b[E];
    nn_model *a = make("cnn", dev, 70), *b = make("cnn", dev, 70), *c = make("cnn", dev, 70);
    assert_int_equal(nn_train(a, d, &p, c32), NN_OK);
    p.precision = NN_BF16;
    assert_int_equal(nn_train(b, d, &p, c16), NN_OK);
    p.precision = NN_FP32;
    assert_int_equal(nn_train(c, d, &p, c32b), NN_OK);
    double moved = 0;
    for (int q = 0; q < nn_param_count(a); q++) {
        if (dev == NN_CPU && !same_weights(a, c, q)) fail_msg("fp32 after bf16: tensor %d differs from fp32 before", q);
        int64_t numel;
        nn_param_info(a, q, NULL, &numel, NULL, NULL);
        float *x = malloc(sizeof(float) * (size_t)numel), *y = malloc(sizeof(float) * (size_t)numel);
        nn_param_get(a, q, x); nn_param_get(b, q, y);
        for (int64_t j = 0; j < numel; j++) moved = fmax(moved, fabs(x[j] - y[j]));
        free(x); free(y);
    }
    print_message("bf16 vs fp32 (%s): largest weight difference %.3g, final loss %.5f vs %.5f\n",
                  dev == NN_CPU ? "cpu" : "cuda", moved, c16[E - 1], c32[E - 1]);
    if (!(moved > 1e-5)) fail_msg("bf16 training left the weights of fp32 training (difference %g): no autocast", moved);
    if (!(fabs(c16[E - 1] - c32[E - 1]) <= 0.1 * c32[E - 1]))
        fail_msg("bf16 final loss %.5f far from fp32's %.5f", c16[E - 1], c32[E - 1]);
    /* The ensemble: two epochs (later, bf16 rounding sends fused and single runs on visibly
     * different paths in the learning phase: 3-6% apart at epoch 5 on an H100 and on a Xeon);
     * and the ensemble in bf16 is not the ensemble in fp32. */
    enum { E2 = 2 };
    nn_train_task t[K], t32[K];
    double cg[K][E2], cs[K][E2];
    for (int i = 0; i < K; i++) {
        t[i] = (nn_train_task){.model = make("cnn", dev, 80 + i), .data = d, .params = p, .loss_curve = cg[i]};
        t[i].params.precision = NN_BF16;
        t[i].params.epochs = E2;
        t[i].params.seed = 90 + i;
        t32[i] = t[i];
        t32[i].model = make("cnn", dev, 80 + i);
        t32[i].params.precision = NN_FP32;
        t32[i].loss_curve = NULL;
    }
    setenv("PMI_FUSE", "1", 1);
    nn_status st = nn_train_tasks(t, K);
    if (st == NN_OK) assert_int_equal(nn_fused_models(), K);
    if (st == NN_OK) st = nn_train_tasks(t32, K);
    setenv("PMI_FUSE", "0", 1);
    if (st != NN_OK) fail_msg("nn_train_tasks: %s", nn_last_error());
    for (int i = 0; i < K; i++) {
        nn_model *s1 = make("cnn", dev, 80 + i);
        assert_int_equal(nn_train(s1, d, &t[i].params, cs[i]), NN_OK);
        for (int e = 0; e < E2; e++)
            if (!(fabs(cg[i][e] - cs[i][e]) <= tol * fabs(cs[i][e])))
                fail_msg("bf16 cnn %d epoch %d: fused %.6f single %.6f", i, e, cg[i][e], cs[i][e]);
        int same = 1;
        for (int q = 0; q < nn_param_count(s1); q++) same &= same_weights(t[i].model, t32[i].model, q);
        if (same) fail_msg("bf16 cnn %d: the fused ensemble in bf16 ended where the one in fp32 did", i);
        nn_model_free(s1);
        nn_model_free(t[i].model);
        nn_model_free(t32[i].model);
    }
    nn_model_free(a); nn_model_free(b); nn_model_free(c);
    nn_data_free(d);
}

/* train.channels_last: VGG-11 and ResNet-18 (BatchNorm, and a 1x1 shortcut) trained with NHWC
 * convolutions follow the same models trained in NCHW, to rounding (only the kernels differ),
 * and leave their weights in the standard layout (nn_param_get reads them in NCHW order, and
 * the models evaluate alike). A small learning rate: at lr 0.05 these BatchNorm networks take
 * rounding differences to 1e-2 in five steps, in PyTorch too (its own NHWC and NCHW ResNet-18
 * were 5.7e-5 apart after one step and 1.6e-2 after five, Debian's 1.13 on the CPU), so only
 * a slow run can tell a wrong layout from rounding. */
static void channels_last_vs_nchw(nn_device dev, double tol) {
    enum { E = 2 };
    static const char *arch[] = {"vgg11", "resnet18"};
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, 600, 1, 8, 8, dev, &d), NN_OK);
    for (int a = 0; a < 2; a++) {
        nn_model_spec spec = {.arch = arch[a], .c = 1, .h = 8, .w = 8, .classes = 10, .width = 8, .device = dev, .seed = 21};
        nn_model *m[2];
        double curve[2][E];
        for (int cl = 0; cl < 2; cl++) {
            assert_int_equal(nn_model_create(&spec, &m[cl]), NN_OK);
            nn_train_params p = nn_train_default_params();
            p.epochs = E; p.lr = 1e-4; p.batch_size = 64; p.seed = 22; p.channels_last = cl;
            assert_int_equal(nn_train(m[cl], d, &p, curve[cl]), NN_OK);
        }
        for (int e = 0; e < E; e++)
            if (!(fabs(curve[1][e] - curve[0][e]) <= tol * fabs(curve[0][e])))
                fail_msg("%s epoch %d: channels_last %.8f nchw %.8f", arch[a], e, curve[1][e], curve[0][e]);
        double worst = largest_weight_diff(m[0], m[1]);
        double acc[2];
        for (int cl = 0; cl < 2; cl++) assert_int_equal(nn_accuracy(m[cl], d, &acc[cl]), NN_OK);
        print_message("channels_last %s (%s): largest weight difference %.3g, accuracy %.4f vs %.4f\n", arch[a],
                      dev == NN_CPU ? "cpu" : "cuda", worst, acc[1], acc[0]);
        if (worst > 100 * tol) fail_msg("%s: channels_last weights differ from nchw by %g", arch[a], worst);
        if (fabs(acc[1] - acc[0]) > 0.01) fail_msg("%s: accuracy %.4f (channels_last) vs %.4f", arch[a], acc[1], acc[0]);
        nn_model_free(m[0]); nn_model_free(m[1]);
    }
    nn_data_free(d);
}

/* 1e-4 on the CPU: since the one-channel batch goes in with NHWC strides (to_channels_last), the
 * first convolution runs ATen's channels-last kernel too, and ResNet-18's losses moved from 1e-5
 * to 3e-5 apart after two epochs (2.43782 and 2.43789). */
static void test_channels_last_cpu(void **state) { channels_last_vs_nchw(NN_CPU, 1e-4); }

static void test_channels_last_gpu(void **state) {
    if (!have_cuda()) skip();
    channels_last_vs_nchw(NN_CUDA, 1e-3);
}

/* channels_last on one-channel images: no NCHW kernel in the training step. For C = 1 both
 * layouts hold the same bytes and contiguous(ChannelsLast) kept the batch's NCHW strides, from
 * which cuDNN ran ResNet-18's first convolution and batch norm with its NCHW kernels and converted
 * their output (the trace of ResNet-18 NHWC on an H100, docs/performance.md); nn_torch.cpp's
 * to_channels_last gives the batch NHWC strides. A profile of one epoch (28x28 images, ResNet-18
 * of width 16) must record kernels, and no batch norm in NCHW (cuDNN's batch-norm kernels follow
 * the layout of the activations they get). Convolution engines that convert a layout themselves
 * are cuDNN's choice and allowed: at this width one backward convolution ran through
 * nhwcToNchwKernel, an NCHW dgrad and nchwToNhwcKernel at every step (H100, cuDNN of PyTorch 2.11). */
static void test_channels_last_kernels_gpu(void **state) {
    if (!have_cuda()) skip();
    pmi_dataset big;
    assert_int_equal(data_synthetic(512, 1, 28, 28, 10, 5, &big), 0);
    data_normalize(&big, DATA_NORM_UNIT, NULL, NULL);
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(big.x, big.y, big.n, 1, 28, 28, NN_CUDA, &d), NN_OK);
    nn_model_spec spec = {.arch = "resnet18", .c = 1, .h = 28, .w = 28, .classes = 10, .width = 16, .device = NN_CUDA, .seed = 5};
    nn_model *m = NULL;
    assert_int_equal(nn_model_create(&spec, &m), NN_OK);
    nn_train_params p = nn_train_default_params();
    p.epochs = 1; p.batch_size = 128; p.seed = 6; p.channels_last = 1;
    char path[512];
    snprintf(path, sizeof path, "%s/nhwc.json", tu_tmpdir());
    assert_int_equal(nn_profile_start(1), NN_OK);
    nn_status st = nn_train(m, d, &p, NULL);
    assert_int_equal(nn_profile_stop(path, NULL), NN_OK);
    if (st != NN_OK) fail_msg("nn_train: %s", nn_last_error());
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096], bad[1024] = "";
    int kernels = 0, nchw = 0, bn_nchw = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"cat\": \"kernel\"")) continue;
        kernels++;
        if (!strcasestr(line, "nchw")) continue;
        nchw++;
        if ((strstr(line, "bn_") || strcasestr(line, "batchnorm")) && bn_nchw++ < 3)
            strncat(bad, line, sizeof bad - strlen(bad) - 1);
    }
    fclose(f);
    print_message("channels_last resnet18: %d kernels, %d with NCHW in their name, %d of them batch norms\n", kernels,
                  nchw, bn_nchw);
    if (kernels == 0) fail_msg("the profile recorded no GPU kernel (%s)", path);
    if (bn_nchw) fail_msg("%d NCHW batch-norm kernels in an NHWC training epoch, among them:\n%s", bn_nchw, bad);
    nn_model_free(m);
    nn_data_free(d);
    data_free(&big);
}

/* Kernels of a profile whose names contain `part`. */
static int profile_kernels(const char *path, const char *part) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f)) n += strstr(line, "\"cat\": \"kernel\"") && strstr(line, part);
    fclose(f);
    return n;
}

/* The fused ensembles' convolutions by the shim's own CUDA kernels (framework/nn_cuda.cu, built
 * where nvcc is present): fused LeNets (conv1 5x5 pad 2 of one channel, conv2 5x5 of 6 channels)
 * and small CNNs (conv1 3x3 pad 1 of one channel; their conv2 of 32 channels stays cuDNN's) on
 * 28 x 28 images train as with ATen's and cuDNN's kernels (PMI_GCONV=0, TF32 off) to rounding: the same loss
 * curves within 1e-4 relative, weights within 1e-3. A profile of each run shows which kernels ran:
 * the shim's forward, weight-gradient and (LeNet's conv2) input-gradient kernels, its fused ReLU +
 * pooling both ways, and no depthwise one, or none of the shim's with PMI_GCONV=0. */
static void test_gconv_gpu(void **state) {
    if (!have_cuda() || !nn_cuda_kernels()) skip();
    nn_set_numerics(0, 0);   /* cuDNN in exact fp32, as the shim's kernels */
    enum { K = 4, E = 2 };
    pmi_dataset big;
    assert_int_equal(data_synthetic(1024, 1, 28, 28, 10, 5, &big), 0);
    data_normalize(&big, DATA_NORM_UNIT, NULL, NULL);
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(big.x, big.y, big.n, 1, 28, 28, NN_CUDA, &d), NN_OK);
    static const char *arch[2] = {"lenet", "cnn"};
    for (int a = 0; a < 2; a++) {
        double curve[2][K][E];
        nn_model *m[2][K];
        for (int pass = 0; pass < 2; pass++) {   /* 0: ATen's kernels; 1: the shim's */
            nn_train_task t[K];
            for (int i = 0; i < K; i++) {
                nn_model_spec spec = {.arch = arch[a], .c = 1, .h = 28, .w = 28, .classes = 10, .device = NN_CUDA, .seed = 70 + i};
                assert_int_equal(nn_model_create(&spec, &m[pass][i]), NN_OK);
                t[i] = (nn_train_task){.model = m[pass][i], .data = d, .loss_curve = curve[pass][i]};
                t[i].params = nn_train_default_params();
                t[i].params.epochs = E; t[i].params.lr = 0.02; t[i].params.momentum = 0.9; t[i].params.batch_size = 64;
                t[i].params.seed = 80 + i;
            }
            char path[512];
            snprintf(path, sizeof path, "%s/gconv-%s-%d.json", tu_tmpdir(), arch[a], pass);
            setenv("PMI_FUSE", "1", 1);
            setenv("PMI_GCONV", pass ? "2" : "0", 1);
            assert_int_equal(nn_profile_start(1), NN_OK);
            nn_status st = nn_train_tasks(t, K);
            assert_int_equal(nn_profile_stop(path, NULL), NN_OK);
            setenv("PMI_FUSE", "0", 1);
            unsetenv("PMI_GCONV");
            if (st != NN_OK) fail_msg("nn_train_tasks: %s", nn_last_error());
            assert_int_equal(nn_fused_models(), K);
            int fwd = profile_kernels(path, "gconv_fwd"), wgrad = profile_kernels(path, "gconv_wgrad"),
                dgrad = profile_kernels(path, "gconv_dgrad"), dw = profile_kernels(path, "depthwise"),
                rpf = profile_kernels(path, "relu_pool_fwd"), rpb = profile_kernels(path, "relu_pool_bwd");
            print_message("%s, %s kernels: %d gconv_fwd, %d gconv_wgrad, %d gconv_dgrad, %d depthwise, %d relu_pool_fwd, "
                          "%d relu_pool_bwd\n", arch[a], pass ? "the shim's" : "ATen's", fwd, wgrad, dgrad, dw, rpf, rpb);
            if (pass && (fwd == 0 || wgrad == 0 || dw != 0 || (a == 0) != (dgrad > 0) || rpf == 0 || rpb == 0))
                fail_msg("%s: the shim's kernels did not replace ATen's as expected (%s)", arch[a], path);
            if (!pass && (fwd || wgrad || dgrad || rpf || rpb)) fail_msg("%s: PMI_GCONV=0 ran the shim's kernels (%s)", arch[a], path);
        }
        for (int i = 0; i < K; i++) {
            for (int e = 0; e < E; e++)
                if (!(fabs(curve[1][i][e] - curve[0][i][e]) <= 1e-4 * fabs(curve[0][i][e])))
                    fail_msg("%s %d epoch %d: the shim's kernels %.8f, ATen's %.8f", arch[a], i, e, curve[1][i][e], curve[0][i][e]);
            double worst = largest_weight_diff(m[0][i], m[1][i]);
            print_message("%s %d: largest weight difference %.3g\n", arch[a], i, worst);
            if (!(worst <= 1e-3)) fail_msg("%s %d: weights differ by %g", arch[a], i, worst);
            nn_model_free(m[0][i]);
            nn_model_free(m[1][i]);
        }
    }
    nn_set_numerics(1, 0);
    nn_data_free(d);
    data_free(&big);
}

/* By default a GPU fuses only ensembles of at least PMI_FUSE_MIN (4) models: fewer train
 * on their own streams; PMI_FUSE_MIN=3 fuses 3. */
static void test_fuse_min_gpu(void **state) {
    if (!have_cuda()) skip();
    enum { K = 3 };
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, data.n, 1, 8, 8, NN_CUDA, &d), NN_OK);
    for (int pass = 0; pass < 2; pass++) {
        nn_train_task t[K];
        for (int i = 0; i < K; i++) {
            t[i] = (nn_train_task){.model = make("lenet", NN_CUDA, 30 + i), .data = d, .params = nn_train_default_params()};
            t[i].params.epochs = 1; t[i].params.seed = 40 + i;
        }
        unsetenv("PMI_FUSE");
        if (pass) setenv("PMI_FUSE_MIN", "3", 1);
        nn_status st = nn_train_tasks(t, K);
        unsetenv("PMI_FUSE_MIN");
        setenv("PMI_FUSE", "0", 1);
        if (st != NN_OK) fail_msg("nn_train_tasks: %s", nn_last_error());
        assert_int_equal(nn_fused_models(), pass ? K : 0);
        for (int i = 0; i < K; i++) nn_model_free(t[i].model);
    }
    nn_data_free(d);
}

static void test_bf16_cpu(void **state) { bf16_vs_fp32(NN_CPU, 2e-2); }

static void test_bf16_gpu(void **state) {
    if (!have_cuda()) skip();
    bf16_vs_fp32(NN_CUDA, 2e-2);
}

/* Groups that mix architectures and widths train without a CUDA error and leave each model
 * as its own nn_train would: every pair of registry architectures at two widths, and one
 * group larger than the 32 pool streams a device hands out (mixed lenet/mlp/cnn models, the
 * case that once ended in an illegal memory access). */
/* Differences of group training from single training, per architecture: rel[] (group vs
 * single) and self[] (a second single run vs the first), relative, over every model and epoch. */
enum { MAX_ARCH = 16, MAX_OBS = 512 };
typedef struct { double rel[MAX_OBS], self[MAX_OBS]; int n; } arch_obs;
static arch_obs obs[MAX_ARCH];

static int arch_index(const char *name) {
    for (int i = 0; i < nn_arch_count() && i < MAX_ARCH; i++)
        if (!strcmp(nn_arch_name(i), name)) return i;
    return -1;
}

/* Trains k models as one group and each alone twice; records the differences in obs[]. Returns
 * how many losses of the group are not finite. */
static int train_mixed_group(const char *const *archs, const int *widths, int k) {
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, 640, 1, 8, 8, NN_CUDA, &d), NN_OK);
    nn_model **g = calloc((size_t)k, sizeof *g);
    const nn_data **ds = calloc((size_t)k, sizeof *ds);
    nn_train_params *tp = calloc((size_t)k, sizeof *tp);
    double (*cg)[2] = calloc((size_t)k, sizeof *cg), **curves = calloc((size_t)k, sizeof *curves);
    nn_model_spec *spec = calloc((size_t)k, sizeof *spec);
    for (int i = 0; i < k; i++) {
        spec[i] = (nn_model_spec){.arch = archs[i], .c = 1, .h = 8, .w = 8, .classes = 10, .width = widths[i], .device = NN_CUDA, .seed = 40 + (uint64_t)i};
        assert_int_equal(nn_model_create(&spec[i], &g[i]), NN_OK);
        ds[i] = d;
        tp[i] = nn_train_default_params();
        tp[i].epochs = 2; tp[i].lr = 0.02; tp[i].momentum = 0.9; tp[i].batch_size = 64; tp[i].seed = 9 + (uint64_t)i;
        curves[i] = cg[i];
    }
    if (nn_train_group(g, ds, tp, k, curves) != NN_OK) fail_msg("group of %d (%s ...): %s", k, archs[0], nn_last_error());
    int bad = 0;
    for (int i = 0; i < k; i++) {
        double c1[2], c2[2];
        for (int r = 0; r < 2; r++) {
            nn_model *s = NULL;
            assert_int_equal(nn_model_create(&spec[i], &s), NN_OK);
            assert_int_equal(nn_train(s, d, &tp[i], r ? c2 : c1), NN_OK);
            nn_model_free(s);
        }
        arch_obs *o = &obs[arch_index(archs[i])];
        for (int e = 0; e < 2; e++) {
            bad += !isfinite(cg[i][e]);
            if (o->n < MAX_OBS) {
                o->rel[o->n] = fabs(cg[i][e] - c1[e]) / fabs(c1[e]);
                o->self[o->n++] = fabs(c2[e] - c1[e]) / fabs(c1[e]);
            }
        }
    }
    for (int i = 0; i < k; i++) nn_model_free(g[i]);
    free(g); free(ds); free(tp); free(cg); free(curves); free(spec);
    nn_data_free(d);
    return bad;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n ? (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2])) : 0;
}

/* Groups that mix architectures and widths train without a CUDA error and as reproducibly as
 * the GPU trains one model twice: every pair of registry architectures at two widths, and one
 * group of 40 mixed lenet/mlp/cnn models, more than the 32 pool streams a device hands out
 * (the case that once hung or ended in an illegal memory access). Per architecture, the median
 * difference of group from single training may be at most 3 times the median difference of
 * two single runs (+1e-6). Models without BatchNorm came out bit-identical on an H100; those
 * with it (vgg11, resnet18) differ between two single runs by up to 15% of the loss there. */
static void test_group_every_arch_pair(void **state) {
    if (!have_cuda()) skip();
    memset(obs, 0, sizeof obs);
    int n = nn_arch_count(), pairs = 0, bad = 0;
    static const int widths[2] = {0, 16};
    for (int a = 0; a < n; a++)
        for (int b = a; b < n; b++)
            for (int w = 0; w < 2; w++) {
                const char *archs[4] = {nn_arch_name(a), nn_arch_name(b), nn_arch_name(a), nn_arch_name(b)};
                int ws[4] = {widths[w], 0, widths[w], 16};
                bad += train_mixed_group(archs, ws, 4);
                pairs++;
            }
    enum { BIG = 40 };
    const char *big[BIG];
    int bw[BIG];
    for (int i = 0; i < BIG; i++) { big[i] = i % 3 == 0 ? "lenet" : i % 3 == 1 ? "mlp" : "cnn"; bw[i] = i % 3 == 2 ? 16 : 0; }
    bad += train_mixed_group(big, bw, BIG);
    if (bad) fail_msg("%d group losses are not finite", bad);
    int worse = 0;
    for (int a = 0; a < n && a < MAX_ARCH; a++) {
        double mr = median(obs[a].rel, obs[a].n), ms = median(obs[a].self, obs[a].n);
        fprintf(stderr, "  %-8s %3d losses: median |group - single| %.2e, median |single - single| %.2e\n", nn_arch_name(a), obs[a].n, mr, ms);
        worse += mr > 1e-6 + 3 * ms;
    }
    fprintf(stderr, "%d mixed groups of 4 and one of %d trained\n", pairs, BIG);
    if (worse) fail_msg("%d architectures train less reproducibly in a group than alone", worse);
}

/* ---- the attacks of docs/attacks.md on the GPU: each computes what the CPU computes ---- */

/* a cnn trained for 3 epochs on the CPU (probabilities away from uniform) and its copy on the
 * GPU, with the same weights. */
static void trained_pair(const char *arch, nn_model **cpu, nn_model **gpu) {
    *cpu = make(arch, NN_CPU, 21);
    *gpu = make(arch, NN_CUDA, 22);
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, data.n, 1, 8, 8, NN_CPU, &d), NN_OK);
    nn_train_params tp = nn_train_default_params();
    tp.epochs = 3; tp.lr = 0.02; tp.momentum = 0.9; tp.batch_size = 64; tp.seed = 5;
    assert_int_equal(nn_train(*cpu, d, &tp, NULL), NN_OK);
    nn_data_free(d);
    copy_weights(*cpu, *gpu);
}

/* Every interface (nn_interface: what a deployed model does to queries and answers) answers
 * on the GPU as on the CPU: per transform, at most 1% of 1000 answers differ by more than 1e-3
 * in any probability (a float rounding on either side of a rounding, top-k or argmax boundary
 * may flip one), and the answers are the transform's (label: one-hot on the GPU). */
static void test_interface_gpu(void **state) {
    if (!have_cuda()) skip();
    static const nn_interface q[] = {
        {.output = NN_OUT_LABEL}, {.output = NN_OUT_TOPK, .out_param = 3}, {.output = NN_OUT_ROUND, .out_param = 2},
        {.output = NN_OUT_TEMPERATURE, .out_param = 5}, {.output = NN_OUT_RSIGMOID, .out_param = 0.5, .out_param2 = 0.1},
        {.output = NN_OUT_NOISE, .out_param = 0.1, .seed = 9}, {.input = NN_IN_QUANTIZE, .in_param = 2},
        {.input = NN_IN_NOISE, .in_param = 0.1, .seed = 9}, {.input = NN_IN_BLUR, .in_param = 1},
        {.input = NN_IN_SHIFT, .in_param = 1}, {.input = NN_IN_FLIP},
    };
    enum { NQ = sizeof q / sizeof q[0], N = 1000 };
    nn_model *a, *b;
    trained_pair("cnn", &a, &b);
    nn_data *dc = NULL, *dg = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, N, 1, 8, 8, NN_CPU, &dc), NN_OK);
    assert_int_equal(nn_data_create(data.x, data.y, N, 1, 8, 8, NN_CUDA, &dg), NN_OK);
    float *la = malloc(sizeof(float) * N * 10), *lb = malloc(sizeof(float) * N * 10), *l0 = malloc(sizeof(float) * N * 10);
    assert_int_equal(nn_eval_logp(b, dg, l0), NN_OK);
    for (int t = 0; t < NQ; t++) {
        assert_int_equal(nn_set_interface(a, &q[t]), NN_OK);
        assert_int_equal(nn_set_interface(b, &q[t]), NN_OK);
        assert_int_equal(nn_eval_logp(a, dc, la), NN_OK);
        assert_int_equal(nn_eval_logp(b, dg, lb), NN_OK);
        int differ = 0, changed = 0;
        for (int i = 0; i < N; i++) {
            double dmax = 0, cmax = 0;
            for (int c = 0; c < 10; c++) {
                dmax = fmax(dmax, fabs(exp(la[i * 10 + c]) - exp(lb[i * 10 + c])));
                cmax = fmax(cmax, fabs(exp(l0[i * 10 + c]) - exp(lb[i * 10 + c])));
            }
            differ += dmax > 1e-3;
            changed += cmax > 1e-3;
        }
        const char *name = q[t].output ? nn_output_transform_name(q[t].output) : nn_input_transform_name(q[t].input);
        print_message("interface %-12s: %d of %d answers differ CPU/GPU, %d changed by the transform\n", name, differ, N, changed);
        if (differ > N / 100) fail_msg("%s: %d of %d answers differ between CPU and GPU", name, differ, N);
        if (changed < N / 10) fail_msg("%s: the GPU answers barely changed (%d of %d)", name, changed, N);
        if (q[t].output == NN_OUT_LABEL)
            for (int i = 0; i < N; i++) {
                double mx = -INFINITY;
                for (int c = 0; c < 10; c++) mx = fmax(mx, lb[i * 10 + c]);
                if (mx < -1e-6) fail_msg("label: answer %d is not one-hot (max log p %g)", i, mx);
            }
    }
    free(la); free(lb); free(l0);
    nn_data_free(dc); nn_data_free(dg); nn_model_free(a); nn_model_free(b);
}

/* The recipes of the training-side attacks (label smoothing, flooding, clipped noisy gradients,
 * PGD adversarial training; their effect is tested on the CPU in test_attack) train on the GPU
 * as on the CPU: from the same weights and seed, loss curves within 1e-3 relative (PGD's sign
 * steps: 1e-2); and through nn_train_tasks, as the runner trains them on a GPU, as each task
 * alone to GPU rounding. Every recipe trains in CUDA graphs (replays counted), whose replays
 * read each batch's own CPU-drawn noise and PGD start: the fifth case's gradient noise (40
 * times the clip over the batch) moves the weights more than the gradient does, so replays that
 * re-used one draw would end far from the CPU's curve. */
static void test_recipes_gpu(void **state) {
    if (!have_cuda()) skip();
    enum { R = 5, E = 2 };
    nn_train_params p[R];
    for (int r = 0; r < R; r++) {
        p[r] = nn_train_default_params();
        p[r].epochs = E; p[r].lr = 0.02; p[r].momentum = 0.9; p[r].batch_size = 64; p[r].seed = 50 + r;
    }
    p[0].label_smoothing = 0.1;
    p[1].flood = 0.5;
    p[2].clip = 1; p[2].grad_noise = 1;
    p[3].adv_eps = 0.1; p[3].adv_steps = 2;
    p[4].clip = 1; p[4].grad_noise = 40;
    static const char *what[R] = {"smooth", "flood", "noisyft", "advtrain", "noisy40"};
    nn_data *dc = NULL, *dg = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, data.n, 1, 8, 8, NN_CPU, &dc), NN_OK);
    assert_int_equal(nn_data_create(data.x, data.y, data.n, 1, 8, 8, NN_CUDA, &dg), NN_OK);
    nn_train_task t[R];
    double cc[R][E], cg[R][E], ct[R][E];
    for (int r = 0; r < R; r++) {
        nn_model *a, *b, *c = make("cnn", NN_CUDA, 23);
        trained_pair("cnn", &a, &b);
        copy_weights(a, c);
        assert_int_equal(nn_train(a, dc, &p[r], cc[r]), NN_OK);
        int64_t replays = nn_graph_replays();
        assert_int_equal(nn_train(b, dg, &p[r], cg[r]), NN_OK);
        /* 2000 samples in batches of 64: 31 full batches an epoch, 3 of the first warm up */
        if (nn_graph_replays() - replays != 31 * E - 3)
            fail_msg("%s: %lld graph replays, expected %d", what[r], (long long)(nn_graph_replays() - replays), 31 * E - 3);
        t[r] = (nn_train_task){.model = c, .data = dg, .params = p[r], .loss_curve = ct[r]};
        nn_model_free(a); nn_model_free(b);
    }
    int64_t replays = nn_graph_replays();
    assert_int_equal(nn_train_tasks(t, R), NN_OK);
    if (nn_graph_replays() - replays != R * (31 * E - 3))
        fail_msg("tasks: %lld graph replays, expected %d", (long long)(nn_graph_replays() - replays), R * (31 * E - 3));
    for (int r = 0; r < R; r++) {
        double tol = r == 3 ? 1e-2 : 1e-3;
        for (int e = 0; e < E; e++) {
            print_message("%-8s epoch %d: cpu %.6f gpu %.6f gpu tasks %.6f\n", what[r], e, cc[r][e], cg[r][e], ct[r][e]);
            if (!(fabs(cc[r][e] - cg[r][e]) <= tol * fabs(cc[r][e])))
                fail_msg("%s epoch %d: cpu %g gpu %g", what[r], e, cc[r][e], cg[r][e]);
            if (!(fabs(ct[r][e] - cg[r][e]) <= tol * fabs(cg[r][e])))
                fail_msg("%s epoch %d: tasks %g alone %g", what[r], e, ct[r][e], cg[r][e]);
        }
        nn_model_free(t[r].model);
    }
    nn_data_free(dc); nn_data_free(dg);
}

/* Training groups leave no GPU memory behind: each member's CUDA streams are its own, and
 * PyTorch keeps a cuBLAS workspace (32 MiB on Hopper) per stream unless the group drops them;
 * before it did, every trained member left about 64 MiB (a paper-scale robustness run ran an
 * H200 out of memory). Three more groups of 6 models (a noisy fine-tune and an adversarial
 * training among them) may not grow the live tensors by 8 MiB, nor what the allocator holds:
 * blocks cached for the members' gone streams once piled up to 58.8 GiB in a paper-scale
 * robustness run (one H100), and a capture, which cannot free them, ran out of memory. */
/* ---- the permutation tests' sums on the GPU (eval_sum_device, nn_bag_sums) ----------------- */
enum { PT = 40 };
typedef struct { int N, m, R; double *v, *p, *z; int rounds, calls; } perm_case;
static int gpu_calls;
static int counted_gpu_sums(void *h, const uint32_t *idx, int R, int m, double *out) {
    __atomic_add_fetch(&gpu_calls, 1, __ATOMIC_RELAXED);
    return eval_sum_device(NN_CUDA)->sums(h, idx, R, m, out);
}
static void *perm_on_gpu(void *arg) {
    perm_case *c = arg;
    pmi_sum_device dev = *eval_sum_device(NN_CUDA);
    dev.min_work = 0, dev.sums = counted_gpu_sums;
    const double *sv[PT];
    for (int t = 0; t < PT; t++) sv[t] = c->v + (size_t)t * c->N * c->m;
    for (int r = 0; r < c->rounds; r++)
        if (pmi_perm_batch_on(&dev, sv, PT, c->N, c->m, 0, c->R, 1234 + (uint64_t)r, c->p + (size_t)r * PT * c->N, c->z + (size_t)r * PT))
            return (void *)1;
    return NULL;
}

/* The GPU's sums give every p-value and z of the CPU's own sums, bit for bit (the dataset
 * evidence's shape, N = 2 and m = 3000, and the pool's, N = 10, m = 100), also while the main
 * thread trains a group whose CUDA graphs are captured meanwhile (captures are thread-local). */
static void test_perm_sums_gpu(void **state) {
    if (!have_cuda()) skip();
    perm_case cases[] = {{.N = 2, .m = 3000, .R = 999}, {.N = 10, .m = 100, .R = 9999}};
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    for (int c = 0; c < 2; c++) {
        perm_case *pc = &cases[c];
        size_t nm = (size_t)pc->N * pc->m;
        pc->rounds = 3;
        pc->v = malloc(sizeof *pc->v * nm * PT);
        for (size_t i = 0; i < nm * PT; i++) pc->v[i] = gsl_ran_gaussian(g, 1) * (i % 7 ? 1 : 1e6) + (i % nm < (size_t)pc->m ? 0.02 : 0);
        pc->p = malloc(sizeof *pc->p * PT * pc->N * pc->rounds);
        pc->z = malloc(sizeof *pc->z * PT * pc->rounds);
        gpu_calls = 0;
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, perm_on_gpu, pc), 0);
        nn_data *d = NULL;   /* the main thread trains meanwhile: 4 models, graphs captured */
        assert_int_equal(nn_data_create(data.x, data.y, data.n, 1, 8, 8, NN_CUDA, &d), NN_OK);
        nn_train_task t[4];
        for (int k = 0; k < 4; k++) {
            nn_train_params p = nn_train_default_params();
            p.epochs = 2; p.lr = 0.02; p.momentum = 0.9; p.batch_size = 64; p.seed = 7 + (uint64_t)k;
            t[k] = (nn_train_task){.model = make("cnn", NN_CUDA, 70 + (uint64_t)k), .data = d, .params = p};
        }
        assert_int_equal(nn_train_tasks(t, 4), NN_OK);
        for (int k = 0; k < 4; k++) nn_model_free(t[k].model);
        nn_data_free(d);
        void *rc;
        pthread_join(th, &rc);
        assert_null(rc);
        assert_true(gpu_calls >= pc->rounds);
        const double *sv[PT];
        for (int t2 = 0; t2 < PT; t2++) sv[t2] = pc->v + (size_t)t2 * nm;
        for (int r = 0; r < pc->rounds; r++) {
            double p[PT * 10], z[PT];
            assert_int_equal(pmi_perm_batch(sv, PT, pc->N, pc->m, 0, pc->R, 1234 + (uint64_t)r, p, z), 0);
            for (int i = 0; i < PT * pc->N; i++)
                if (memcmp(&p[i], &pc->p[(size_t)r * PT * pc->N + i], sizeof *p))
                    fail_msg("N %d m %d round %d p[%d]: GPU %.17g, CPU %.17g", pc->N, pc->m, r, i, pc->p[(size_t)r * PT * pc->N + i], p[i]);
            assert_true(memcmp(z, pc->z + (size_t)r * PT, sizeof z) == 0);
        }
        print_message("N = %d, m = %d: %d GPU sum calls, every p and z the CPU's\n", pc->N, pc->m, gpu_calls);
        free(pc->v); free(pc->p); free(pc->z);
    }
    gsl_rng_free(g);
}

static void test_group_memory_gpu(void **state) {
    if (!have_cuda()) skip();
    enum { K = 6, ROUNDS = 4 };
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, data.n, 1, 8, 8, NN_CUDA, &d), NN_OK);
    int64_t first = 0, first_held = 0;
    for (int r = 0; r < ROUNDS; r++) {
        nn_train_task t[K];
        for (int k = 0; k < K; k++) {
            nn_train_params p = nn_train_default_params();
            p.epochs = 1; p.lr = 0.02; p.momentum = 0.9; p.batch_size = 64; p.seed = 100 + (uint64_t)k;
            if (k == 2) { p.clip = 1; p.grad_noise = 1; }          /* noisy fine-tuning: draws on the GPU */
            if (k == 3) { p.adv_eps = 0.1; p.adv_steps = 2; }     /* adversarial training: its PGD starts */
            t[k] = (nn_train_task){.model = make(k % 2 ? "cnn" : "mlp", NN_CUDA, 40 + (uint64_t)k), .data = d, .params = p};
        }
        assert_int_equal(nn_train_tasks(t, K), NN_OK);
        for (int k = 0; k < K; k++) nn_model_free(t[k].model);
        int64_t now = nn_cuda_allocated_bytes(), held = nn_cuda_reserved_bytes();
        print_message("after group %d: %.1f MiB of GPU memory in live tensors, %.1f MiB held by the allocator\n", r,
                      (double)now / (1 << 20), (double)held / (1 << 20));
        if (r == 0) { first = now; first_held = held; continue; }
        if (now - first > 8 << 20) fail_msg("group %d left %.1f MiB more than the first", r, (double)(now - first) / (1 << 20));
        /* each group's streams are new: blocks cached for the old ones must have gone back */
        if (held - first_held > 8 << 20) fail_msg("group %d: the allocator holds %.1f MiB more than after the first", r,
                                                  (double)(held - first_held) / (1 << 20));
    }
    nn_data_free(d);
}

/* Neuron shuffling keeps a model's function on the GPU (cnn, vgg11 with BatchNorm, resnet18's
 * blocks), and Fine-Pruning removes the same channels on the GPU as on the CPU. (Its first run
 * on an H200 found shuffling through a Flatten failing on CUDA: an index built on the CPU.) */
static void test_shuffle_fineprune_gpu(void **state) {
    if (!have_cuda()) skip();
    static const char *archs[] = {"cnn", "vgg11", "resnet18"};
    enum { N = 1000 };
    nn_data *dc = NULL, *dg = NULL;
    assert_int_equal(nn_data_create(data.x, data.y, N, 1, 8, 8, NN_CPU, &dc), NN_OK);
    assert_int_equal(nn_data_create(data.x, data.y, N, 1, 8, 8, NN_CUDA, &dg), NN_OK);
    float *x = malloc(sizeof(float) * N * 10), *y = malloc(sizeof(float) * N * 10);
    for (int k = 0; k < 3; k++) {
        nn_model *a, *b, *s = NULL;
        trained_pair(archs[k], &a, &b);
        assert_int_equal(nn_model_copy(b, &s), NN_OK);
        if (nn_shuffle_units(s, 11) != NN_OK) fail_msg("shuffle %s on the GPU: %s", archs[k], nn_last_error());
        assert_int_equal(nn_eval_logp(b, dg, x), NN_OK);
        assert_int_equal(nn_eval_logp(s, dg, y), NN_OK);
        double d = 0;
        for (int i = 0; i < N * 10; i++) d = fmax(d, fabs(x[i] - y[i]));
        int moved = 0;
        for (int q = 0; q < nn_param_count(b); q++) moved += !same_weights(b, s, q);
        print_message("shuffle %s on the GPU: outputs within %.2e, %d tensors moved\n", archs[k], d, moved);
        if (d > 1e-3) fail_msg("%s: shuffled outputs differ by %g on the GPU", archs[k], d);
        if (moved < 2) fail_msg("%s: only %d tensors moved", archs[k], moved);
        if (k < 2) {   /* sequential: Fine-Pruning */
            int pc = -1, pg = -2;
            assert_int_equal(nn_prune_channels(a, dc, 0.5, &pc), NN_OK);
            if (nn_prune_channels(b, dg, 0.5, &pg) != NN_OK) fail_msg("fineprune %s on the GPU: %s", archs[k], nn_last_error());
            assert_int_equal(pc, pg);
            assert_true(pg > 0);
            for (int q = 0; q < nn_param_count(a); q++) {
                int64_t numel;
                nn_param_info(a, q, NULL, &numel, NULL, NULL);
                float *wa = malloc(sizeof(float) * (size_t)numel), *wb = malloc(sizeof(float) * (size_t)numel);
                nn_param_get(a, q, wa); nn_param_get(b, q, wb);
                for (int64_t i = 0; i < numel; i++)
                    if ((wa[i] == 0) != (wb[i] == 0)) fail_msg("%s tensor %d: CPU and GPU pruned different weights", archs[k], q);
                free(wa); free(wb);
            }
        }
        nn_model_free(a); nn_model_free(b); nn_model_free(s);
    }
    free(x); free(y);
    nn_data_free(dc); nn_data_free(dg);
}

/* nn_eval_many on a GPU: lenets, cnns and mlps, each on data of its own, fused per architecture
 * (the lenets' and cnns' convolutions by the shim's kernels where built) give what nn_eval_logp
 * and nn_accuracy give one by one, to rounding. */
static void test_eval_many_gpu(void **state) {
    if (!have_cuda()) skip();
    enum { P = 8, A = 3, M = A * P, N = 600 };
    pmi_dataset big;
    assert_int_equal(data_synthetic(P * N, 1, 28, 28, 10, 5, &big), 0);
    data_normalize(&big, DATA_NORM_UNIT, NULL, NULL);
    nn_data *all = NULL, *d[P];
    assert_int_equal(nn_data_create(big.x, big.y, big.n, 1, 28, 28, NN_CUDA, &all), NN_OK);
    int64_t *idx = malloc(sizeof *idx * N);
    for (int p = 0; p < P; p++) {
        for (int i = 0; i < N; i++) idx[i] = (int64_t)p * N + i;
        assert_int_equal(nn_data_subset(all, idx, N, &d[p]), NN_OK);
    }
    static const char *arch[A] = {"lenet", "cnn", "mlp"};
    nn_model *m[M];
    const nn_data *md[M];
    float *lp[M], *one[M];
    double acc[M];
    for (int i = 0; i < M; i++) {
        nn_model_spec spec = {.arch = arch[i % A], .c = 1, .h = 28, .w = 28, .classes = 10, .device = NN_CUDA, .seed = 90 + i};
        assert_int_equal(nn_model_create(&spec, &m[i]), NN_OK);
        md[i] = d[i / A];
        lp[i] = malloc(sizeof(float) * N * 10);
        one[i] = malloc(sizeof(float) * N * 10);
        assert_int_equal(nn_eval_logp(m[i], md[i], one[i]), NN_OK);
    }
    assert_int_equal(nn_eval_many(m, md, M, lp, acc), NN_OK);
    assert_int_equal(nn_eval_fused_models(), M);
    for (int i = 0; i < M; i++) {
        double want, worst = 0;
        assert_int_equal(nn_accuracy(m[i], md[i], &want), NN_OK);
        for (int r = 0; r < N * 10; r++) worst = fmax(worst, fabs(lp[i][r] - one[i][r]));
        if (worst > 1e-4 || fabs(acc[i] - want) > 2.0 / N)
            fail_msg("%s %d: fused logp differs by %g, accuracy %g against %g", arch[i % A], i, worst, acc[i], want);
        free(lp[i]); free(one[i]); nn_model_free(m[i]);
    }
    for (int p = 0; p < P; p++) nn_data_free(d[p]);
    nn_data_free(all); free(idx); data_free(&big);
}

/* test_nn.c's test_eval_many_interfaces on the GPU: 8 LeNets on 4500 queries (two chunks of an
 * interface's noise), with input noise, output noise, blur and top-3, label-only, quantized
 * inputs, flipped inputs and none, fuse into one network and answer within 1e-5 of each one's
 * own evaluation, probability by probability. */
static void test_eval_many_interfaces_gpu(void **state) {
    if (!have_cuda()) skip();
    enum { M = 8, N = 4500 };
    pmi_dataset big;
    assert_int_equal(data_synthetic(N, 1, 28, 28, 10, 6, &big), 0);
    data_normalize(&big, DATA_NORM_UNIT, NULL, NULL);
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(big.x, big.y, big.n, 1, 28, 28, NN_CUDA, &d), NN_OK);
    const nn_interface q[M] = {{.input = NN_IN_NOISE, .in_param = 0.5, .seed = 11},
                               {.output = NN_OUT_NOISE, .out_param = 0.05, .seed = 12},
                               {.input = NN_IN_BLUR, .in_param = 1, .output = NN_OUT_TOPK, .out_param = 3},
                               {.output = NN_OUT_LABEL}, {.input = NN_IN_QUANTIZE, .in_param = 2},
                               {.input = NN_IN_FLIP}, {.output = NN_OUT_TEMPERATURE, .out_param = 5}, {0}};
    nn_model *m[M];
    const nn_data *md[M];
    float *lp[M], *one[M];
    double acc[M];
    for (int i = 0; i < M; i++) {
        nn_model_spec spec = {.arch = "lenet", .c = 1, .h = 28, .w = 28, .classes = 10, .device = NN_CUDA, .seed = 70 + i};
        assert_int_equal(nn_model_create(&spec, &m[i]), NN_OK);
        assert_int_equal(nn_set_interface(m[i], &q[i]), NN_OK);
        md[i] = d;
        lp[i] = malloc(sizeof(float) * N * 10);
        one[i] = malloc(sizeof(float) * N * 10);
        assert_int_equal(nn_eval_logp(m[i], d, one[i]), NN_OK);
    }
    assert_int_equal(nn_eval_many(m, md, M, lp, acc), NN_OK);
    assert_int_equal(nn_eval_fused_models(), M);
    for (int i = 0; i < M; i++) {
        double want, worst = 0;
        assert_int_equal(nn_accuracy(m[i], d, &want), NN_OK);
        for (int r = 0; r < N * 10; r++) worst = fmax(worst, fabs(exp(lp[i][r]) - exp(one[i][r])));
        if (worst > 1e-5 || fabs(acc[i] - want) > 2.0 / N)
            fail_msg("lenet %d: fused probabilities differ by %g, accuracy %g against %g", i, worst, acc[i], want);
        free(lp[i]); free(one[i]); nn_model_free(m[i]);
    }
    nn_data_free(d);
    data_free(&big);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_many_gpu),
        cmocka_unit_test(test_eval_many_interfaces_gpu),
        cmocka_unit_test(test_cpu_gpu_same_logp),
        cmocka_unit_test(test_graph_matches_eager),
        cmocka_unit_test(test_graph_batchnorm_fits),
        cmocka_unit_test(test_group_cpu_equals_single),
        cmocka_unit_test(test_group_gpu_equals_single),
        cmocka_unit_test(test_tasks_cpu_equal_single),
        cmocka_unit_test(test_tasks_gpu_equal_single),
        cmocka_unit_test(test_fused_cpu_close_to_single),
        cmocka_unit_test(test_fused_equal_sizes),
        cmocka_unit_test(test_fused_gpu_close_to_single),
        cmocka_unit_test(test_fused_recipes_cpu_close_to_single),
        cmocka_unit_test(test_fused_recipes_gpu_close_to_single),
        cmocka_unit_test(test_fuse_min_gpu),
        cmocka_unit_test(test_gconv_gpu),
        cmocka_unit_test(test_channels_last_cpu),
        cmocka_unit_test(test_channels_last_gpu),
        cmocka_unit_test(test_channels_last_kernels_gpu),
        cmocka_unit_test(test_bf16_cpu),
        cmocka_unit_test(test_bf16_gpu),
        cmocka_unit_test(test_group_every_arch_pair),
        cmocka_unit_test(test_interface_gpu),
        cmocka_unit_test(test_recipes_gpu),
        cmocka_unit_test(test_shuffle_fineprune_gpu),
        cmocka_unit_test(test_group_memory_gpu),
        cmocka_unit_test(test_perm_sums_gpu),
    };
    /* GPU_TEST_FILTER="*_gpu" runs only the tests whose names match (cmocka's * and ?) */
    if (getenv("GPU_TEST_FILTER")) cmocka_set_test_filter(getenv("GPU_TEST_FILTER"));
    return cmocka_run_group_tests_name("gpu", tests, setup, teardown);
}
