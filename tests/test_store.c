/* test_store: round trip of the HDF5 results schema (docs/results-schema.md).
 *
 * A job with two evaluations and every score kind is written as a shard, then every
 * attribute, dataset and summary row is read back through the HDF5 C API (not through
 * store.c) and compared with what was written; Debian's h5py and pandas read the same file
 * as an independent reader. Merge, version refusal and failed writes are tested on files in
 * tu_tmpdir(). */
#include "testutil.h"

#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <sys/stat.h>

#include "store.h"

#define TN 4
#define TM 3
#define NKIND 6
#define NEVAL 2

static const char *const kind_name[NKIND] = {"loss", "conf", "correct", "entropy", "mentropy", "logit"};
static const char *const pv_name[4] = {"rank", "perm", "welch", "mw"};
static const int eval_kinds[NEVAL][NKIND] = {{0, 1, 2, 3, 4, 5}, {5, 3, 1, 0, 2, 4}};
/* The decision settings of make_prov(): decision kind conf first, the others after. */
static const int settings_kinds[NKIND] = {1, 0, 2, 3, 4, 5};

/* Everything one in-memory job points to; b offsets every value so two jobs differ. */
typedef struct {
    store_job job;
    store_eval evals[NEVAL];
    data_split split;
    int64_t train[5], pool[TN * TM], attacker[2], test[4];
    double loss[3];
    double scores[NEVAL][NKIND * TN * TM], mean[NEVAL][NKIND * TN], median[NEVAL][NKIND * TN];
    weights model;                 /* saved with evals[1] */
    weights_tensor t[2];
    float w0[6];
    int64_t nbt;
    double b;
} fixture;

static double score_v(double b, int e, int q, int i, int j) { return b + e * 1000 + q * 100 + i * 10 + j + 0.125; }
static double mean_v(double b, int e, int q, int i) { return b + e * 1000 + q * 100 + i + 0.5; }
static double median_v(double b, int e, int q, int i) { return b + e * 1000 + q * 100 + i + 0.75; }
static double p_v(double b, int e, int q, int p) { return 1e-3 * (1 + p) + e * 0.1 + q * 0.01 + b * 1e-6; }
static double pn_v(double b, int e, int q, int p) { return 2 * p_v(b, e, q, p); }
static double margin_v(double b, int e, int q) { return 0.01 * (e * 10 + q) + b; }
static double z_v(double b, int e, int q) { return 1.5 + 0.1 * (e * 10 + q) + b; }

static void fill_result(pmi_result *r, double b, int e, int q) {
    r->N = TN; r->m = TM; r->k = 2;
    r->identified = (e + q) % TN;
    r->identified_median = (e + q + 1) % TN;
    r->margin = margin_v(b, e, q);
    r->z_perm = z_v(b, e, q);
    for (int p = 0; p < 4; p++) {
        r->p[p] = p_v(b, e, q, p);
        r->p_nway[p] = pn_v(b, e, q, p);
        r->nway_index[p] = (p + q) % TN;
    }
}

static void fill_eval(fixture *x, int e) {
    store_eval *ev = &x->evals[e];
    snprintf(ev->attack, sizeof ev->attack, "%s", e ? "prune-global" : "none");
    snprintf(ev->type, sizeof ev->type, "%s", e ? "prune" : "none");
    snprintf(ev->params, sizeof ev->params, "%s", e ? "sparsity=0.5,global=1" : "");
    snprintf(ev->strength_key, sizeof ev->strength_key, "%s", e ? "sparsity" : "");
    ev->strength = e ? 0.5 : NAN;
    ev->test_acc = e ? 0.875 : 0.9125;
    ev->sparsity = e ? 0.5 : 0.0;
    ev->wall_s = 1.5 + e;
    ev->n_kinds = NKIND;
    for (int q = 0; q < NKIND; q++) {
        int k = eval_kinds[e][q];
        ev->kinds[q] = k;
        for (int i = 0; i < TN; i++) {
            for (int j = 0; j < TM; j++) x->scores[e][(q * TN + i) * TM + j] = score_v(x->b, e, k, i, j);
            x->mean[e][q * TN + i] = mean_v(x->b, e, k, i);
            x->median[e][q * TN + i] = median_v(x->b, e, k, i);
        }
        fill_result(&ev->res[q], x->b, e, k);
    }
    ev->sample_scores = x->scores[e]; ev->pool_mean = x->mean[e]; ev->pool_median = x->median[e];
}

static void fill_fixture(fixture *x, const char *id, double b) {
    memset(x, 0, sizeof *x);
    x->b = b;
    store_job *j = &x->job;
    snprintf(j->id, sizeof j->id, "%s", id);
    snprintf(j->experiment, sizeof j->experiment, "exp-test");
    snprintf(j->dataset, sizeof j->dataset, "synthetic");
    snprintf(j->arch, sizeof j->arch, "mlp");
    snprintf(j->role, sizeof j->role, "owner");
    snprintf(j->point, sizeof j->point, "pmi.m=3");
    j->point_index = 2; j->seed = 7 + (int)b; j->replica = 1; j->N = TN; j->m = TM; j->secret_k = 2;
    j->trained_on_k = 1;
    j->independent = (int)b % 2;   /* the store records the flag as given, whatever the role */
    j->train_acc = 0.99; j->test_acc = 0.9125; j->wall_s = 12.25 + b;
    for (int i = 0; i < 5; i++) x->train[i] = 100 + i;
    for (int i = 0; i < TN * TM; i++) x->pool[i] = 200 + i + (int64_t)b;
    x->attacker[0] = 300; x->attacker[1] = 301;
    for (int i = 0; i < 4; i++) x->test[i] = 40 - i;
    x->split = (data_split){.train = x->train, .n_train = 5, .pool = x->pool, .N = TN, .m = TM,
                            .attacker = x->attacker, .n_attacker = 2, .indep = NULL, .n_indep = 0,
                            .test = x->test, .n_test = 4, .secret = 2};
    j->split = &x->split;
    x->loss[0] = 2.25; x->loss[1] = 1.125; x->loss[2] = 0.5 + b;
    j->loss_curve = x->loss; j->epochs = 3; j->train_samples = 1234;
    for (int e = 0; e < NEVAL; e++) fill_eval(x, e);
    j->evals = x->evals; j->n_evals = NEVAL;
    for (int i = 0; i < 6; i++) x->w0[i] = 0.25f * (float)i - 1.0f;
    x->nbt = 12345678901LL;
    x->t[0] = (weights_tensor){.name = "fc1.weight", .dtype = NN_F32, .ndim = 2, .shape = {2, 3}, .numel = 6, .data = x->w0};
    x->t[1] = (weights_tensor){.name = "bn.num_batches_tracked", .dtype = NN_I64, .ndim = 0, .numel = 1, .data = &x->nbt};
    x->model = (weights){.arch = "mlp", .width = 8, .t = x->t, .n = 2,
                         .input = {.dataset = "synthetic", .normalize = "standard", .mean = {0.25}, .sd = {0.5},
                                   .c = 1, .h = 2, .w = 3, .classes = 4}};
    x->evals[1].model = &x->model;
}

