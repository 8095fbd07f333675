/* test_nn: the libtorch shim through its C API (nn.h), on the CPU.
 * Architectures build and give normalised log-probabilities; training is deterministic,
 * fits an easy synthetic dataset and honours NN_TRAIN_LAST; pruning, quantisation, noise,
 * re-initialisation, distillation and copying do what nn.h promises. */
#include "testutil.h"
#include "nn.h"

#include <math.h>

/* ---- helpers ----------------------------------------------------------------------- */
static uint64_t rng_next(uint64_t *s) {  /* xorshift64* */
    *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}
static double rng_unif(uint64_t *s) { return ((rng_next(s) >> 11) + 0.5) / 9007199254740992.0; }
static double rng_gauss(uint64_t *s) {
    return sqrt(-2.0 * log(rng_unif(s))) * cos(6.283185307179586 * rng_unif(s));
}

/* An easy K-class dataset of n samples (1, S, S): class k is a fixed +-1 pattern (the same
 * for every `seed`) plus N(0, noise^2) pixel noise drawn from `seed`; the stored label is
 * (k + shift) % K, so shift != 0 gives wrong labels. */
enum { S = 8, K = 4 };
static nn_data *shifted_data(int n, uint64_t seed, double noise, int shift) {
    float *x = malloc(sizeof(float) * n * S * S);
    int32_t *y = malloc(sizeof(int32_t) * n);
    float pattern[K][S * S];
    uint64_t ps = 12345;
    for (int k = 0; k < K; k++)
        for (int j = 0; j < S * S; j++) pattern[k][j] = rng_unif(&ps) < 0.5 ? -1.0f : 1.0f;
    uint64_t s = seed * 7919 + 1;
    for (int i = 0; i < n; i++) {
        y[i] = i % K;
        for (int j = 0; j < S * S; j++) x[i * S * S + j] = pattern[y[i]][j] + (float)(noise * rng_gauss(&s));
        y[i] = (y[i] + shift) % K;
    }
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(x, y, n, 1, S, S, NN_CPU, &d), NN_OK);
    free(x); free(y);
    return d;
}

static nn_data *easy_data(int n, uint64_t seed, double noise) { return shifted_data(n, seed, noise, 0); }

/* Random N(0,1) inputs of shape (n, c, h, w), labels i % classes. */
static nn_data *noise_data(int n, int c, int h, int w, int classes) {
    size_t per = (size_t)c * h * w;
    float *x = malloc(sizeof(float) * n * per);
    int32_t *y = malloc(sizeof(int32_t) * n);
    uint64_t s = 99;
    for (size_t j = 0; j < n * per; j++) x[j] = (float)rng_gauss(&s);
    for (int i = 0; i < n; i++) y[i] = i % classes;
    nn_data *d = NULL;
    assert_int_equal(nn_data_create(x, y, n, c, h, w, NN_CPU, &d), NN_OK);
    free(x); free(y);
    return d;
}

static nn_model *make_model(const char *arch, int c, int h, int w, int classes, int width, uint64_t seed) {
    nn_model_spec spec = {arch, c, h, w, classes, width, NN_CPU, seed};
    nn_model *m = NULL;
    nn_status st = nn_model_create(&spec, &m);
    if (st != NN_OK) fail_msg("nn_model_create(%s): %s", arch, nn_last_error());
    return m;
}

static nn_train_params quick_params(int epochs, uint64_t seed) {
    nn_train_params p = nn_train_default_params();
    p.lr = 0.05; p.epochs = epochs; p.batch_size = 32; p.seed = seed; p.weight_decay = 0;
    return p;
}

static void train_ok(nn_model *m, const nn_data *d, const nn_train_params *p, double *curve) {
    nn_status st = nn_train(m, d, p, curve);
    if (st != NN_OK) fail_msg("nn_train: %s", nn_last_error());
}

static void train_quick(nn_model *m, const nn_data *d, int epochs, uint64_t seed) {
    nn_train_params p = quick_params(epochs, seed);
    train_ok(m, d, &p, NULL);
}

static float *eval_logp(nn_model *m, const nn_data *d, int classes) {
    float *lp = malloc(sizeof(float) * nn_data_size(d) * classes);
    nn_status st = nn_eval_logp(m, d, lp);
    if (st != NN_OK) fail_msg("nn_eval_logp: %s", nn_last_error());
    return lp;
}

/* All parameters, concatenated; *off (nn_param_count + 1 entries) gets each tensor's offset. */
static float *all_params(const nn_model *m, int64_t **off) {
    int np = nn_param_count(m);
    *off = malloc(sizeof(int64_t) * (np + 1));
    (*off)[0] = 0;
    for (int i = 0; i < np; i++) {
        int64_t numel;
        assert_int_equal(nn_param_info(m, i, NULL, &numel, NULL, NULL), NN_OK);
        (*off)[i + 1] = (*off)[i] + numel;
    }
    float *v = malloc(sizeof(float) * (*off)[np]);
    for (int i = 0; i < np; i++) assert_int_equal(nn_param_get(m, i, v + (*off)[i]), NN_OK);
    return v;
}

static int tensor_equal(const float *a, const float *b, const int64_t *off, int i) {
    return memcmp(a + off[i], b + off[i], sizeof(float) * (off[i + 1] - off[i])) == 0;
}

static int param_ndim(const nn_model *m, int i) {
    int nd;
    assert_int_equal(nn_param_info(m, i, NULL, NULL, NULL, &nd), NN_OK);
    return nd;
}

/* Fraction of samples where a and b (n x classes log-probabilities) pick the same class. */
static double argmax_agreement(const float *a, const float *b, int64_t n, int classes) {
    int64_t same = 0;
    for (int64_t i = 0; i < n; i++) {
        int ia = 0, ib = 0;
        for (int k = 1; k < classes; k++) {
            if (a[i * classes + k] > a[i * classes + ia]) ia = k;
            if (b[i * classes + k] > b[i * classes + ib]) ib = k;
        }
        same += ia == ib;
    }
    return (double)same / (double)n;
}