/* A config text of several KB, so it cannot be mistaken for a short attribute. */
static char *make_config(const char *tag) {
    size_t cap = 8192, n = 0;
    char *s = malloc(cap);
    n += (size_t)snprintf(s + n, cap - n, "# effective config %s\n[experiment]\nname = exp-test\n", tag);
    for (int i = 0; n + 64 < cap && i < 200; i++) n += (size_t)snprintf(s + n, cap - n, "key_%03d = value %d\n", i, i * i);
    return s;
}

static store_provenance make_prov(const char *config) {
    store_provenance p = {.config = config};
    snprintf(p.pmi_version, sizeof p.pmi_version, "0.1.0");
    snprintf(p.git_commit, sizeof p.git_commit, "abcdef123456");
    snprintf(p.torch_version, sizeof p.torch_version, "1.13.0");
    snprintf(p.device, sizeof p.device, "cpu (2 threads)");
    snprintf(p.started, sizeof p.started, "2024-01-02T03:04:05Z");
    snprintf(p.finished, sizeof p.finished, "2024-01-02T03:05:06Z");
    snprintf(p.settings.decide, sizeof p.settings.decide, "welch");
    p.settings.alphas[0] = 0.01; p.settings.alphas[1] = 0.05; p.settings.alphas[2] = 0.125;
    p.settings.n_alphas = 3;
    p.settings.permutations = 999;
    p.settings.n_kinds = NKIND;
    memcpy(p.settings.kinds, settings_kinds, sizeof settings_kinds);
    return p;
}

static void path_in(char *out, size_t len, const char *name) { snprintf(out, len, "%s/%s", tu_tmpdir(), name); }

/* ---- HDF5 C API readers used for the comparisons ------------------------------------ */

static long long attr_i(hid_t f, const char *obj, const char *name) {
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    hid_t t = H5Aget_type(a);
    assert_int_equal(H5Tget_class(t), H5T_INTEGER);
    long long v = 0;
    assert_true(H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0);
    H5Tclose(t); H5Aclose(a);
    return v;
}