/* ---- tests ------------------------------------------------------------------------- */
/* Every registered arch builds for 1x28x28 and 3x32x32 (small ones also 1x8x8), its rows of
 * exp(logp) sum to one, and the last two parameters are the classifier's weight and bias. */
static void test_archs_forward(void **state) {
    const int shapes[3][3] = {{1, 28, 28}, {3, 32, 32}, {1, 8, 8}};
    for (int a = 0; a < nn_arch_count(); a++) {
        const char *arch = nn_arch_name(a);
        int small = !strcmp(arch, "mlp") || !strcmp(arch, "lenet") || !strcmp(arch, "cnn");
        assert_non_null(nn_arch_help(a));
        for (int s = 0; s < (small ? 3 : 2); s++) {
            nn_model *m = make_model(arch, shapes[s][0], shapes[s][1], shapes[s][2], 10, 0, 1);
            nn_data *d = noise_data(small ? 4 : 2, shapes[s][0], shapes[s][1], shapes[s][2], 10);
            float *lp = eval_logp(m, d, 10);
            for (int64_t i = 0; i < nn_data_size(d); i++) {
                double sum = 0;
                for (int k = 0; k < 10; k++) sum += exp(lp[i * 10 + k]);
                assert_true(fabs(sum - 1.0) < 1e-4);
            }
            int last = nn_last_layer_first_param(m);
            const char *name;
            int64_t shape[4];
            int nd;
            assert_int_equal(last, nn_param_count(m) - 2);
            assert_int_equal(nn_param_info(m, last, &name, NULL, shape, &nd), NN_OK);
            assert_int_equal(nd, 2);
            assert_int_equal(shape[0], 10);
            assert_non_null(strstr(name, "weight"));
            assert_true(nn_model_num_params(m) > 0);
            free(lp);
            nn_data_free(d);
            nn_model_free(m);
        }
    }
}

/* An unknown arch is NN_EINVAL with a message that lists the known ones. */
static void test_bad_arch(void **state) {
    nn_model_spec spec = {"alexnet", 1, 28, 28, 10, 0, NN_CPU, 1};
    nn_model *m = (nn_model *)1;
    assert_int_equal(nn_model_create(&spec, &m), NN_EINVAL);
    assert_null(m);
    assert_non_null(strstr(nn_last_error(), "alexnet"));
    for (int a = 0; a < nn_arch_count(); a++) assert_non_null(strstr(nn_last_error(), nn_arch_name(a)));
    spec.arch = "mlp"; spec.classes = 1;
    assert_int_equal(nn_model_create(&spec, &m), NN_EINVAL);
}

/* On a machine without CUDA, asking for it is NN_EDEVICE with a message; auto gives the CPU. */
static void test_cuda_absent(void **state) {
    nn_device dev;
    char name[128];
    assert_int_equal(nn_device_resolve(NN_WANT_AUTO, &dev, name, sizeof name), NN_OK);
    if (dev == NN_CUDA) skip();
    assert_int_equal(strncmp(name, "cpu (", 5), 0);
    assert_int_equal(nn_device_resolve(NN_WANT_CUDA, &dev, name, sizeof name), NN_EDEVICE);
    assert_non_null(strstr(nn_last_error(), "cuda requested but torch.cuda is not available"));
    assert_non_null(strstr(nn_last_error(), nn_torch_version()));
    nn_model_spec spec = {"mlp", 1, 8, 8, 4, 8, NN_CUDA, 1};
    nn_model *m = NULL;
    assert_int_equal(nn_model_create(&spec, &m), NN_EDEVICE);
    assert_int_equal(nn_device_resolve((nn_device_request)(NN_WANT_CUDA_0 + 3), &dev, NULL, 0), NN_EDEVICE);
    assert_int_equal(nn_device_resolve((nn_device_request)(NN_WANT_CUDA_MAX + 1), &dev, NULL, 0), NN_EINVAL);
    assert_int_equal(nn_device_resolve((nn_device_request)-1, &dev, NULL, 0), NN_EINVAL);
}

/* The named choices: each enum's names in order, NULL past either end, parse as the inverse;
 * an unknown or NULL name is -1 and leaves *out alone. cpu resolves to the CPU. */
static void test_name_tables(void **state) {
    static const char *const want[][20] = {{"auto", "cpu", "cuda", "cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:4", "cuda:5",
                                            "cuda:6", "cuda:7", "cuda:8", "cuda:9", "cuda:10", "cuda:11", "cuda:12",
                                            "cuda:13", "cuda:14", "cuda:15", NULL},
                                           {"sgd", "adam", NULL}, {"none", "step", "cosine", NULL}};
    const char *(*const name[])(int) = {nn_device_request_name, nn_optimizer_name, nn_schedule_name};
    for (int t = 0; t < 3; t++) {
        int i = 0;
        for (; want[t][i]; i++) assert_string_equal(name[t](i), want[t][i]);
        assert_null(name[t](i));
        assert_null(name[t](-1));
    }
    assert_int_equal(NN_WANT_AUTO, 0); assert_int_equal(NN_WANT_CPU, 1); assert_int_equal(NN_WANT_CUDA, 2);
    nn_device_request r = NN_WANT_CPU;
    nn_optimizer o = NN_SGD;
    nn_schedule sc = NN_SCHED_NONE;
    assert_int_equal(nn_device_request_parse("cuda", &r), 0); assert_int_equal(r, NN_WANT_CUDA);
    assert_int_equal(nn_device_request_parse("auto", &r), 0); assert_int_equal(r, NN_WANT_AUTO);
    assert_int_equal(nn_device_request_parse("cuda:3", &r), 0); assert_int_equal(r, NN_WANT_CUDA_0 + 3);
    assert_int_equal(nn_device_request_parse("auto", &r), 0);
    assert_int_equal(nn_device_request_parse("cuda:16", &r), -1); assert_int_equal(r, NN_WANT_AUTO);
    assert_int_equal(nn_device_request_parse("gpu", &r), -1); assert_int_equal(r, NN_WANT_AUTO);
    assert_int_equal(nn_device_request_parse(NULL, &r), -1);
    assert_int_equal(nn_optimizer_parse("adam", &o), 0); assert_int_equal(o, NN_ADAM);
    assert_int_equal(nn_optimizer_parse("Adam", &o), -1); assert_int_equal(o, NN_ADAM);
    assert_int_equal(nn_schedule_parse("cosine", &sc), 0); assert_int_equal(sc, NN_SCHED_COSINE);
    assert_int_equal(nn_schedule_parse("step", &sc), 0); assert_int_equal(sc, NN_SCHED_STEP);
    assert_int_equal(nn_schedule_parse("", &sc), -1);
    assert_null(nn_arch_name(nn_arch_count()));
    assert_null(nn_arch_name(-1));
    nn_device dev = NN_CUDA;
    char name_buf[128];
    assert_int_equal(nn_device_resolve(NN_WANT_CPU, &dev, name_buf, sizeof name_buf), NN_OK);
    assert_int_equal(dev, NN_CPU);
    assert_int_equal(strncmp(name_buf, "cpu (", 5), 0);
}

/* The same seeds give bit-identical log-probabilities after training; another init seed or
 * another batch-order seed gives different ones. */
static void test_determinism(void **state) {
    nn_data *d = easy_data(96, 1, 1.0);
    nn_train_params p = quick_params(1, 7);
    float *lp[4];
    for (int r = 0; r < 4; r++) {
        nn_model *m = make_model("lenet", 1, S, S, K, 0, r == 2 ? 2 : 1);
        p.seed = r == 3 ? 8 : 7;
        train_ok(m, d, &p, NULL);
        lp[r] = eval_logp(m, d, K);
        nn_model_free(m);
    }
    size_t bytes = sizeof(float) * 96 * K;
    assert_memory_equal(lp[0], lp[1], bytes);
    assert_memory_not_equal(lp[0], lp[2], bytes);
    assert_memory_not_equal(lp[0], lp[3], bytes);
    for (int r = 0; r < 4; r++) free(lp[r]);
    nn_data_free(d);
}

/* Training lowers the loss and fits held-out data of an easy task above 90%, with SGD plus a
 * step schedule (mlp) and Adam plus a cosine schedule (cnn). */
static void test_train_fits(void **state) {
    nn_data *train = easy_data(256, 1, 1.0), *test = easy_data(200, 2, 1.0);
    const char *archs[2] = {"mlp", "cnn"};
    for (int a = 0; a < 2; a++) {
        nn_model *m = make_model(archs[a], 1, S, S, K, a ? 8 : 32, 3);
        nn_train_params p = quick_params(8, 1);
        if (a) { p.optimizer = NN_ADAM; p.lr = 0.01; p.schedule = NN_SCHED_COSINE; }
        else { p.schedule = NN_SCHED_STEP; p.step_size = 4; p.gamma = 0.5; }
        double curve[8], acc;
        train_ok(m, train, &p, curve);
        assert_true(curve[7] < curve[0]);
        assert_int_equal(nn_accuracy(m, test, &acc), NN_OK);
        assert_true(acc > 0.9);
        nn_model_free(m);
    }
    nn_data_free(train);
    nn_data_free(test);
}

static int stop_after_two(void *ctx, int epoch, int epochs, double loss) {
    int *calls = ctx;
    assert_int_equal(epochs, 5);
    assert_int_equal(epoch, *calls);
    assert_true(loss > 0);
    return ++*calls == 2;
}

/* on_epoch sees each epoch's loss and stops training when it returns non-zero; unrun epochs
 * are NaN in the loss curve. Bad parameters and out-of-range labels are NN_EINVAL. */
static void test_train_callback_and_checks(void **state) {
    nn_data *d = easy_data(64, 1, 1.0);
    nn_model *m = make_model("mlp", 1, S, S, K, 16, 1);
    nn_train_params p = quick_params(5, 1);
    int calls = 0;
    double curve[5];
    p.on_epoch = stop_after_two; p.ctx = &calls;
    train_ok(m, d, &p, curve);
    assert_int_equal(calls, 2);
    assert_false(isnan(curve[1]));
    assert_true(isnan(curve[2]) && isnan(curve[4]));
    p.on_epoch = NULL; p.batch_size = 0;
    assert_int_equal(nn_train(m, d, &p, NULL), NN_EINVAL);
    p.batch_size = 8; p.optimizer = (nn_optimizer)2;
    assert_int_equal(nn_train(m, d, &p, NULL), NN_EINVAL);
    assert_non_null(strstr(nn_last_error(), "unknown optimizer"));
    p.optimizer = NN_SGD; p.schedule = (nn_schedule)3;
    assert_int_equal(nn_train(m, d, &p, NULL), NN_EINVAL);
    assert_non_null(strstr(nn_last_error(), "unknown schedule"));
    p.schedule = NN_SCHED_NONE;
    nn_model *wide = make_model("mlp", 1, S, S, 2, 16, 1);  /* labels go up to 3: too many */
    p.batch_size = 8;
    assert_int_equal(nn_train(wide, d, &p, NULL), NN_EINVAL);
    assert_non_null(strstr(nn_last_error(), "classes"));
    nn_data *big = noise_data(2, 1, 28, 28, K);
    float lp[2 * K];
    assert_int_equal(nn_eval_logp(m, big, lp), NN_EINVAL);
    nn_model_free(wide);
    nn_model_free(m);
    nn_data_free(big);
    nn_data_free(d);
}

/* A BatchNorm model trains when the last batch would hold a single sample (33 = 2*16 + 1). */
static void test_train_batchnorm_singleton_batch(void **state) {
    nn_data *d = easy_data(33, 1, 1.0);
    nn_model *m = make_model("vgg11", 1, S, S, K, 8, 1);
    nn_train_params p = quick_params(1, 1);
    p.batch_size = 16;
    train_ok(m, d, &p, NULL);
    nn_model_free(m);
    nn_data_free(d);
}