static double attr_d(hid_t f, const char *obj, const char *name) {
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    hid_t t = H5Aget_type(a);
    assert_int_equal(H5Tget_class(t), H5T_FLOAT);
    double v = 0;
    assert_true(H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
    H5Tclose(t); H5Aclose(a);
    return v;
}

static void attr_s(hid_t f, const char *obj, const char *name, const char *want) {
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    hid_t t = H5Aget_type(a);
    assert_true(H5Tis_variable_str(t) > 0);
    char *v = NULL;
    assert_true(H5Aread(a, t, &v) >= 0);
    assert_string_equal(v, want);
    H5free_memory(v); H5Tclose(t); H5Aclose(a);
}

static int n_attrs(hid_t f, const char *obj) {
    H5O_info_t info;
    assert_true(H5Oget_info_by_name2(f, obj, &info, H5O_INFO_NUM_ATTRS, H5P_DEFAULT) >= 0);
    return (int)info.num_attrs;
}

/* Dataset at path has the given shape and, read as memtype, the bytes of want. */
static void dset_eq(hid_t f, const char *path, hid_t memtype, int rank, const hsize_t *dims, const void *want, size_t elem) {
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t sp = H5Dget_space(d);
    hsize_t got[2] = {0, 0}, n = 1;
    assert_int_equal(H5Sget_simple_extent_ndims(sp), rank);
    H5Sget_simple_extent_dims(sp, got, NULL);
    for (int i = 0; i < rank; i++) { assert_int_equal(got[i], dims[i]); n *= dims[i]; }
    if (n > 0) {
        void *buf = calloc((size_t)n, elem);
        assert_true(H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
        assert_memory_equal(buf, want, (size_t)n * elem);
        free(buf);
    }
    H5Sclose(sp); H5Dclose(d);
}

static void check_kind(hid_t f, const char *ew, const fixture *x, int e, int k) {
    char g[256];
    snprintf(g, sizeof g, "%s/%s", ew, kind_name[k]);
    assert_int_equal(n_attrs(f, g), 4 + 3 * 4);
    assert_int_equal(attr_i(f, g, "identified"), (e + k) % TN);
    assert_int_equal(attr_i(f, g, "identified_median"), (e + k + 1) % TN);
    assert_true(attr_d(f, g, "margin") == margin_v(x->b, e, k));
    assert_true(attr_d(f, g, "z_perm") == z_v(x->b, e, k));
    for (int p = 0; p < 4; p++) {
        char a[32];
        snprintf(a, sizeof a, "p_%s", pv_name[p]);
        assert_true(attr_d(f, g, a) == p_v(x->b, e, k, p));
        snprintf(a, sizeof a, "p_nway_%s", pv_name[p]);
        assert_true(attr_d(f, g, a) == pn_v(x->b, e, k, p));
        snprintf(a, sizeof a, "nway_index_%s", pv_name[p]);
        assert_int_equal(attr_i(f, g, a), (p + k) % TN);
    }
    double s[TN * TM], mn[TN], md[TN];
    for (int i = 0; i < TN; i++) {
        for (int j = 0; j < TM; j++) s[i * TM + j] = score_v(x->b, e, k, i, j);
        mn[i] = mean_v(x->b, e, k, i); md[i] = median_v(x->b, e, k, i);
    }
    hsize_t d2[2] = {TN, TM}, d1 = TN;
    char p[300];
    snprintf(p, sizeof p, "%s/sample_scores", g); dset_eq(f, p, H5T_NATIVE_DOUBLE, 2, d2, s, sizeof(double));
    snprintf(p, sizeof p, "%s/pool_mean", g); dset_eq(f, p, H5T_NATIVE_DOUBLE, 1, &d1, mn, sizeof(double));
    snprintf(p, sizeof p, "%s/pool_median", g); dset_eq(f, p, H5T_NATIVE_DOUBLE, 1, &d1, md, sizeof(double));
}

static void check_eval(hid_t f, const char *jw, const fixture *x, int e) {
    char ew[200];
    snprintf(ew, sizeof ew, "%s/evals/%d", jw, e);
    const store_eval *ev = &x->evals[e];
    assert_int_equal(n_attrs(f, ew), 8);
    attr_s(f, ew, "attack", ev->attack);
    attr_s(f, ew, "type", ev->type);
    attr_s(f, ew, "params", ev->params);
    attr_s(f, ew, "strength_key", e ? "sparsity" : "");
    double st = attr_d(f, ew, "strength");
    assert_true(e ? st == 0.5 : isnan(st));
    assert_true(attr_d(f, ew, "test_accuracy") == ev->test_acc);
    assert_true(attr_d(f, ew, "sparsity") == ev->sparsity);
    assert_true(attr_d(f, ew, "wall_s") == ev->wall_s);
    H5G_info_t gi;
    assert_true(H5Gget_info_by_name(f, ew, &gi, H5P_DEFAULT) >= 0);
    assert_int_equal(gi.nlinks, NKIND + (ev->model != NULL));   /* the kinds and the model, when saved */
    for (int k = 0; k < NKIND; k++) check_kind(f, ew, x, e, k);
}

static void check_job(hid_t f, const fixture *x) {
    const store_job *j = &x->job;
    char jw[160], p[200];
    snprintf(jw, sizeof jw, "/jobs/%s", j->id);
    assert_int_equal(n_attrs(f, jw), 19);   /* owner_data since the dataset evidence */
    attr_s(f, jw, "experiment", "exp-test"); attr_s(f, jw, "dataset", "synthetic");
    attr_s(f, jw, "arch", "mlp"); attr_s(f, jw, "role", "owner"); attr_s(f, jw, "point", "pmi.m=3");
    assert_int_equal(attr_i(f, jw, "point_index"), 2);
    assert_int_equal(attr_i(f, jw, "seed"), j->seed);
    assert_int_equal(attr_i(f, jw, "replica"), 1);
    assert_int_equal(attr_i(f, jw, "N"), TN);
    assert_int_equal(attr_i(f, jw, "m"), TM);
    assert_int_equal(attr_i(f, jw, "secret_k"), 2);
    assert_int_equal(attr_i(f, jw, "trained_on_k"), 1);
    assert_int_equal(attr_i(f, jw, "independent"), j->independent);
    assert_int_equal(attr_i(f, jw, "epochs"), 3);
    assert_int_equal(attr_i(f, jw, "train_samples"), 1234);
    assert_true(attr_d(f, jw, "train_accuracy") == 0.99);
    assert_true(attr_d(f, jw, "test_accuracy") == 0.9125);
    assert_true(attr_d(f, jw, "wall_s") == j->wall_s);
    hsize_t n5 = 5, n2 = 2, n0 = 0, n4 = 4, pool[2] = {TN, TM}, ep = 3;
    snprintf(p, sizeof p, "%s/split/train", jw); dset_eq(f, p, H5T_NATIVE_INT64, 1, &n5, x->train, 8);
    snprintf(p, sizeof p, "%s/split/pool", jw); dset_eq(f, p, H5T_NATIVE_INT64, 2, pool, x->pool, 8);
    snprintf(p, sizeof p, "%s/split/attacker", jw); dset_eq(f, p, H5T_NATIVE_INT64, 1, &n2, x->attacker, 8);
    snprintf(p, sizeof p, "%s/split/indep", jw); dset_eq(f, p, H5T_NATIVE_INT64, 1, &n0, NULL, 8);
    snprintf(p, sizeof p, "%s/split/test", jw); dset_eq(f, p, H5T_NATIVE_INT64, 1, &n4, x->test, 8);
    snprintf(p, sizeof p, "%s/loss_curve", jw); dset_eq(f, p, H5T_NATIVE_DOUBLE, 1, &ep, x->loss, 8);
    hsize_t w0[2] = {2, 3};
    snprintf(p, sizeof p, "%s/evals/1/model/fc1.weight", jw); dset_eq(f, p, H5T_NATIVE_FLOAT, 2, w0, x->w0, 4);
    snprintf(p, sizeof p, "%s/evals/0/model", jw);
    assert_int_equal(H5Lexists(f, p, H5P_DEFAULT), 0);   /* only the evaluation that has one */
    for (int e = 0; e < NEVAL; e++) check_eval(f, jw, x, e);
}

/* The root attributes decide, alphas, permutations and score_kinds equal s. */
static void check_settings_attrs(hid_t f, const store_settings *s) {
    attr_s(f, "/", "decide", s->decide);
    assert_int_equal(attr_i(f, "/", "permutations"), s->permutations);
    hid_t a = H5Aopen(f, "alphas", H5P_DEFAULT);
    assert_true(a >= 0);
    hid_t sp = H5Aget_space(a), t = H5Aget_type(a);
    assert_int_equal(H5Tget_class(t), H5T_FLOAT);
    assert_int_equal(H5Sget_simple_extent_npoints(sp), s->n_alphas);
    double al[CFG_MAX_ALPHAS];
    assert_true(H5Aread(a, H5T_NATIVE_DOUBLE, al) >= 0);
    for (int i = 0; i < s->n_alphas; i++) assert_true(al[i] == s->alphas[i]);
    H5Tclose(t); H5Sclose(sp); H5Aclose(a);
    a = H5Aopen(f, "score_kinds", H5P_DEFAULT);
    assert_true(a >= 0);
    sp = H5Aget_space(a); t = H5Aget_type(a);
    assert_true(H5Tis_variable_str(t) > 0);
    assert_int_equal(H5Sget_simple_extent_npoints(sp), s->n_kinds);
    char *names[NKIND] = {0};
    assert_true(H5Aread(a, t, names) >= 0);
    for (int i = 0; i < s->n_kinds; i++) { assert_string_equal(names[i], kind_name[s->kinds[i]]); H5free_memory(names[i]); }
    H5Tclose(t); H5Sclose(sp); H5Aclose(a);
}

static void check_root(hid_t f, const store_provenance *p, const char *config) {
    assert_int_equal(n_attrs(f, "/"), 12);
    check_settings_attrs(f, &p->settings);
    assert_int_equal(attr_i(f, "/", "schema_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(attr_i(f, "/", "complete"), 1);
    attr_s(f, "/", "pmi_version", p->pmi_version); attr_s(f, "/", "git_commit", p->git_commit);
    attr_s(f, "/", "torch_version", p->torch_version); attr_s(f, "/", "device", p->device);
    attr_s(f, "/", "started", p->started); attr_s(f, "/", "finished", p->finished);
    hid_t d = H5Dopen2(f, "config", H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t t = H5Dget_type(d);
    char *v = NULL;
    assert_true(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0);
    assert_string_equal(v, config);
    H5free_memory(v); H5Tclose(t); H5Dclose(d);
}

/* The file's /summary type: the documented columns, fixed NUL-terminated strings of the
 * struct's sizes, 32-bit integers and doubles. */
static void check_summary_type(hid_t f) {
    static const struct { const char *name; H5T_class_t cls; size_t size; } col[] = {
        {"job_id", H5T_STRING, 128}, {"experiment", H5T_STRING, 64}, {"dataset", H5T_STRING, 64},
        {"arch", H5T_STRING, 64}, {"role", H5T_STRING, 64}, {"point", H5T_STRING, 256},
        {"seed", H5T_INTEGER, 4}, {"replica", H5T_INTEGER, 4}, {"N", H5T_INTEGER, 4}, {"m", H5T_INTEGER, 4},
        {"secret_k", H5T_INTEGER, 4}, {"trained_on_k", H5T_INTEGER, 4}, {"independent", H5T_INTEGER, 4},
        {"attack", H5T_STRING, 64}, {"attack_type", H5T_STRING, 64}, {"params", H5T_STRING, 256},
        {"strength_key", H5T_STRING, 32}, {"strength", H5T_FLOAT, 8},
        {"test_acc", H5T_FLOAT, 8}, {"sparsity", H5T_FLOAT, 8}, {"score", H5T_STRING, 16},
        {"identified", H5T_INTEGER, 4}, {"margin", H5T_FLOAT, 8}, {"p_rank", H5T_FLOAT, 8},
        {"p_perm", H5T_FLOAT, 8}, {"p_welch", H5T_FLOAT, 8}, {"p_mw", H5T_FLOAT, 8},
        {"p_nway_rank", H5T_FLOAT, 8}, {"p_nway_perm", H5T_FLOAT, 8}, {"p_nway_welch", H5T_FLOAT, 8},
        {"p_nway_mw", H5T_FLOAT, 8}, {"z_perm", H5T_FLOAT, 8}, {"data_p", H5T_FLOAT, 8}, {"data_z", H5T_FLOAT, 8},
        {"data_gap", H5T_FLOAT, 8}, {"pool_audit_p", H5T_FLOAT, 8}, {"p_pool", H5T_FLOAT, 8}, {"p_combined", H5T_FLOAT, 8},
        {"owner_data", H5T_INTEGER, 4},
    };
    hid_t d = H5Dopen2(f, "summary", H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    int n = (int)(sizeof col / sizeof col[0]);
    assert_int_equal(H5Tget_nmembers(t), n);
    for (int i = 0; i < n; i++) {
        char *name = H5Tget_member_name(t, (unsigned)i);
        hid_t mt = H5Tget_member_type(t, (unsigned)i);
        assert_string_equal(name, col[i].name);
        assert_int_equal(H5Tget_class(mt), col[i].cls);
        assert_int_equal(H5Tget_size(mt), col[i].size);
        if (col[i].cls == H5T_STRING) {
            assert_int_equal(H5Tis_variable_str(mt), 0);
            assert_int_equal(H5Tget_strpad(mt), H5T_STR_NULLTERM);
        }
        H5free_memory(name); H5Tclose(mt);
    }
    H5Tclose(t); H5Dclose(d);
}

/* The summary rows of one fixture, in eval order, each eval's kinds in their written order. */
static void check_rows(const store_row *r, const fixture *x) {
    for (int e = 0; e < NEVAL; e++) {
        for (int q = 0; q < NKIND; q++, r++) {
            int k = eval_kinds[e][q];
            const store_eval *ev = &x->evals[e];
            assert_string_equal(r->job_id, x->job.id);
            assert_string_equal(r->experiment, "exp-test"); assert_string_equal(r->dataset, "synthetic");
            assert_string_equal(r->arch, "mlp"); assert_string_equal(r->role, "owner");
            assert_string_equal(r->point, "pmi.m=3");
            assert_int_equal(r->seed, x->job.seed); assert_int_equal(r->replica, 1);
            assert_int_equal(r->N, TN); assert_int_equal(r->m, TM);
            assert_int_equal(r->secret_k, 2); assert_int_equal(r->trained_on_k, 1);
            assert_int_equal(r->independent, x->job.independent);
            assert_string_equal(r->attack, ev->attack); assert_string_equal(r->attack_type, ev->type);
            assert_string_equal(r->params, ev->params);
            assert_string_equal(r->strength_key, e ? "sparsity" : "");
            assert_true(e ? r->strength == 0.5 : isnan(r->strength));
            assert_true(r->test_acc == ev->test_acc); assert_true(r->sparsity == ev->sparsity);
            assert_string_equal(r->score, kind_name[k]);
            assert_int_equal(r->identified, (e + k) % TN);
            assert_true(r->margin == margin_v(x->b, e, k));
            assert_true(r->z_perm == z_v(x->b, e, k));
            const double p[8] = {r->p_rank, r->p_perm, r->p_welch, r->p_mw,
                                 r->p_nway_rank, r->p_nway_perm, r->p_nway_welch, r->p_nway_mw};
            for (int i = 0; i < 4; i++) {
                assert_true(p[i] == p_v(x->b, e, k, i));
                assert_true(p[4 + i] == pn_v(x->b, e, k, i));
            }
        }
    }
}

static void assert_settings_equal(const store_settings *a, const store_settings *b) {
    assert_string_equal(a->decide, b->decide);
    assert_int_equal(a->n_alphas, b->n_alphas);
    for (int i = 0; i < a->n_alphas; i++) assert_true(a->alphas[i] == b->alphas[i]);
    assert_int_equal(a->permutations, b->permutations);
    assert_int_equal(a->n_kinds, b->n_kinds);
    for (int i = 0; i < a->n_kinds; i++) assert_int_equal(a->kinds[i], b->kinds[i]);
}

/* ---- tests ------------------------------------------------------------------------ */

static void write_fixture(const char *path, const char *id, double b, const char *config) {
    fixture *x = malloc(sizeof *x);
    fill_fixture(x, id, b);
    store_provenance p = make_prov(config);
    char err[512] = "";
    assert_int_equal(store_write_shard(path, &x->job, &p, err, sizeof err), 0);
    assert_string_equal(err, "");
    free(x);
}

/* A version-2 file written before z_perm existed (its /summary rebuilt without the column by
 * h5py) still reads: every row's z_perm is NaN, the other columns as written. */
static void test_summary_without_z_perm(void **state) {
    static const char *script =
        "import sys, h5py, numpy as np\n"
        "f = h5py.File(sys.argv[1], 'r+'); s = f['summary'][:]\n"
        "names = [n for n in s.dtype.names if n != 'z_perm']\n"
        "new = np.empty(len(s), dtype=[(n, s.dtype[n]) for n in names])\n"
        "for n in names: new[n] = s[n]\n"
        "del f['summary']; f.create_dataset('summary', data=new, maxshape=(None,), chunks=True)\n";
    char path[300], args[320], err[512] = "";
    path_in(path, sizeof path, "job-old.h5");
    char *config = make_config("old");
    write_fixture(path, "job-old", 0, config);
    free(config);
    store_row *before = NULL, *after = NULL;
    int64_t n = 0, m = 0;
    assert_int_equal(store_read_summary(path, &before, &n, err, sizeof err), 0);
    snprintf(args, sizeof args, "'%s'", path);
    assert_int_equal(tu_python(script, args, NULL, 0), 0);
    if (store_read_summary(path, &after, &m, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(m, n);
    for (int64_t i = 0; i < n; i++) {
        assert_true(isfinite(before[i].z_perm) && isnan(after[i].z_perm));
        assert_true(after[i].p_perm == before[i].p_perm);
        assert_string_equal(after[i].job_id, before[i].job_id);
    }
    free(before); free(after);
}

/* Every attribute, dataset and summary row of a shard reads back as written. */
/* store_read_model gives back the saved state with shapes, dtypes and input; an evaluation
 * without a model, or an unknown one, is an error that says so. */
static void check_model_read(const char *path, const fixture *x) {
    weights w;
    char err[512];
    assert_int_equal(store_read_model(path, "job-a", 1, &w, err, sizeof err), 0);
    assert_string_equal(w.arch, "mlp");
    assert_int_equal(w.width, 8);
    assert_string_equal(w.input.normalize, "standard");
    assert_string_equal(w.input.dataset, "synthetic");
    assert_true(w.input.mean[0] == 0.25 && w.input.sd[0] == 0.5);
    assert_int_equal(w.input.c * 100 + w.input.h * 10 + w.input.w, 123);
    assert_int_equal(w.input.classes, 4);
    assert_int_equal(w.n, 2);                       /* in name order */
    assert_string_equal(w.t[0].name, "bn.num_batches_tracked");
    assert_int_equal(w.t[0].dtype, NN_I64);
    assert_int_equal(w.t[0].ndim, 0);
    assert_true(*(int64_t *)w.t[0].data == 12345678901LL);
    assert_string_equal(w.t[1].name, "fc1.weight");
    assert_int_equal(w.t[1].dtype, NN_F32);
    assert_int_equal(w.t[1].ndim, 2);
    assert_true(w.t[1].shape[0] == 2 && w.t[1].shape[1] == 3);
    assert_memory_equal(w.t[1].data, x->w0, sizeof x->w0);
    weights_free(&w);
    assert_int_equal(store_read_model(path, "job-a", 0, &w, err, sizeof err), -1);
    assert_non_null(strstr(err, "save_models"));
    assert_int_equal(store_read_model(path, "job-a", 7, &w, err, sizeof err), -1);
    assert_non_null(strstr(err, "no evaluation /jobs/job-a/evals/7"));
}

static void test_shard_round_trip(void **state) {
    char path[300], err[512] = "";
    path_in(path, sizeof path, "job-a.h5");
    char *config = make_config("A");
    assert_true(strlen(config) > 4000);
    fixture *x = malloc(sizeof *x);
    fill_fixture(x, "job-a", 0);
    store_provenance p = make_prov(config);
    assert_int_equal(store_write_shard(path, &x->job, &p, err, sizeof err), 0);
    assert_int_equal(store_shard_complete(path), 1);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    check_root(f, &p, config);
    check_job(f, x);
    check_summary_type(f);
    H5Fclose(f);
    store_row *rows = NULL;
    int64_t n = 0;
    assert_int_equal(store_read_summary(path, &rows, &n, err, sizeof err), 0);
    assert_int_equal(n, NEVAL * NKIND);
    check_rows(rows, x);
    free(rows);
    char *dev = store_read_attr(path, "device"), *cfg = store_read_attr(path, "config");
    assert_string_equal(dev, p.device);
    assert_string_equal(cfg, config);
    assert_null(store_read_attr(path, "schema_version"));
    assert_null(store_read_attr(path, "no-such-attribute"));
    store_settings st;
    assert_int_equal(store_read_settings(path, &st, err, sizeof err), 0);
    assert_settings_equal(&st, &p.settings);
    check_model_read(path, x);
    free(dev); free(cfg); free(config); free(x);
}

/* h5py and pandas, readers we did not write, see the same values. */
static void test_h5py_reads_shard(void **state) {
    static const char *script =
        "import sys, h5py, pandas\n"
        "f = h5py.File(sys.argv[1], 'r')\n"
        "j = f['jobs/job-a']\n"
        "print('secret_k=%d' % j.attrs['secret_k'])\n"
        "print('role=%s' % j.attrs['role'])\n"
        "print('p_perm=%r' % float(j['evals/1/mentropy'].attrs['p_perm']))\n"
        "print('independent=%d' % j.attrs['independent'])\n"
        "print('strength_key=%s' % j['evals/1'].attrs['strength_key'])\n"
        "print('decide=%s' % f.attrs['decide'])\n"
        "print('alphas=%s' % ','.join(repr(float(a)) for a in f.attrs['alphas']))\n"
        "print('permutations=%d' % f.attrs['permutations'])\n"
        "print('score_kinds=%s' % ','.join(f.attrs['score_kinds']))\n"
        "print('score=%r' % float(j['evals/0/logit/sample_scores'][2, 1]))\n"
        "df = pandas.DataFrame(f['summary'][:])\n"
        "print('shape=%d,%d' % df.shape)\n"
        "print('scores=%s' % ','.join(s.decode() for s in df['score']))\n"
        "print('p_welch7=%r' % float(df['p_welch'][7]))\n"
        "print('row7=%d,%s' % (df['independent'][7], df['strength_key'][7].decode() or '-'))\n"
        "sys.stdout.write('config=' + f['config'].asstr()[()])\n";
    char path[300], out[16384];
    path_in(path, sizeof path, "job-a-py.h5");
    char *config = make_config("py");
    write_fixture(path, "job-a", 0, config);
    char args[320];
    snprintf(args, sizeof args, "'%s'", path);
    assert_int_equal(tu_python(script, args, out, sizeof out), 0);
    long secret = -1;
    char role[64] = "", scores[256] = "", skey[64] = "", decide[64] = "", alphas[128] = "", kinds[128] = "", row7[64] = "";
    double pperm = 0, score = 0, pw = 0;
    int rows = 0, cols = 0, indep = -1, perms = -1;
    char *cfg = strstr(out, "config=");
    assert_non_null(cfg);
    assert_int_equal(sscanf(out, "secret_k=%ld role=%63s p_perm=%lf independent=%d strength_key=%63s decide=%63s alphas=%127s "
                            "permutations=%d score_kinds=%127s score=%lf shape=%d,%d scores=%255s p_welch7=%lf row7=%63s",
                            &secret, role, &pperm, &indep, skey, decide, alphas, &perms, kinds, &score, &rows, &cols,
                            scores, &pw, row7), 15);
    assert_int_equal(indep, 0);
    assert_string_equal(skey, "sparsity");
    assert_string_equal(decide, "welch");
    assert_string_equal(alphas, "0.01,0.05,0.125");
    assert_int_equal(perms, 999);
    assert_string_equal(kinds, "conf,loss,correct,entropy,mentropy,logit");
    assert_string_equal(row7, "0,sparsity");
    assert_int_equal(secret, 2);
    assert_string_equal(role, "owner");
    assert_true(pperm == p_v(0, 1, 4, 1));
    assert_true(score == score_v(0, 0, 5, 2, 1));
    assert_int_equal(rows, NEVAL * NKIND);
    assert_int_equal(cols, 39);
    assert_string_equal(scores, "loss,conf,correct,entropy,mentropy,logit,logit,entropy,conf,loss,correct,mentropy");
    assert_true(pw == p_v(0, 1, eval_kinds[1][1], 2));
    assert_string_equal(cfg + strlen("config="), config);
    free(config);
}

/* Sets the root attribute complete of an existing file to v. */
static void set_complete(const char *path, int v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t a = H5Aopen(f, "complete", H5P_DEFAULT);
    assert_true(H5Awrite(a, H5T_NATIVE_INT, &v) >= 0);
    H5Aclose(a); H5Fclose(f);
}

/* A bare HDF5 file with, optionally, a schema_version attribute. */
static void write_bare(const char *path, int version) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    if (version >= 0) {
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(f, "schema_version", H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(H5Awrite(a, H5T_NATIVE_INT, &version) >= 0);
        int one = 1;
        hid_t c = H5Acreate2(f, "complete", H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(H5Awrite(c, H5T_NATIVE_INT, &one) >= 0);
        H5Aclose(c); H5Aclose(a); H5Sclose(sp);
    }
    H5Fclose(f);
}

/* Entries of dir whose names start with prefix ("" = all but "." and ".."). */
static int dir_entries(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d));)
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && !strncmp(de->d_name, prefix, strlen(prefix));
    closedir(d);
    return n;
}

/* Two complete shards are merged; a temporary file, a complete=0 shard and a file of another
 * schema version (1) are skipped; the first shard's config is kept when prov has none. */
static void test_merge(void **state) {
    char dir[300], a[340], b[340], t[340], d[340], v[340], out[340], err[512] = "";
    path_in(dir, sizeof dir, "merge");
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(a, sizeof a, "%s/job-a.h5", dir);
    snprintf(b, sizeof b, "%s/job-b.h5", dir);
    snprintf(t, sizeof t, "%s/job-c.h5.tmp-999", dir);
    snprintf(d, sizeof d, "%s/job-d.h5", dir);
    snprintf(v, sizeof v, "%s/job-e.h5", dir);
    path_in(out, sizeof out, "merged.h5");
    char *ca = make_config("A"), *cb = make_config("B");
    write_fixture(b, "job-b", 1, cb);
    write_fixture(a, "job-a", 0, ca);
    write_fixture(d, "job-d", 3, cb);
    set_complete(d, 0);
    assert_int_equal(store_shard_complete(d), 0);
    write_bare(t, -1);
    write_bare(v, 1);
    store_provenance p = make_prov(NULL);
    int merged = -1, skipped = -1;
    assert_int_equal(store_merge_ex(dir, out, &p, &merged, &skipped, err, sizeof err), 0);
    assert_int_equal(merged, 2);
    assert_int_equal(skipped, 3);
    assert_int_equal(store_shard_complete(out), 1);
    store_row *rows = NULL;
    int64_t n = 0;
    assert_int_equal(store_read_summary(out, &rows, &n, err, sizeof err), 0);
    assert_int_equal(n, 2 * NEVAL * NKIND);
    fixture *x = malloc(sizeof *x);
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    check_root(f, &p, ca);
    fill_fixture(x, "job-a", 0); check_rows(rows, x); check_job(f, x);
    fill_fixture(x, "job-b", 1); check_rows(rows + NEVAL * NKIND, x); check_job(f, x);
    H5G_info_t gi;
    assert_true(H5Gget_info_by_name(f, "/jobs", &gi, H5P_DEFAULT) >= 0);
    assert_int_equal(gi.nlinks, 2);
    H5Fclose(f);
    assert_int_equal(dir_entries(tu_tmpdir(), "merged.h5"), 1);
    free(rows); free(x); free(ca); free(cb);
}

/* Merge takes the decision settings from prov, or from the first shard when prov has none
 * (`pmi merge`); shards whose decide, alphas or score_kinds differ are refused. */
static void test_merge_settings(void **state) {
    char dir[300], a[340], b[340], out[340], err[512] = "";
    path_in(dir, sizeof dir, "merge-settings");
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(a, sizeof a, "%s/job-a.h5", dir);
    snprintf(b, sizeof b, "%s/job-b.h5", dir);
    path_in(out, sizeof out, "merged-settings.h5");
    write_fixture(a, "job-a", 0, "x=1\n");
    write_fixture(b, "job-b", 1, "x=1\n");
    store_provenance want = make_prov(NULL), p = make_prov(NULL);
    memset(&p.settings, 0, sizeof p.settings);
    assert_int_equal(store_merge(dir, out, &p, err, sizeof err), 0);
    store_settings got;
    assert_int_equal(store_read_settings(out, &got, err, sizeof err), 0);
    assert_settings_equal(&got, &want.settings);
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    check_settings_attrs(f, &want.settings);
    H5Fclose(f);
    /* a shard of other alphas makes the merge fail, naming it; out is left as it was */
    fixture *x = malloc(sizeof *x);
    fill_fixture(x, "job-c", 2);
    store_provenance other = make_prov("x=1\n");
    other.settings.alphas[2] = 0.1;
    char c[340];
    snprintf(c, sizeof c, "%s/job-c.h5", dir);
    assert_int_equal(store_write_shard(c, &x->job, &other, err, sizeof err), 0);
    assert_int_equal(store_merge(dir, out, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "job-c.h5"));
    assert_non_null(strstr(err, "decision settings"));
    assert_int_equal(store_read_settings(out, &got, err, sizeof err), 0);
    assert_true(got.alphas[2] == 0.125);
    free(x);
}

/* Settings are checked before a shard is written; a file written without them is readable
 * but store_read_settings() refuses it, naming the attribute. */
static void test_settings_checked(void **state) {
    char dir[300], path[340], err[512] = "";
    path_in(dir, sizeof dir, "settings");
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/job-s.h5", dir);
    fixture *x = malloc(sizeof *x);
    fill_fixture(x, "job-s", 0);
    store_provenance p = make_prov("c\n");
    snprintf(p.settings.decide, sizeof p.settings.decide, "fisher");
    assert_int_equal(store_write_shard(path, &x->job, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "fisher"));
    p = make_prov("c\n");
    p.settings.n_alphas = CFG_MAX_ALPHAS + 1;
    assert_int_equal(store_write_shard(path, &x->job, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "CFG_MAX_ALPHAS"));
    p = make_prov("c\n");
    p.settings.n_kinds = 2;                          /* the evaluations hold all six kinds */
    assert_int_equal(store_write_shard(path, &x->job, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "correct"));
    p = make_prov("c\n");
    p.settings.kinds[1] = p.settings.kinds[0];
    assert_int_equal(store_write_shard(path, &x->job, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(dir_entries(dir, ""), 0);
    memset(&p.settings, 0, sizeof p.settings);        /* not recorded: written, but unreadable as settings */
    assert_int_equal(store_write_shard(path, &x->job, &p, err, sizeof err), 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_int_equal(n_attrs(f, "/"), 8);
    H5Fclose(f);
    store_settings st;
    assert_int_equal(store_read_settings(path, &st, err, sizeof err), -1);
    assert_non_null(strstr(err, "job-s.h5"));
    assert_non_null(strstr(err, "decide"));
    free(x);
}

/* A job id in two shards makes the merge fail and leaves no output, not even a temporary. */
static void test_merge_duplicate_job_fails(void **state) {
    char dir[300], a[340], b[340], outdir[300], out[340], err[512] = "";
    path_in(dir, sizeof dir, "dup");
    path_in(outdir, sizeof outdir, "dup-out");
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(mkdir(outdir, 0755), 0);
    snprintf(a, sizeof a, "%s/1.h5", dir);
    snprintf(b, sizeof b, "%s/2.h5", dir);
    snprintf(out, sizeof out, "%s/results.h5", outdir);
    write_fixture(a, "job-a", 0, "x=1\n");
    write_fixture(b, "job-a", 0, "x=1\n");
    store_provenance p = make_prov("x=1\n");
    assert_int_equal(store_merge(dir, out, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "job-a"));
    assert_non_null(strstr(err, "2.h5"));
    assert_int_equal(dir_entries(outdir, ""), 0);
    path_in(dir, sizeof dir, "empty");
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(store_merge(dir, out, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "no complete shard"));
    assert_int_equal(dir_entries(outdir, ""), 0);
}

/* Files of another schema version (an older 1, a newer 3), without one, or not HDF5 at all are
 * refused; the message names both versions. */
static void test_version_refused(void **state) {
    char v1[300], v3[300], bare[300], junk[300], err[512] = "";
    path_in(v1, sizeof v1, "v1.h5");
    path_in(v3, sizeof v3, "v4.h5");
    path_in(bare, sizeof bare, "bare.h5");
    path_in(junk, sizeof junk, "junk.h5");
    write_bare(v1, 1);
    write_bare(v3, 4);
    assert_int_equal(STORE_SCHEMA_VERSION, 3);
    assert_int_equal(store_open(v1, err, sizeof err), -1);    /* a schema-1 file: both versions named */
    assert_non_null(strstr(err, "schema version 1, this pmi reads version 3"));
    assert_non_null(strstr(err, "1"));
    assert_non_null(strstr(err, "3"));
    assert_non_null(strstr(err, "v1.h5"));
    store_settings st;
    assert_int_equal(store_read_settings(v1, &st, err, sizeof err), -1);
    assert_non_null(strstr(err, "schema version 1, this pmi reads version 3"));
    store_eval_info *ev = NULL;
    int nev = -1;
    assert_int_equal(store_read_evals(v1, "job-a", &ev, &nev, err, sizeof err), -1);
    assert_non_null(strstr(err, "schema version 1, this pmi reads version 3"));
    assert_int_equal(store_shard_complete(v1), 0);
    write_bare(bare, -1);
    FILE *j = fopen(junk, "w");
    fputs("not an hdf5 file\n", j);
    fclose(j);
    assert_int_equal(store_open(v3, err, sizeof err), -1);
    assert_non_null(strstr(err, "schema version 4, this pmi reads version 3"));
    assert_non_null(strstr(err, "v4.h5"));
    assert_int_equal(store_open(bare, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a pmi results file (no schema_version attribute)"));
    assert_int_equal(store_open(junk, err, sizeof err), -1);
    assert_non_null(strstr(err, "junk.h5"));
    store_row *rows = (store_row *)1;
    int64_t n = 5;
    assert_int_equal(store_read_summary(v3, &rows, &n, err, sizeof err), -1);
    assert_null(rows);
    assert_int_equal(n, 0);
    assert_int_equal(store_shard_complete(v3), 0);
    assert_int_equal(store_shard_complete(bare), 0);
    assert_int_equal(store_shard_complete(junk), 0);
    assert_int_equal(store_shard_complete("/nonexistent/x.h5"), 0);
    char good[300];
    path_in(good, sizeof good, "good.h5");
    write_fixture(good, "job-g", 0, "");
    int64_t h = store_open(good, err, sizeof err);
    assert_true(h >= 0);
    store_close(h);
}

/* A failed write returns -1 with a message and leaves no file, temporary or final. */
static void test_failed_write_leaves_nothing(void **state) {
    char dir[300], path[340], err[512] = "";
    fixture *x = malloc(sizeof *x);
    fill_fixture(x, "job-f", 0);
    store_provenance p = make_prov("c\n");
    path_in(path, sizeof path, "no-such-dir/job-f.h5");
    assert_int_equal(store_write_shard(path, &x->job, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "no-such-dir"));
    assert_int_equal(access(path, F_OK), -1);
    path_in(dir, sizeof dir, "fail");
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/job-f.h5", dir);
    snprintf(x->t[1].name, sizeof x->t[1].name, "fc1.weight");   /* fails inside HDF5, mid-file */
    err[0] = 0;
    assert_int_equal(store_write_shard(path, &x->job, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "model/fc1.weight"));
    assert_int_equal(dir_entries(dir, ""), 0);
    snprintf(x->t[1].name, sizeof x->t[1].name, "bn.num_batches_tracked");
    x->evals[1].kinds[3] = x->evals[1].kinds[0];     /* refused before any file exists */
    assert_int_equal(store_write_shard(path, &x->job, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "repeated"));
    assert_int_equal(dir_entries(dir, ""), 0);
    assert_int_equal(store_shard_complete(path), 0);
    free(x);
}

/* A job without evaluations, split, curve or weights is a valid shard with an empty summary. */
static void test_empty_job(void **state) {
    char path[300], err[512] = "";
    path_in(path, sizeof path, "empty-job.h5");
    store_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.id, sizeof j.id, "bare");
    store_provenance p = make_prov(NULL);
    assert_int_equal(store_write_shard(path, &j, &p, err, sizeof err), 0);
    assert_int_equal(store_shard_complete(path), 1);
    store_row *rows = (store_row *)1;
    int64_t n = -1;
    assert_int_equal(store_read_summary(path, &rows, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    assert_null(rows);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_int_equal(H5Lexists(f, "/jobs/bare/split", H5P_DEFAULT), 0);
    assert_int_equal(H5Lexists(f, "/jobs/bare/weights", H5P_DEFAULT), 0);
    hsize_t zero = 0;
    dset_eq(f, "/jobs/bare/loss_curve", H5T_NATIVE_DOUBLE, 1, &zero, NULL, 8);
    H5Fclose(f);
    char *cfg = store_read_attr(path, "config");
    assert_string_equal(cfg, "");
    free(cfg);
}

/* A reference model's base scores (for owner keys) round-trip through a shard and a merge bit
 * for bit; a job without them, or a calibrated kind given as a base, is an error naming it. */
static void test_reference_scores(void **state) {
    char dir[300], a[340], b[340], out[340], err[512] = "";
    path_in(dir, sizeof dir, "refs");
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(a, sizeof a, "%s/ref-a.h5", dir);
    snprintf(b, sizeof b, "%s/job-b.h5", dir);
    path_in(out, sizeof out, "refs-merged.h5");
    char *config = make_config("A");
    store_provenance p = make_prov(config);
    fixture *x = malloc(sizeof *x);
    double loss[TN * TM], logit[TN * TM];
    for (int i = 0; i < TN * TM; i++) { loss[i] = -0.1 * i - 1e-17 * i; logit[i] = 3.0 / (i + 1); }
    fill_fixture(x, "ref-a", 0);
    x->job.ref_scores[SCORE_DIFF] = loss;
    assert_int_equal(store_write_shard(a, &x->job, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "reference scores of kind diff"));
    x->job.ref_scores[SCORE_DIFF] = NULL;
    x->job.ref_scores[SCORE_LOSS] = loss; x->job.ref_scores[SCORE_LOGIT] = logit;
    assert_int_equal(store_write_shard(a, &x->job, &p, err, sizeof err), 0);
    write_fixture(b, "job-b", 1, config);
    assert_int_equal(store_merge(dir, out, &p, err, sizeof err), 0);
    const char *files[2] = {a, out};
    for (int f = 0; f < 2; f++) {
        double *v = NULL;
        int N = 0, m = 0;
        assert_int_equal(store_read_ref_scores(files[f], "ref-a", "loss", &v, &N, &m, err, sizeof err), 0);
        assert_int_equal(N, TN); assert_int_equal(m, TM);
        assert_memory_equal(v, loss, sizeof loss);
        free(v);
        assert_int_equal(store_read_ref_scores(files[f], "ref-a", "logit", &v, &N, &m, err, sizeof err), 0);
        assert_memory_equal(v, logit, sizeof logit);
        free(v);
    }
    double *v = (double *)1;
    int N, m;
    assert_int_equal(store_read_ref_scores(out, "job-b", "loss", &v, &N, &m, err, sizeof err), -1);
    assert_null(v);
    assert_non_null(strstr(err, "no dataset /jobs/job-b/reference_scores/loss"));
    free(x); free(config);
}

int main(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shard_round_trip),
        cmocka_unit_test(test_h5py_reads_shard),
        cmocka_unit_test(test_summary_without_z_perm),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_merge_duplicate_job_fails),
        cmocka_unit_test(test_merge_settings),
        cmocka_unit_test(test_settings_checked),
        cmocka_unit_test(test_version_refused),
        cmocka_unit_test(test_failed_write_leaves_nothing),
        cmocka_unit_test(test_empty_job),
        cmocka_unit_test(test_reference_scores),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