/* NN_TRAIN_LAST changes the last layer's tensors and no other. */
static void test_train_last(void **state) {
    nn_data *d = easy_data(64, 1, 1.0);
    nn_model *m = make_model("cnn", 1, S, S, K, 8, 1);
    int64_t *off;
    float *before = all_params(m, &off);
    nn_train_params p = quick_params(2, 1);
    p.trainable = NN_TRAIN_LAST;
    train_ok(m, d, &p, NULL);
    int64_t *off2;
    float *after = all_params(m, &off2);
    int last = nn_last_layer_first_param(m);
    for (int i = 0; i < nn_param_count(m); i++) assert_int_equal(!tensor_equal(before, after, off, i), i >= last);
    free(before); free(after); free(off); free(off2);
    nn_model_free(m);
    nn_data_free(d);
}

/* Pruning reaches the requested sparsity (global: within one weight per tensor overall;
 * per layer: within one weight in each tensor), masks combine, and pruned weights stay zero
 * through further training while the others move. */
static void test_prune(void **state) {
    nn_data *d = easy_data(64, 1, 1.0);
    for (int global = 0; global < 2; global++) {
        nn_model *m = make_model("lenet", 1, S, S, K, 0, 1);
        double achieved;
        assert_int_equal(nn_prune(m, 0.5, global, &achieved), NN_OK);
        int64_t *off;
        float *w = all_params(m, &off);
        int64_t zeros = 0, total = 0, ntensors = 0;
        for (int i = 0; i < nn_param_count(m); i++) {
            if (param_ndim(m, i) < 2) continue;
            int64_t z = 0, n = off[i + 1] - off[i];
            for (int64_t j = off[i]; j < off[i + 1]; j++) z += w[j] == 0.0f;
            if (!global) assert_true(llabs(z - llround(0.5 * n)) <= 1);
            zeros += z; total += n; ntensors++;
        }
        assert_true(llabs(zeros - llround(0.5 * total)) <= ntensors);
        assert_true(fabs(achieved - (double)zeros / total) < 1e-12);
        assert_true(fabs(nn_sparsity(m) - achieved) < 1e-12);
        train_quick(m, d, 2, 1);
        int64_t *off2;
        float *w2 = all_params(m, &off2);
        int64_t moved = 0;
        for (int i = 0; i < nn_param_count(m); i++)
            for (int64_t j = off[i]; j < off[i + 1] && param_ndim(m, i) >= 2; j++) {
                if (w[j] == 0.0f) assert_true(w2[j] == 0.0f);
                moved += w[j] != w2[j];
            }
        assert_true(moved > total / 4);
        assert_int_equal(nn_prune(m, 0.7, global, &achieved), NN_OK);
        assert_true(achieved >= 0.7 - 1e-3 && achieved <= 0.7 + 1e-3);
        assert_int_equal(nn_prune(m, 0.2, global, &achieved), NN_OK);  /* masks combine: no regrowth */
        assert_true(achieved >= 0.7 - 1e-3);
        free(w); free(w2); free(off); free(off2);
        nn_model_free(m);
    }
    nn_model *m = make_model("mlp", 1, S, S, K, 8, 1);
    assert_int_equal(nn_prune(m, 1.5, 1, NULL), NN_EINVAL);
    nn_model_free(m);
    nn_data_free(d);
}

static int count_distinct(float *v, int64_t n) {
    int distinct = 0;
    for (int64_t i = 0; i < n; i++) {
        int seen = 0;
        for (int64_t j = 0; j < i && !seen; j++) seen = v[j] == v[i];
        distinct += !seen;
    }
    return distinct;
}

/* After nn_quantize(bits) every tensor holds at most 2^bits distinct values; bits outside
 * [1, 16] is NN_EINVAL. */
static void test_quantize(void **state) {
    const int bits[2] = {2, 4};
    for (int b = 0; b < 2; b++) {
        nn_model *m = make_model("lenet", 1, S, S, K, 0, 1);
        assert_int_equal(nn_quantize(m, bits[b]), NN_OK);
        int64_t *off;
        float *w = all_params(m, &off);
        int before_distinct = 0;
        for (int i = 0; i < nn_param_count(m); i++) {
            int nd = count_distinct(w + off[i], off[i + 1] - off[i]);
            assert_true(nd <= 1 << bits[b]);
            before_distinct += nd;
        }
        assert_true(before_distinct > nn_param_count(m));  /* not collapsed to one value */
        free(w); free(off);
        nn_model_free(m);
    }
    nn_model *m = make_model("mlp", 1, S, S, K, 8, 1);
    assert_int_equal(nn_quantize(m, 0), NN_EINVAL);
    assert_int_equal(nn_quantize(m, 17), NN_EINVAL);
    nn_model_free(m);
}

/* nn_add_noise moves each large tensor by about sigma * std(tensor) per weight, and the same
 * seed gives the same noise. */
static void test_add_noise(void **state) {
    nn_model *m = make_model("mlp", 1, S, S, K, 64, 1), *c = NULL;
    assert_int_equal(nn_model_copy(m, &c), NN_OK);
    int64_t *off;
    float *w = all_params(m, &off);
    assert_int_equal(nn_add_noise(m, 0.1, 5), NN_OK);
    assert_int_equal(nn_add_noise(c, 0.1, 5), NN_OK);
    int64_t *off2, *off3;
    float *w2 = all_params(m, &off2), *w3 = all_params(c, &off3);
    assert_memory_equal(w2, w3, sizeof(float) * off[nn_param_count(m)]);
    for (int i = 0; i < nn_param_count(m); i++) {
        int64_t n = off[i + 1] - off[i];
        if (n < 256) continue;
        double mean = 0, var = 0, diff = 0;
        for (int64_t j = off[i]; j < off[i + 1]; j++) mean += w[j] / n;
        for (int64_t j = off[i]; j < off[i + 1]; j++) {
            var += (w[j] - mean) * (w[j] - mean) / n;
            diff += (w2[j] - w[j]) * (w2[j] - w[j]) / n;
        }
        double ratio = sqrt(diff / var);
        assert_true(ratio > 0.08 && ratio < 0.12);
    }
    assert_int_equal(nn_add_noise(m, -1, 5), NN_EINVAL);
    free(w); free(w2); free(w3); free(off); free(off2); free(off3);
    nn_model_free(m);
    nn_model_free(c);
}

/* nn_reinit_last changes only the last layer, deterministically in its seed. */
static void test_reinit_last(void **state) {
    nn_model *m = make_model("cnn", 1, S, S, K, 8, 1), *c = NULL;
    assert_int_equal(nn_model_copy(m, &c), NN_OK);
    int64_t *off, *off2, *off3;
    float *w = all_params(m, &off);
    assert_int_equal(nn_reinit_last(m, 9), NN_OK);
    assert_int_equal(nn_reinit_last(c, 9), NN_OK);
    float *w2 = all_params(m, &off2), *w3 = all_params(c, &off3);
    int last = nn_last_layer_first_param(m);
    for (int i = 0; i < nn_param_count(m); i++) {
        assert_int_equal(!tensor_equal(w, w2, off, i), i >= last);
        assert_true(tensor_equal(w2, w3, off, i));
    }
    free(w); free(w2); free(w3); free(off); free(off2); free(off3);
    nn_model_free(m);
    nn_model_free(c);
}

/* A fresh mlp student distilled from a trained lenet teacher agrees with the teacher's argmax
 * on held-out data far more than before (> 80%), in soft (KL, alpha = 1) and hard (label-only)
 * mode. The attacker's own labels are all wrong, so agreement can only come from the teacher. */
static void test_distill(void **state) {
    nn_data *train = easy_data(256, 1, 1.0), *attacker = shifted_data(256, 3, 1.0, 1), *test = easy_data(200, 2, 1.0);
    nn_model *teacher = make_model("lenet", 1, S, S, K, 0, 1);
    nn_train_params tp = quick_params(10, 1);
    tp.optimizer = NN_ADAM; tp.lr = 0.005;
    train_ok(teacher, train, &tp, NULL);
    double acc;
    assert_int_equal(nn_accuracy(teacher, test, &acc), NN_OK);
    assert_true(acc > 0.9);
    float *lt = eval_logp(teacher, test, K);
    for (int hard = 0; hard < 2; hard++) {
        nn_model *student = make_model("mlp", 1, S, S, K, 32, 5 + hard);
        float *l0 = eval_logp(student, test, K);
        double before = argmax_agreement(lt, l0, 200, K);
        nn_train_params p = quick_params(6, 2);
        p.optimizer = NN_ADAM; p.lr = 0.005;
        nn_distill_params dp = {4.0, 1.0, hard};
        double curve[6];
        nn_status st = nn_distill(student, teacher, attacker, &p, &dp, curve);
        if (st != NN_OK) fail_msg("nn_distill: %s", nn_last_error());
        assert_true(curve[5] < curve[0]);
        float *l1 = eval_logp(student, test, K);
        double after = argmax_agreement(lt, l1, 200, K);
        assert_true(after > before);
        assert_true(after > 0.8);
        free(l0); free(l1);
        nn_model_free(student);
    }
    nn_distill_params bad = {0.0, 0.5, 0};
    nn_train_params p = quick_params(1, 1);
    assert_int_equal(nn_distill(teacher, teacher, train, &p, &bad, NULL), NN_EINVAL);
    free(lt);
    nn_model_free(teacher);
    nn_data_free(train); nn_data_free(attacker); nn_data_free(test);
}

/* Occurrences of the operator `op` in the profile that nn_profile_stop wrote to path. */
static int trace_count(const char *path, const char *op) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("no trace %s", path);
    char pat[128], *buf = NULL;
    size_t cap = 0, len = 0, r;
    do {
        if (len + 65536 + 1 > cap) buf = realloc(buf, cap = 2 * (len + 65536 + 1));
        len += r = fread(buf + len, 1, 65536, f);
    } while (r > 0);
    fclose(f);
    buf[len] = 0;
    snprintf(pat, sizeof pat, "{\"name\": \"%s\",", op);
    int n = 0;
    for (const char *p = buf; (p = strstr(p, pat)); p++) n++;
    free(buf);
    return n;
}

/* A distillation computes its frozen teacher's logits on the training set once, not once per
 * step (nn_torch.cpp, task_loss): distilling an mlp from a lenet over 2 epochs of 8 batches runs
 * the teacher's 2 convolutions once (one pass over the 256 samples), where PMI_TEACHER_CACHE=0
 * runs them at every one of the 16 steps; the students end the same up to rounding. */
static void test_distill_teacher_once(void **state) {
    nn_data *train = easy_data(256, 1, 1.0), *attacker = shifted_data(256, 3, 1.0, 1), *test = easy_data(200, 2, 1.0);
    nn_model *teacher = make_model("lenet", 1, S, S, K, 0, 1);
    nn_train_params tp = quick_params(3, 1);
    train_ok(teacher, train, &tp, NULL);
    float *l[2];
    for (int r = 0; r < 2; r++) {
        if (r) setenv("PMI_TEACHER_CACHE", "0", 1);
        nn_model *student = make_model("mlp", 1, S, S, K, 32, 5);
        nn_train_params p = quick_params(2, 2);
        nn_distill_params dp = {4.0, 0.9, 0};
        char path[512];
        int64_t events = 0;
        snprintf(path, sizeof path, "%s/distill-%d.json", tu_tmpdir(), r);
        assert_int_equal(nn_profile_start(0), NN_OK);
        nn_status st = nn_distill(student, teacher, attacker, &p, &dp, NULL);
        assert_int_equal(nn_profile_stop(path, &events), NN_OK);
        unsetenv("PMI_TEACHER_CACHE");
        if (st != NN_OK) fail_msg("nn_distill: %s", nn_last_error());
        int convs = trace_count(path, "aten::conv2d");
        if (convs != (r ? 2 * 16 : 2)) fail_msg("%s: %d teacher convolutions, expected %d", r ? "uncached" : "cached", convs, r ? 32 : 2);
        l[r] = eval_logp(student, test, K);
        nn_model_free(student);
    }
    double dmax = 0;
    for (int i = 0; i < 200 * K; i++) dmax = fmax(dmax, fabs((double)l[0][i] - l[1][i]));
    if (!(dmax < 1e-3)) fail_msg("cached and uncached students differ by %g in a log-probability", dmax);
    free(l[0]); free(l[1]);
    nn_model_free(teacher);
    nn_data_free(train); nn_data_free(attacker); nn_data_free(test);
}

/* SGD steps through multi-tensor _foreach ops (nn_torch.cpp, ForeachSGD), bit for bit libtorch's
 * SGD on the CPU: a VGG-11 (BatchNorm; parameters of 1, 2 and 4 dimensions) trained 2 epochs of
 * 8 steps with momentum 0.9 and weight decay 5e-4 both ways (PMI_FOREACH_SGD=0: libtorch's) ends
 * with the same log-probabilities, and the profile shows the foreach path taken: one
 * _foreach_mul_ (the momentum) per step after the first, none with libtorch's. */
static void test_foreach_sgd_is_libtorch_sgd(void **state) {
    nn_data *d = easy_data(256, 1, 1.0);
    float *l[2];
    for (int r = 0; r < 2; r++) {
        if (r) setenv("PMI_FOREACH_SGD", "0", 1);
        nn_model *m = make_model("vgg11", 1, S, S, K, 8, 3);
        nn_train_params p = quick_params(2, 4);
        p.momentum = 0.9; p.weight_decay = 5e-4;
        char path[512];
        snprintf(path, sizeof path, "%s/sgd-%d.json", tu_tmpdir(), r);
        assert_int_equal(nn_profile_start(0), NN_OK);
        nn_status st = nn_train(m, d, &p, NULL);
        assert_int_equal(nn_profile_stop(path, NULL), NN_OK);
        unsetenv("PMI_FOREACH_SGD");
        if (st != NN_OK) fail_msg("nn_train: %s", nn_last_error());
        int muls = trace_count(path, "aten::_foreach_mul_");
        if (muls != (r ? 0 : 15)) fail_msg("%s: %d aten::_foreach_mul_, expected %d", r ? "libtorch's SGD" : "foreach SGD", muls, r ? 0 : 15);
        l[r] = eval_logp(m, d, K);
        nn_model_free(m);
    }
    assert_memory_equal(l[0], l[1], sizeof(float) * 256 * K);
    free(l[0]); free(l[1]);
    nn_data_free(d);
}

/* A copy (weights, BatchNorm statistics and masks) gives identical log-probabilities and is
 * independent afterwards: training it leaves the original alone and keeps its pruned zeros. */
static void test_model_copy(void **state) {
    nn_data *d = easy_data(64, 1, 1.0);
    nn_model *m = make_model("vgg11", 1, S, S, K, 8, 1), *c = NULL;
    train_quick(m, d, 1, 1);  /* moves BN running stats */
    assert_int_equal(nn_prune(m, 0.5, 1, NULL), NN_OK);
    assert_int_equal(nn_model_copy(m, &c), NN_OK);
    float *a = eval_logp(m, d, K), *b = eval_logp(c, d, K);
    size_t bytes = sizeof(float) * 64 * K;
    assert_memory_equal(a, b, bytes);
    train_quick(c, d, 1, 2);
    float *a2 = eval_logp(m, d, K), *b2 = eval_logp(c, d, K);
    assert_memory_equal(a, a2, bytes);
    assert_memory_not_equal(b, b2, bytes);
    assert_true(nn_sparsity(c) >= 0.5 - 1e-3);
    free(a); free(b); free(a2); free(b2);
    nn_model_free(c);
    nn_model_free(m);
    nn_data_free(d);
}

/* The CPU's 2x2 pooling (framework/nn_torch.cpp: two element-wise maxima, the gradient to each
 * window's first maximum) is ATen's max_pool2d bit for bit: LeNet and the small CNN trained for two
 * epochs both ways (PMI_POOL=aten at creation) end with the same parameters and log-probabilities,
 * on 8x8 and on 9x9 images (floor mode drops the last row and column). A third of the images are
 * constant, so that windows hold positive ties and the tie-break decides where gradients go. */
static void test_pool_matches_max_pool2d(void **state) {
    const char *archs[2] = {"lenet", "cnn"};
    for (int side = 8; side <= 9; side++) {
        int n = 96, per = side * side;
        float *x = malloc(sizeof(float) * n * per);
        int32_t *y = malloc(sizeof(int32_t) * n);
        uint64_t s = 5;
        for (int i = 0; i < n; i++) {
            y[i] = i % K;
            for (int j = 0; j < per; j++)
                x[i * per + j] = i % 3 == 0 ? 0.25f * (float)(y[i] + 1) : (float)rng_gauss(&s) + (j % (y[i] + 2) == 0);
        }
        nn_data *d = NULL;
        assert_int_equal(nn_data_create(x, y, n, 1, side, side, NN_CPU, &d), NN_OK);
        free(x); free(y);
        for (int a = 0; a < 2; a++) {
            float *lp[2], *pv[2];
            int64_t *off[2], np = 0;
            for (int r = 0; r < 2; r++) {
                if (r) setenv("PMI_POOL", "aten", 1);
                nn_model *m = make_model(archs[a], 1, side, side, K, 8, 3);
                unsetenv("PMI_POOL");
                train_quick(m, d, 2, 4);
                lp[r] = eval_logp(m, d, K);
                pv[r] = all_params(m, &off[r]);
                np = nn_param_count(m);
                nn_model_free(m);
            }
            assert_memory_equal(lp[0], lp[1], sizeof(float) * n * K);
            assert_memory_equal(pv[0], pv[1], sizeof(float) * off[0][np]);
            for (int r = 0; r < 2; r++) { free(lp[r]); free(pv[r]); free(off[r]); }
        }
        nn_data_free(d);
    }
}

/* Subsets gather the requested rows, concatenation appends, bad indices are NN_EINVAL, and
 * parameters round-trip through nn_param_set/nn_param_get. */
static void test_data_and_params(void **state) {
    nn_data *d = easy_data(20, 1, 1.0), *sub = NULL, *cat = NULL;
    nn_model *m = make_model("mlp", 1, S, S, K, 8, 1);
    const int64_t idx[3] = {19, 0, 7};
    assert_int_equal(nn_data_subset(d, idx, 3, &sub), NN_OK);
    assert_int_equal(nn_data_size(sub), 3);
    float *full = eval_logp(m, d, K), *part = eval_logp(m, sub, K);
    for (int r = 0; r < 3; r++) assert_memory_equal(part + r * K, full + idx[r] * K, sizeof(float) * K);
    const int64_t bad[1] = {20};
    nn_data *none = (nn_data *)1;
    assert_int_equal(nn_data_subset(d, bad, 1, &none), NN_EINVAL);
    assert_null(none);
    assert_int_equal(nn_data_concat(d, sub, &cat), NN_OK);
    assert_int_equal(nn_data_size(cat), 23);
    nn_data *other = noise_data(2, 3, S, S, K);
    assert_int_equal(nn_data_concat(d, other, &none), NN_EINVAL);
    int64_t numel;
    assert_int_equal(nn_param_info(m, 0, NULL, &numel, NULL, NULL), NN_OK);
    float *v = malloc(sizeof(float) * numel), *back = malloc(sizeof(float) * numel);
    for (int64_t j = 0; j < numel; j++) v[j] = (float)j / (float)numel;
    assert_int_equal(nn_param_set(m, 0, v), NN_OK);
    assert_int_equal(nn_param_get(m, 0, back), NN_OK);
    assert_memory_equal(v, back, sizeof(float) * numel);
    assert_int_equal(nn_param_info(m, nn_param_count(m), NULL, NULL, NULL, NULL), NN_EINVAL);
    free(v); free(back); free(full); free(part);
    nn_data_free(other); nn_data_free(cat); nn_data_free(sub); nn_data_free(d);
    nn_model_free(m);
    nn_model_free(NULL);
    nn_data_free(NULL);
}

/* nn_data_adopt keeps the caller's pixels (CPU: no copy, freed with the data; ASan's leak and
 * double-free checks watch that) and gives what nn_data_create gives: the same model outputs
 * and labels. Bad arguments free x and fail like nn_data_create. */
static void test_data_adopt(void **state) {
    const int n = 12, per = S * S;
    float *x = malloc(sizeof(float) * n * per), *mine = malloc(sizeof(float) * n * per);
    int32_t y[12];
    uint64_t s = 5;
    for (int j = 0; j < n * per; j++) x[j] = mine[j] = (float)rng_gauss(&s);
    for (int i = 0; i < n; i++) y[i] = (i * 5) % K;
    nn_data *copied = NULL, *adopted = NULL, *none = (nn_data *)1;
    assert_int_equal(nn_data_create(x, y, n, 1, S, S, NN_CPU, &copied), NN_OK);
    assert_int_equal(nn_data_adopt(mine, y, n, 1, S, S, NN_CPU, &adopted), NN_OK);
    y[0] = 1 - y[0] % 2;   /* the labels were converted: the caller's array is its own again */
    nn_model *m = make_model("lenet", 1, S, S, K, 8, 3);
    float *a = eval_logp(m, copied, K), *b = eval_logp(m, adopted, K);
    assert_memory_equal(a, b, sizeof(float) * n * K);
    int32_t ya[12], yb[12];
    assert_int_equal(nn_data_labels(copied, ya), NN_OK);
    assert_int_equal(nn_data_labels(adopted, yb), NN_OK);
    assert_memory_equal(ya, yb, sizeof ya);
    assert_int_equal(nn_data_adopt(malloc(sizeof(float)), y, 1, 0, S, S, NN_CPU, &none), NN_EINVAL);
    assert_null(none);
    free(a); free(b); free(x);
    nn_data_free(copied); nn_data_free(adopted);
    nn_model_free(m);
}

/* nn_eval_many fuses the models that can share one network (lenets and mlps of one shape, no
 * interface, data of one size; PMI_EVAL_FUSE=1 lets it on the CPU) and gives what nn_eval_logp
 * and nn_accuracy give one by one, to rounding; the others run alone; =0 fuses none and is the
 * same bit for bit. */
static void test_eval_many(void **state) {
    (void)state;
    enum { N = 6 * 70, M = 8 };
    nn_data *all = noise_data(N, 1, 28, 28, 10), *d[4];
    for (int p = 0; p < 4; p++) {
        int64_t idx[70];
        int n = p < 3 ? 70 : 50;   /* the last one of another size */
        for (int i = 0; i < n; i++) idx[i] = (int64_t)p * 70 + (i * 7) % 70;
        assert_int_equal(nn_data_subset(all, idx, n, &d[p]), NN_OK);
    }
    nn_model *m[M] = {make_model("lenet", 1, 28, 28, 10, 0, 1), make_model("mlp", 1, 28, 28, 10, 0, 2),
                      make_model("lenet", 1, 28, 28, 10, 0, 3), make_model("lenet", 1, 28, 28, 10, 0, 4),
                      make_model("lenet", 1, 28, 28, 10, 0, 5), make_model("lenet", 1, 28, 28, 10, 0, 6),
                      make_model("mlp", 1, 28, 28, 10, 0, 7), make_model("lenet", 1, 28, 28, 10, 0, 8)};
    const nn_data *md[M] = {d[0], d[0], d[1], d[2], d[2], d[3], d[1], d[0]};
    double got;
    assert_int_equal(nn_prune(m[2], 0.5, 1, &got), NN_OK);                /* masked weights fuse too */
    nn_interface q = {.output = NN_OUT_TEMPERATURE, .out_param = 2};
    assert_int_equal(nn_set_interface(m[3], &q), NN_OK);                 /* an interface fuses too */
    const int fused = 7;   /* lenets 0, 2, 3, 4, 7 and mlps 1, 6; not 5 (its data's size) */
    float *lp[M], *one[M];
    double acc[M];
    for (int i = 0; i < M; i++) {
        lp[i] = malloc(sizeof(float) * nn_data_size(md[i]) * 10);
        one[i] = eval_logp(m[i], md[i], 10);
    }
    setenv("PMI_EVAL_FUSE", "1", 1);
    assert_int_equal(nn_eval_many(m, md, M, lp, acc), NN_OK);
    assert_int_equal(nn_eval_fused_models(), fused);
    for (int i = 0; i < M; i++) {
        double want, worst = 0;
        assert_int_equal(nn_accuracy(m[i], md[i], &want), NN_OK);
        for (int64_t r = 0; r < nn_data_size(md[i]) * 10; r++) worst = fmax(worst, fabs(lp[i][r] - one[i][r]));
        if (worst > 1e-4 || acc[i] != want)
            fail_msg("model %d: fused logp differs by %g, accuracy %g against %g", i, worst, acc[i], want);
    }
    setenv("PMI_EVAL_FUSE", "0", 1);
    assert_int_equal(nn_eval_many(m, md, M, lp, NULL), NN_OK);
    assert_int_equal(nn_eval_fused_models(), 0);
    for (int i = 0; i < M; i++) assert_memory_equal(lp[i], one[i], sizeof(float) * nn_data_size(md[i]) * 10);
    unsetenv("PMI_EVAL_FUSE");
    assert_int_equal(nn_eval_many(m, md, M, NULL, NULL), NN_EINVAL);    /* nothing asked for */
    assert_non_null(strstr(nn_last_error(), "nn_eval_many"));
    nn_data *small = noise_data(4, 1, 8, 8, 10);
    const nn_data *bad[1] = {small};
    assert_int_equal(nn_eval_many(m, bad, 1, lp, acc), NN_EINVAL);     /* a shape the model does not take */
    assert_non_null(strstr(nn_last_error(), "nn_eval_many: data samples are 1x8x8"));
    for (int i = 0; i < M; i++) { free(lp[i]); free(one[i]); nn_model_free(m[i]); }
    for (int p = 0; p < 4; p++) nn_data_free(d[p]);
    nn_data_free(all); nn_data_free(small);
}

/* Fused evaluation through interfaces answers as each model's own evaluation does: 4500 queries
 * are two chunks of the interface's noise (4096 and 404, each seeded by its first sample), so a
 * fused evaluation that drew them over other spans would answer the last 404 otherwise. Four
 * LeNets with input noise, output noise, blur with top-3 and none fuse into one network; every
 * probability is within 1e-5 of one-by-one evaluation (log-probabilities of noisy answers near
 * zero are not compared: rounding moves them far) and each accuracy within 2 of 4500. */
static void test_eval_many_interfaces(void **state) {
    (void)state;
    enum { N = 4500, M = 4 };
    nn_data *d = noise_data(N, 1, 28, 28, 10);
    nn_model *m[M];
    const nn_interface q[M] = {{.input = NN_IN_NOISE, .in_param = 0.5, .seed = 11},
                               {.output = NN_OUT_NOISE, .out_param = 0.05, .seed = 12},
                               {.input = NN_IN_BLUR, .in_param = 1, .output = NN_OUT_TOPK, .out_param = 3},
                               {0}};
    const nn_data *md[M];
    float *lp[M], *one[M];
    double acc[M];
    for (int i = 0; i < M; i++) {
        m[i] = make_model("lenet", 1, 28, 28, 10, 0, 20 + i);
        assert_int_equal(nn_set_interface(m[i], &q[i]), NN_OK);
        md[i] = d;
        lp[i] = malloc(sizeof(float) * N * 10);
        one[i] = eval_logp(m[i], d, 10);
    }
    setenv("PMI_EVAL_FUSE", "1", 1);
    assert_int_equal(nn_eval_many(m, md, M, lp, acc), NN_OK);
    unsetenv("PMI_EVAL_FUSE");
    assert_int_equal(nn_eval_fused_models(), M);
    for (int i = 0; i < M; i++) {
        double want, worst = 0;
        int64_t at = -1;
        assert_int_equal(nn_accuracy(m[i], d, &want), NN_OK);
        for (int64_t r = 0; r < (int64_t)N * 10; r++) {
            double e = fabs(exp(lp[i][r]) - exp(one[i][r]));
            if (e > worst) { worst = e; at = r / 10; }
        }
        if (worst > 1e-5 || fabs(acc[i] - want) > 2.0 / N)
            fail_msg("model %d: fused probabilities differ by %g (sample %lld), accuracy %g against %g", i, worst,
                     (long long)at, acc[i], want);
        free(lp[i]); free(one[i]); nn_model_free(m[i]);
    }
    nn_data_free(d);
}

int main(void) {
    nn_set_threads(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_archs_forward),
        cmocka_unit_test(test_bad_arch),
        cmocka_unit_test(test_cuda_absent),
        cmocka_unit_test(test_name_tables),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_train_fits),
        cmocka_unit_test(test_train_callback_and_checks),
        cmocka_unit_test(test_train_batchnorm_singleton_batch),
        cmocka_unit_test(test_train_last),
        cmocka_unit_test(test_prune),
        cmocka_unit_test(test_quantize),
        cmocka_unit_test(test_add_noise),
        cmocka_unit_test(test_reinit_last),
        cmocka_unit_test(test_distill),
        cmocka_unit_test(test_distill_teacher_once),
        cmocka_unit_test(test_foreach_sgd_is_libtorch_sgd),
        cmocka_unit_test(test_model_copy),
        cmocka_unit_test(test_pool_matches_max_pool2d),
        cmocka_unit_test(test_data_and_params),
        cmocka_unit_test(test_data_adopt),
        cmocka_unit_test(test_eval_many),
        cmocka_unit_test(test_eval_many_interfaces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
