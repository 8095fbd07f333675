/* test_config: the config module: defaults, files, includes, -s overrides, sweeps, the
 * effective-text round trip, raw [attack.*] access, and every error path with its origin. */
#include "testutil.h"
#include <ctype.h>
#include "config.h"
#include "nn.h"
#include "pmi.h"
#include <sys/stat.h>

/* Writes text to <tmpdir>/<name> (creating sub-folders) and returns the path (static buffer
 * per call slot). */
static const char *write_ini(const char *name, const char *text) {
    static char paths[8][512];
    static int slot;
    char *path = paths[slot++ % 8];
    snprintf(path, 512, "%s/%s", tu_tmpdir(), name);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", path);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static cfg *load_ok(const char *path) {
    char err[1024] = "";
    cfg *c = cfg_create();
    assert_non_null(c);
    if (cfg_load(c, path, err, sizeof err) || cfg_validate(c, err, sizeof err)) fail_msg("%s", err);
    return c;
}

/* Loads (and validates) a file that must fail; the message must name each of `needles`. */
static void expect_error(const char *path, const char *const *needles) {
    char err[1024] = "";
    cfg *c = cfg_create();
    int rc = cfg_load(c, path, err, sizeof err);
    if (!rc) rc = cfg_validate(c, err, sizeof err);
    assert_int_equal(rc, -1);
    for (; *needles; needles++)
        if (!strstr(err, *needles)) fail_msg("'%s' not in error '%s'", *needles, err);
    cfg_free(c);
}

static void test_defaults(void **state) {
    cfg *c = cfg_create();
    pmi_params p;
    char err[512], label[64] = "x";
    assert_int_equal(cfg_validate(c, err, sizeof err), 0);
    assert_int_equal(cfg_sweep_count(c), 1);
    assert_int_equal(cfg_point(c, 0, &p, err, sizeof err), 0);
    assert_string_equal(p.name, "pmi");
    assert_int_equal(p.seeds, 3); assert_int_equal(p.seed, 1);
    assert_int_equal(p.device, NN_WANT_AUTO); assert_string_equal(p.output, "results");
    assert_string_equal(p.dataset, "fashion-mnist"); assert_string_equal(p.path, "");
    assert_int_equal(p.n_train, 2000); assert_int_equal(p.n_attacker, 1000); assert_int_equal(p.n_test, 1000);
    assert_int_equal(p.normalize, NORM_STANDARD);
    assert_int_equal(p.N, 10); assert_int_equal(p.m, 50); assert_int_equal(p.secret, -1);
    assert_string_equal(p.arch, "lenet"); assert_int_equal(p.width, 0);
    assert_int_equal(p.optimizer, NN_SGD);
    assert_true(p.lr == 0.05 && p.momentum == 0.9 && p.weight_decay == 0 && p.gamma == 0.1);
    assert_int_equal(p.epochs, 10); assert_int_equal(p.batch_size, 64);
    assert_int_equal(p.schedule, NN_SCHED_NONE); assert_int_equal(p.step_size, 10);
    assert_int_equal(p.permutations, 9999);
    assert_int_equal(p.n_alphas, 2); assert_true(p.alphas[0] == 0.01 && p.alphas[1] == 0.05);
    assert_string_equal(p.scores, "loss,conf,correct,entropy,mentropy,logit");
    assert_string_equal(p.decide, "perm"); assert_int_equal(p.independent, 1);
    assert_string_equal(p.indep_arch, "lenet");
    assert_int_equal(p.save_models, 0);
    cfg_point_label(c, 0, label, sizeof label);
    assert_string_equal(label, "");
    cfg_free(c);
    cfg_free(NULL);
}

static const char *full_ini =
    "; every section\n"
    "[experiment]\n"
    "name = full\n"
    "seeds = 2\n"
    "seed = 7\n"
    "device = cpu\n"
    "output = out/dir\n"
    "[data]\n"
    "dataset = cifar10\n"
    "path = /data/cifar\n"
    "n_train = 500\n"
    "n_attacker = 0\n"
    "n_test = 300\n"
    "normalize = unit\n"
    "[pool]\n"
    "N = 20\n"
    "m = 25\n"
    "secret = 19\n"
    "[model]\n"
    "arch = resnet18\n"
    "width = 16\n"
    "[train]\n"
    "optimizer = adam\n"
    "lr = 0.001   ; inline comment\n"
    "momentum = 0\n"
    "weight_decay = 5e-4\n"
    "epochs = 0\n"
    "batch_size = 128\n"
    "schedule = step\n"
    "step_size = 3\n"
    "gamma = 1\n"
    "[pmi]\n"
    "permutations = 1\n"
    "alpha = 0.001, 0.01,0.05 ,0.1\n"
    "scores = loss, logit\n"
    "decide = welch\n"
    "independent = 4\n"
    "indep_arch = mlp\n"
    "[store]\n"
    "save_models = yes\n";

static void test_full_file(void **state) {
    cfg *c = load_ok(write_ini("full.ini", full_ini));
    pmi_params p;
    char err[512];
    assert_int_equal(cfg_sweep_count(c), 1);
    assert_int_equal(cfg_point(c, 0, &p, err, sizeof err), 0);
    assert_string_equal(p.name, "full"); assert_int_equal(p.seeds, 2); assert_int_equal(p.seed, 7);
    assert_int_equal(p.device, NN_WANT_CPU); assert_string_equal(p.output, "out/dir");
    assert_string_equal(p.dataset, "cifar10"); assert_string_equal(p.path, "/data/cifar");
    assert_int_equal(p.n_train, 500); assert_int_equal(p.n_attacker, 0); assert_int_equal(p.n_test, 300);
    assert_int_equal(p.normalize, NORM_UNIT);
    assert_int_equal(p.N, 20); assert_int_equal(p.m, 25); assert_int_equal(p.secret, 19);
    assert_string_equal(p.arch, "resnet18"); assert_int_equal(p.width, 16);
    assert_int_equal(p.optimizer, NN_ADAM);
    assert_true(p.lr == 0.001 && p.momentum == 0 && p.weight_decay == 5e-4 && p.gamma == 1);
    assert_int_equal(p.epochs, 0); assert_int_equal(p.batch_size, 128);
    assert_int_equal(p.schedule, NN_SCHED_STEP); assert_int_equal(p.step_size, 3);
    assert_int_equal(p.permutations, 1);
    assert_int_equal(p.n_alphas, 4);
    assert_true(p.alphas[0] == 0.001 && p.alphas[1] == 0.01 && p.alphas[2] == 0.05 && p.alphas[3] == 0.1);
    assert_string_equal(p.scores, "loss,logit");
    assert_string_equal(p.decide, "welch"); assert_int_equal(p.independent, 4);
    assert_string_equal(p.indep_arch, "mlp"); assert_int_equal(p.save_models, 1);
    const char *where;
    assert_string_equal(cfg_get(c, "train", "lr", &where), "0.001");
    assert_non_null(strstr(where, "full.ini:24"));
    assert_null(cfg_get(c, "train", "nope", &where));
    assert_null(where);
    cfg_free(c);
}

/* main.ini includes configs/base.ini, which includes parts/arch.ini relative to configs/. */
static void test_include_and_override_order(void **state) {
    write_ini("inc/configs/parts/arch.ini", "[model]\narch = vgg11\nwidth = 8\n");
    write_ini("inc/configs/base.ini",
              "[train]\nepochs = 5\nlr = 0.2\ninclude = parts/arch.ini\n[pool]\nN = 30\n");
    const char *main_ini = write_ini("inc/main.ini",
              "[model]\narch = mlp\n"
              "include = configs/base.ini\n"
              "[train]\nlr = 0.3\n");
    cfg *c = load_ok(main_ini);
    pmi_params p;
    char err[512];
    const char *where;
    assert_int_equal(cfg_point(c, 0, &p, err, sizeof err), 0);
    assert_string_equal(p.arch, "vgg11");      /* the include comes later than arch = mlp */
    assert_int_equal(p.width, 8);
    assert_int_equal(p.epochs, 5);
    assert_true(p.lr == 0.3);                  /* main.ini's line after the include wins */
    assert_int_equal(p.N, 30);
    cfg_get(c, "model", "arch", &where);
    assert_non_null(strstr(where, "inc/configs/parts/arch.ini:2"));
    cfg_get(c, "train", "lr", &where);
    assert_non_null(strstr(where, "inc/main.ini:5"));
    cfg_get(c, "pool", "N", &where);
    assert_non_null(strstr(where, "inc/configs/base.ini:6"));
    cfg_free(c);
}

static void test_s_override(void **state) {
    cfg *c = cfg_create();
    char err[512];
    pmi_params p;
    const char *where;
    assert_int_equal(cfg_load(c, write_ini("s.ini", "[pool]\nN = 12\nm = 7\n"), err, sizeof err), 0);
    assert_int_equal(cfg_override(c, "pool.N=20", err, sizeof err), 0);
    assert_int_equal(cfg_override(c, " train.lr = 0.5 ", err, sizeof err), 0);
    assert_int_equal(cfg_override(c, "pool.N=24", err, sizeof err), 0);   /* later -s wins */
    assert_int_equal(cfg_override(c, "attack.ft.epochs=3", err, sizeof err), 0);
    assert_int_equal(cfg_validate(c, err, sizeof err), 0);
    assert_int_equal(cfg_point(c, 0, &p, err, sizeof err), 0);
    assert_int_equal(p.N, 24); assert_int_equal(p.m, 7); assert_true(p.lr == 0.5);
    cfg_get(c, "pool", "N", &where);
    assert_string_equal(where, "-s pool.N=24");
    assert_string_equal(cfg_get(c, "attack.ft", "epochs", &where), "3");
    assert_string_equal(where, "-s attack.ft.epochs=3");
    assert_int_equal(cfg_section_count(c, "attack."), 1);
    cfg_free(c);
}

static void test_sweep_two_axes(void **state) {
    cfg *c = load_ok(write_ini("sweep.ini",
        "[pool]\nN = 10, 20\n[train]\nlr = 0.1,0.01,0.001\nepochs = 3\n[pmi]\nalpha = 0.01,0.05\n"));
    pmi_params p;
    char err[512], label[128];
    static const int Ns[6] = {10, 10, 10, 20, 20, 20};
    static const double lrs[6] = {0.1, 0.01, 0.001, 0.1, 0.01, 0.001};
    assert_int_equal(cfg_sweep_count(c), 6);  /* pmi.alpha is a list, not an axis */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(cfg_point(c, i, &p, err, sizeof err), 0);
        assert_int_equal(p.N, Ns[i]);
        assert_true(p.lr == lrs[i]);
        assert_int_equal(p.epochs, 3);
        assert_int_equal(p.n_alphas, 2);
    }
    cfg_point_label(c, 4, label, sizeof label);
    assert_string_equal(label, "pool.N=20,train.lr=0.01");
    assert_int_equal(cfg_point(c, 6, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "out of range"));
    assert_int_equal(cfg_point(c, -1, &p, err, sizeof err), -1);
    cfg_free(c);
}

/* An indented line continues the previous value (inih multi-line); it joins with a space. */
static void test_continuation_line(void **state) {
    cfg *c = load_ok(write_ini("cont.ini", "[model]\narch = lenet,\n   mlp\n[train]\nepochs = 2\n"));
    char label[64];
    assert_int_equal(cfg_sweep_count(c), 2);
    cfg_point_label(c, 1, label, sizeof label);
    assert_string_equal(label, "model.arch=mlp");
    cfg_free(c);
    /* after a section header an indented line is a key of its own, as inih reads it */
    pmi_params p;
    char err[256];
    c = load_ok(write_ini("cont2.ini", "[train]\nlr = 0.5\n[train]\n  epochs = 2\n"));
    assert_int_equal(cfg_point(c, 0, &p, err, sizeof err), 0);
    assert_int_equal(p.epochs, 2);
    assert_true(p.lr == 0.5);
    cfg_free(c);
    /* so the same key there is a second setting of it in the file: an error */
    expect_error(write_ini("cont3.ini", "[train]\nepochs = 1\n[train]\n  epochs = 2\n"),
                 (const char *[]){"cont3.ini:4: train.epochs: already set at ", "cont3.ini:2", NULL});
}

static void test_effective_roundtrip(void **state) {
    write_ini("rt/base.ini", "[data]\ndataset = mnist\nn_train = 100,200\n[attack.prune]\ntype = prune\n");
    const char *path = write_ini("rt/main.ini",
        "include = base.ini\n[train]\nlr = 0.1, 0.01\nschedule = none,cosine\n[pmi]\nscores = loss\n"
        "[attack.ft]\ntype = ftal\nepochs = 1,2,3\n[attack.bare]\n");
    char err[512];
    cfg *a = load_ok(path);
    assert_int_equal(cfg_override(a, "model.width=4", err, sizeof err), 0);
    char *text = cfg_effective_text(a);
    assert_non_null(text);
    assert_non_null(strstr(text, "lr = 0.1, 0.01\n"));
    assert_non_null(strstr(text, "[attack.bare]\n"));
    cfg *b = load_ok(write_ini("rt/effective.ini", text));
    char *text2 = cfg_effective_text(b);
    assert_string_equal(text, text2);
    assert_int_equal(cfg_sweep_count(a), 8);
    assert_int_equal(cfg_sweep_count(b), 8);
    for (int i = 0; i < 8; i++) {
        pmi_params pa, pb;
        char la[256], lb[256];
        assert_int_equal(cfg_point(a, i, &pa, err, sizeof err), 0);
        assert_int_equal(cfg_point(b, i, &pb, err, sizeof err), 0);
        assert_memory_equal(&pa, &pb, sizeof pa);
        cfg_point_label(a, i, la, sizeof la);
        cfg_point_label(b, i, lb, sizeof lb);
        assert_string_equal(la, lb);
    }
    assert_int_equal(cfg_section_count(b, "attack."), 3);
    assert_string_equal(cfg_section_name(b, "attack.", 0), "attack.prune");
    assert_string_equal(cfg_get(b, "attack.ft", "epochs", NULL), "1,2,3");
    free(text); free(text2);
    cfg_free(a); cfg_free(b);
}

static void test_attack_raw(void **state) {
    cfg *c = load_ok(write_ini("att.ini",
        "[train]\nepochs = 1\n[attack.ft]\ntype = ftal\nlr = 0.01\nanything = goes,here\n"
        "[attack.empty]\n[attack.prune]\nsparsity = 0.1,0.5\n"));
    const char *keys[2], *where;
    assert_int_equal(cfg_sweep_count(c), 1);    /* attack lists are the attack module's */
    assert_int_equal(cfg_section_count(c, "attack."), 3);
    assert_int_equal(cfg_section_count(c, NULL), 4);
    assert_string_equal(cfg_section_name(c, "attack.", 0), "attack.ft");
    assert_string_equal(cfg_section_name(c, "attack.", 1), "attack.empty");
    assert_string_equal(cfg_section_name(c, "attack.", 2), "attack.prune");
    assert_null(cfg_section_name(c, "attack.", 3));
    assert_int_equal(cfg_keys(c, "attack.ft", NULL, 0), 3);
    assert_int_equal(cfg_keys(c, "attack.ft", keys, 2), 2);   /* never more than max */
    assert_string_equal(keys[0], "type");
    assert_string_equal(keys[1], "lr");
    assert_int_equal(cfg_keys(c, "attack.empty", keys, 2), 0);
    assert_string_equal(cfg_get(c, "attack.ft", "anything", &where), "goes,here");
    assert_non_null(strstr(where, "att.ini:6"));
    assert_string_equal(cfg_get(c, "attack.prune", "sparsity", NULL), "0.1,0.5");
    cfg_free(c);
}

static void test_help(void **state) {
    char path[512], buf[8192];
    snprintf(path, sizeof path, "%s/help.txt", tu_tmpdir());
    FILE *f = fopen(path, "w+");
    assert_non_null(f);
    cfg_print_help(f);
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    static const char *needles[] = {"[experiment]", "[store]", "lr", "a number in (0, 10]",
        "one of auto|cpu|cuda", "an integer in [-1, 4095]", "save_models", "[attack.<name>]"};
    for (size_t i = 0; i < sizeof needles / sizeof *needles; i++)
        if (!strstr(buf, needles[i])) fail_msg("'%s' missing from help", needles[i]);
    /* aligned columns: on every key line the sweep mark sits in one column and the help starts
     * in one column (a long default puts it at that column of the next line) */
    const char *star = strstr(strstr(buf, "\n[data]\n"), " * ");   /* the first sweepable key's mark */
    assert_non_null(star);
    const char *sol = star;
    while (sol > buf && sol[-1] != '\n') sol--;
    int mark = (int)(star - sol) + 1, help = -1, lines = 0;
    *strstr(buf, "\n[attack.<name>]") = 0;   /* the key lines end there */
    for (char *l = buf; *l; l = strchr(l, '\n') + 1) {
        if (l[0] == ' ' && l[1] == ' ' && islower((unsigned char)l[2]) && strchr(l, '\n')) {
            if (!strchr("* ", l[mark]) || l[mark - 1] != ' ' || l[mark + 1] != ' ' || l[mark + 2] == ' ')
                fail_msg("the sweep mark or the default is not in column %d: %.60s", mark, l);
            int h = mark + 2 + (int)strcspn(l + mark + 2, " \n");
            if (l[h] == '\n') h = (int)strspn(l + h + 1, " ");   /* a long default: the help on the next line */
            else h += (int)strspn(l + h, " ");
            if (help < 0) help = h;
            if (h != help) fail_msg("the help starts in column %d, not %d: %.60s", h, help, l);
            lines++;
        }
        if (!strchr(l, '\n')) break;
    }
    assert_true(lines > 30);
}

/* ---- error paths: each message names the file, the line and the key ------------------- */

static void test_err_unknown_section(void **state) {
    expect_error(write_ini("e_sec.ini", "[train]\nepochs = 1\n[bogus]\nx = 1\n"),
                 (const char *[]){"e_sec.ini:3", "unknown section [bogus]", NULL});
    expect_error(write_ini("e_sec2.ini", "[train]\nepochs = 1\n\n[empty]\n"),
                 (const char *[]){"e_sec2.ini:4", "[empty]", NULL});
}

static void test_err_unknown_key(void **state) {
    expect_error(write_ini("e_key.ini", "[train]\nlr = 0.1\nfoo = 1\n"),
                 (const char *[]){"e_key.ini:3", "unknown key 'foo' in [train]", "known: optimizer, lr,", NULL});
    expect_error(write_ini("e_key2.ini", "seeds = 1\n"),
                 (const char *[]){"e_key2.ini:1", "'seeds'", "outside any section", NULL});
}

static void test_err_wrong_type(void **state) {
    expect_error(write_ini("e_type.ini", "[train]\n\nepochs = abc\n"),
                 (const char *[]){"e_type.ini:3", "train.epochs", "expected an integer in [0, 10000]", "'abc'", NULL});
    expect_error(write_ini("e_type2.ini", "[store]\nsave_models = maybe\n"),
                 (const char *[]){"e_type2.ini:2", "store.save_models", "boolean", NULL});
    expect_error(write_ini("e_type3.ini", "[train]\nlr = 0.1,x\n"),
                 (const char *[]){"e_type3.ini:2", "train.lr", "got 'x'", NULL});
}

static void test_err_out_of_range(void **state) {
    expect_error(write_ini("e_range.ini", "[pool]\nN = 1\n"),
                 (const char *[]){"e_range.ini:2", "pool.N", "[2, 4096]", "got '1'", NULL});
    expect_error(write_ini("e_range2.ini", "[train]\nlr = 0.1,0\n"),
                 (const char *[]){"e_range2.ini:2", "train.lr", "(0, 10]", "got '0'", NULL});
    expect_error(write_ini("e_range3.ini", "[pmi]\nalpha = 0.01,1\n"),
                 (const char *[]){"e_range3.ini:2", "pmi.alpha", "(0, 1)", NULL});
    expect_error(write_ini("e_range4.ini", "[pmi]\nalpha = 0.1,0.2,0.3,0.4,0.5\n"),
                 (const char *[]){"e_range4.ini:2", "pmi.alpha", "1 to 4", NULL});
    expect_error(write_ini("e_range5.ini", "[pmi]\nscores = loss,lnoise\nlnoise_queries = 0\n"),
                 (const char *[]){"e_range5.ini:3", "pmi.lnoise_queries", "[1, 1024]", "got '0'", NULL});
    expect_error(write_ini("e_range6.ini", "[pmi]\nlnoise_sigma = -0.5\n"),
                 (const char *[]){"e_range6.ini:2", "pmi.lnoise_sigma", "got '-0.5'", NULL});
}

static void test_err_bad_enum(void **state) {
    expect_error(write_ini("e_enum.ini", "[experiment]\ndevice = gpu\n"),
                 (const char *[]){"e_enum.ini:2", "experiment.device", "one of auto|cpu|cuda", "'gpu'", NULL});
    expect_error(write_ini("e_enum2.ini", "[pmi]\nscores = loss,bogus\n"),
                 (const char *[]){"e_enum2.ini:2", "pmi.scores", "loss|conf", NULL});
    expect_error(write_ini("e_enum3.ini", "[data]\ndataset = imagenet\n"),
                 (const char *[]){"e_enum3.ini:2", "data.dataset", "cifar100", NULL});
}

static void test_err_experiment_sweep(void **state) {
    expect_error(write_ini("e_exp.ini", "[experiment]\nseeds = 1,2\n"),
                 (const char *[]){"e_exp.ini:2", "experiment.seeds", "comma list", NULL});
}

static void test_err_syntax(void **state) {
    expect_error(write_ini("e_syn.ini", "[train]\nepochs = 1\nthis line has no equals sign\n"),
                 (const char *[]){"e_syn.ini:3", "cannot parse", NULL});
    /* the earliest error is reported, whether inih or the handler found it */
    expect_error(write_ini("e_syn2.ini", "[train]\nno equals\ninclude = missing.ini\n"),
                 (const char *[]){"e_syn2.ini:2", "cannot parse", NULL});
    expect_error(write_ini("e_syn3.ini", "[train]\ninclude = missing.ini\nno equals\n"),
                 (const char *[]){"e_syn3.ini:2", "include 'missing.ini'", NULL});
    char longline[400];
    memset(longline, 'x', sizeof longline);
    memcpy(longline, "[model]\narch = ", 15);
    strcpy(longline + 390, "\n");
    expect_error(write_ini("e_long.ini", longline),
                 (const char *[]){"e_long.ini:2", "line longer than", NULL});
}

static void test_err_missing_file(void **state) {
    char path[512];
    snprintf(path, sizeof path, "%s/does-not-exist.ini", tu_tmpdir());
    char want[600];
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
    expect_error(path, (const char *[]){want, NULL});
}

static void test_err_missing_include(void **state) {
    expect_error(write_ini("e_inc.ini", "[train]\ninclude = nothere.ini\n"),
                 (const char *[]){"e_inc.ini:2", "include 'nothere.ini'", "nothere.ini: cannot open", NULL});
}

/* Includes nested deeper than CFG_MAX_INCLUDE_DEPTH: the reason survives a message cut at
 * errlen (the innermost error comes first, the include trail after it). */
static void test_err_include_depth(void **state) {
    char name[64], text[64];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "deep/%02d-with-a-long-file-name.ini", i);
        snprintf(text, sizeof text, "include = %02d-with-a-long-file-name.ini\n", i + 1);
        write_ini(name, text);
    }
    write_ini("deep/40-with-a-long-file-name.ini", "[train]\nepochs = 1\n");
    char err[256] = "", path[512];
    snprintf(path, sizeof path, "%s/deep/00-with-a-long-file-name.ini", tu_tmpdir());
    cfg *c = cfg_create();
    assert_int_equal(cfg_load(c, path, err, sizeof err), -1);
    if (!strstr(err, "includes nested deeper than 32 files")) fail_msg("reason lost: %s", err);
    cfg_free(c);
}

static void test_err_include_cycle(void **state) {
    write_ini("cyc/b.ini", "include = a.ini\n");
    const char *a = write_ini("cyc/a.ini", "[train]\nepochs = 1\ninclude = b.ini\n");
    expect_error(a, (const char *[]){"cyc/a.ini:3", "include 'b.ini'", "cyc/b.ini:1", "include cycle", NULL});
}

static void test_err_bad_s_syntax(void **state) {
    cfg *c = cfg_create();
    char err[512];
    assert_int_equal(cfg_override(c, "xyz", err, sizeof err), -1);
    assert_string_equal(err, "-s 'xyz': expected section.key=value");
    assert_int_equal(cfg_override(c, "nodot=3", err, sizeof err), -1);
    assert_non_null(strstr(err, "-s 'nodot=3': expected section.key=value"));
    assert_int_equal(cfg_override(c, "train.=3", err, sizeof err), -1);
    assert_non_null(strstr(err, "'train.=3'"));
    assert_int_equal(cfg_override(c, "train.lr=1 ;x", err, sizeof err), -1);
    assert_int_equal(cfg_override(c, "train.include=x.ini", err, sizeof err), -1);
    assert_int_equal(cfg_override(c, "train.lr=abc", err, sizeof err), 0);
    assert_int_equal(cfg_validate(c, err, sizeof err), -1);
    assert_non_null(strstr(err, "-s train.lr=abc: train.lr: expected a number"));
    cfg_free(c);
}

static void test_err_secret_ge_N(void **state) {
    cfg *c = cfg_create();
    char err[512];
    pmi_params p;
    assert_int_equal(cfg_load(c, write_ini("e_secret.ini", "[pool]\nN = 10\n\nsecret = 10\n"), err, sizeof err), 0);
    assert_int_equal(cfg_point(c, 0, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "e_secret.ini:4: pool.secret: 10 must be less than pool.N = 10"));
    assert_int_equal(cfg_validate(c, err, sizeof err), -1);
    assert_non_null(strstr(err, "e_secret.ini:4: pool.secret"));
    cfg_free(c);
    /* in a sweep every N meets every secret: validation catches the one bad combination */
    expect_error(write_ini("e_secret2.ini", "[pool]\nN = 20,5\nsecret = 3,7\n"),
                 (const char *[]){"e_secret2.ini:3", "pool.secret: 7 must be less than pool.N = 5", NULL});
}

/* ---- names come from their owners (nn.h, pmi.h) ---------------------------------------- */

/* Sets section.key=value on a fresh config, validates and fills point 0 (fails the test on error). */
static pmi_params point_with(const char *assignment) {
    cfg *c = cfg_create();
    char err[1024] = "";
    pmi_params p;
    if (cfg_override(c, assignment, err, sizeof err) || cfg_validate(c, err, sizeof err) ||
        cfg_point(c, 0, &p, err, sizeof err))
        fail_msg("%s: %s", assignment, err);
    cfg_free(c);
    return p;
}

/* Every name of nn.h's and pmi.h's tables is accepted and lands as that enum value; the help
 * text and the default score list are generated from the same tables. */
static void test_names_from_owner_tables(void **state) {
    char set[128];
    for (int i = 0; nn_device_request_name(i); i++) {
        snprintf(set, sizeof set, "experiment.device=%s", nn_device_request_name(i));
        assert_int_equal(point_with(set).device, i);
    }
    for (int i = 0; nn_optimizer_name(i); i++) {
        snprintf(set, sizeof set, "train.optimizer=%s", nn_optimizer_name(i));
        assert_int_equal(point_with(set).optimizer, i);
    }
    for (int i = 0; nn_schedule_name(i); i++) {
        snprintf(set, sizeof set, "train.schedule=%s", nn_schedule_name(i));
        assert_int_equal(point_with(set).schedule, i);
    }
    for (int i = 0; i < nn_arch_count(); i++) {
        snprintf(set, sizeof set, "model.arch=%s", nn_arch_name(i));
        assert_string_equal(point_with(set).arch, nn_arch_name(i));
        snprintf(set, sizeof set, "pmi.indep_arch=%s", nn_arch_name(i));
        assert_string_equal(point_with(set).indep_arch, nn_arch_name(i));
    }
    for (int k = 0; k < P_COUNT; k++) {
        snprintf(set, sizeof set, "pmi.decide=%s", pmi_pvalue_name((pmi_pvalue)k));
        assert_string_equal(point_with(set).decide, pmi_pvalue_name((pmi_pvalue)k));
    }
    char all[CFG_STR] = "";
    for (int k = 0; k < SCORE_DEFAULT_COUNT; k++) {
        assert_true(strlen(all) + strlen(pmi_score_name((pmi_score_kind)k)) + 2 <= sizeof all);
        strcat(strcat(all, k ? "," : ""), pmi_score_name((pmi_score_kind)k));
    }
    /* default: every raw kind but lnoise, which costs pmi.lnoise_queries evaluations */
    assert_string_equal(point_with("pmi.permutations=10").scores, all);
    assert_null(strstr(all, "lnoise"));
    assert_string_equal(point_with("pmi.scores=lnoise,loss").scores, "lnoise,loss");
    assert_int_equal(point_with("pmi.lnoise_queries=8").lnoise_queries, 8);
    assert_true(point_with("pmi.permutations=10").lnoise_sigma == 0.25);
    cfg *empty = cfg_create();
    char *text = cfg_effective_text(empty);
    assert_non_null(text);
    snprintf(set, sizeof set, "scores = %s\n", all);
    assert_non_null(strstr(text, set));
    free(text);
    cfg_free(empty);

    char path[512], buf[8192];
    snprintf(path, sizeof path, "%s/help-names.txt", tu_tmpdir());
    FILE *f = fopen(path, "w+");
    assert_non_null(f);
    cfg_print_help(f);
    rewind(f);
    buf[fread(buf, 1, sizeof buf - 1, f)] = 0;
    fclose(f);
    for (int i = 0; i < nn_arch_count(); i++) assert_non_null(strstr(buf, nn_arch_name(i)));
    for (int k = 0; k < P_COUNT; k++) assert_non_null(strstr(buf, pmi_pvalue_name((pmi_pvalue)k)));
    assert_non_null(strstr(buf, "sgd|adam"));
    assert_non_null(strstr(buf, "none|step|cosine"));
}

/* model.arch and pmi.indep_arch are checked against the registry, every sweep element included;
 * the message lists the known names. An empty indep_arch means model.arch. */
static void test_err_unknown_arch(void **state) {
    const char *needles[16] = {"e_arch.ini:4", "model.arch", "'resnet19'"};
    int n = 3;
    for (int i = 0; i < nn_arch_count() && n < 15; i++) needles[n++] = nn_arch_name(i);
    needles[n] = NULL;
    expect_error(write_ini("e_arch.ini", "[train]\nepochs = 1\n[model]\narch = lenet, resnet19\n"), needles);
    needles[0] = "e_arch2.ini:2"; needles[1] = "pmi.indep_arch"; needles[2] = "'vgg'";
    expect_error(write_ini("e_arch2.ini", "[pmi]\nindep_arch = vgg\n"), needles);
    pmi_params p = point_with("pmi.indep_arch=");
    assert_string_equal(p.indep_arch, p.arch);
}

/* pmi.scores refuses a kind listed twice and an empty list; pmi.decide knows pmi.h's p-values. */
static void test_err_scores_and_decide(void **state) {
    expect_error(write_ini("e_sc.ini", "[pmi]\nscores = loss, conf, loss\n"),
                 (const char *[]){"e_sc.ini:2", "pmi.scores: 'loss' listed twice", NULL});
    expect_error(write_ini("e_sc2.ini", "[pmi]\n\nscores =\n"),
                 (const char *[]){"e_sc2.ini:3", "pmi.scores", "empty list", NULL});
    expect_error(write_ini("e_sc3.ini", "[pmi]\nscores = loss,,conf\n"),
                 (const char *[]){"e_sc3.ini:2", "pmi.scores", "loss|conf|correct|entropy|mentropy|logit", NULL});
    expect_error(write_ini("e_dec.ini", "[pmi]\ndecide = fisher\n"),
                 (const char *[]){"e_dec.ini:2", "pmi.decide", "rank|perm|welch|mw", "'fisher'", NULL});
    assert_string_equal(point_with("pmi.scores= logit ,loss").scores, "logit,loss");
}

/* The reference-calibration keys: defaults, and every bad value with its origin (negative
 * references, repeat < 1, a fraction outside (0, 1], decide_score naming an unknown kind or
 * one not in pmi.scores, diff or lira without enough references, at any sweep point). */
static void test_references_and_repeat(void **state) {
    pmi_params p = point_with("pmi.permutations=10");
    assert_int_equal(p.references, 0); assert_int_equal(p.repeat, 1);
    assert_true(p.reference_fraction == 1.0); assert_string_equal(p.decide_score, "");
    p = point_with("pool.repeat=4");
    assert_int_equal(p.repeat, 4);
    cfg_free(load_ok(write_ini("r_ok.ini", "[pool]\nrepeat = 1,2,4\n[pmi]\nreferences = 2,4\nscores = loss,diff,lira\n"
                               "decide_score = lira\nreference_fraction = 0.5\n")));
    expect_error(write_ini("e_ref.ini", "[pmi]\nreferences = -1\n"), (const char *[]){"e_ref.ini:2", "pmi.references", "[0, 1000]", NULL});
    expect_error(write_ini("e_rep.ini", "[pool]\nrepeat = 0\n"), (const char *[]){"e_rep.ini:2", "pool.repeat", "[1, 1000]", NULL});
    expect_error(write_ini("e_frac.ini", "[pmi]\nreference_fraction = 0\n"),
                 (const char *[]){"e_frac.ini:2", "pmi.reference_fraction", "(0, 1]", NULL});
    expect_error(write_ini("e_ds.ini", "[pmi]\ndecide_score = loss2\n"),
                 (const char *[]){"e_ds.ini:2", "pmi.decide_score", "diff|lira", NULL});
    expect_error(write_ini("e_ds2.ini", "[pmi]\nscores = loss,conf\ndecide_score = logit\n"),
                 (const char *[]){"e_ds2.ini:3", "pmi.decide_score: 'logit' is not one of pmi.scores", "e_ds2.ini:2", NULL});
    expect_error(write_ini("e_lira0.ini", "[pmi]\nscores = loss,lira\n"),
                 (const char *[]){"e_lira0.ini:2", "'lira' needs pmi.references >= 2", "pmi.references = 0 (default)", NULL});
    expect_error(write_ini("e_lira1.ini", "[pmi]\nscores = lira\nreferences = 4,1\n"),
                 (const char *[]){"e_lira1.ini:2", "'lira' needs pmi.references >= 2", "pmi.references = 1", "e_lira1.ini:3)", NULL});
    expect_error(write_ini("e_diff0.ini", "[pmi]\nscores = diff\n"),
                 (const char *[]){"e_diff0.ini:2", "'diff' needs pmi.references >= 1", NULL});
}

/* Integer keys refuse fractions and exponents, alone, in a sweep, and from -s. */
static void test_err_integer_fraction(void **state) {
    expect_error(write_ini("e_frac.ini", "[train]\nepochs = 2.5\n"),
                 (const char *[]){"e_frac.ini:2", "train.epochs", "expected an integer in [0, 10000]", "'2.5'", NULL});
    expect_error(write_ini("e_frac2.ini", "[pool]\nm = 10, 2.5\n"),
                 (const char *[]){"e_frac2.ini:2", "pool.m", "an integer", "'2.5'", NULL});
    expect_error(write_ini("e_frac3.ini", "[pool]\nN = 1e2\n"),
                 (const char *[]){"e_frac3.ini:2", "pool.N", "'1e2'", NULL});
    cfg *c = cfg_create();
    char err[512];
    assert_int_equal(cfg_override(c, "experiment.seeds=2.0", err, sizeof err), 0);
    assert_int_equal(cfg_validate(c, err, sizeof err), -1);
    assert_non_null(strstr(err, "-s experiment.seeds=2.0: experiment.seeds: expected an integer"));
    cfg_free(c);
}

/* cfg_load_string: the effective text round-trips to the same effective text and points;
 * include is refused, and errors name the origin and line. */
static void test_load_string(void **state) {
    write_ini("ls/base.ini", "[data]\ndataset = mnist\nn_train = 100,200\n[attack.prune]\ntype = prune\n");
    cfg *a = load_ok(write_ini("ls/main.ini", "include = base.ini\n[train]\nlr = 0.1, 0.01\n[pmi]\nscores = loss\n"));
    char err[512] = "";
    char *text = cfg_effective_text(a);
    assert_non_null(text);
    cfg *b = cfg_create();
    if (cfg_load_string(b, text, "results.h5:/config", err, sizeof err) || cfg_validate(b, err, sizeof err)) fail_msg("%s", err);
    char *text2 = cfg_effective_text(b);
    assert_string_equal(text, text2);
    assert_int_equal(cfg_sweep_count(b), 4);
    for (int i = 0; i < 4; i++) {
        pmi_params pa, pb;
        assert_int_equal(cfg_point(a, i, &pa, err, sizeof err), 0);
        assert_int_equal(cfg_point(b, i, &pb, err, sizeof err), 0);
        assert_memory_equal(&pa, &pb, sizeof pa);
    }
    const char *where;
    assert_string_equal(cfg_get(b, "attack.prune", "type", &where), "prune");
    assert_non_null(strstr(where, "results.h5:/config:"));
    free(text); free(text2);
    cfg_free(a); cfg_free(b);

    cfg *c = cfg_create();
    assert_int_equal(cfg_load_string(c, "[train]\nepochs = 1\ninclude = x.ini\n", "stored", err, sizeof err), -1);
    assert_non_null(strstr(err, "stored:3: include is not allowed"));
    cfg_free(c);
    c = cfg_create();
    assert_int_equal(cfg_load_string(c, "[train]\nno equals here\n", "mem", err, sizeof err), -1);
    assert_non_null(strstr(err, "mem:2: cannot parse the line"));
    cfg_free(c);
    c = cfg_create();
    assert_int_equal(cfg_load_string(c, "", NULL, err, sizeof err), 0);   /* empty text: defaults */
    assert_int_equal(cfg_validate(c, err, sizeof err), 0);
    cfg_free(c);
}

/* A value longer than an INI line (joined continuation lines, or -s) is stored on continuation
 * lines and reads back the same through cfg_load and cfg_load_string; one that cannot be broken
 * at single spaces is refused by cfg_validate, naming the limit. */
static void test_long_values_roundtrip(void **state) {
    char ini[4096] = "[model]\narch = lenet";
    for (int i = 0; i < 60; i++) strcat(ini, i % 6 == 5 ? ",\n  mlp" : ", mlp");   /* 61 elements */
    strcat(ini, "\n[attack.ft]\ntype = ftal\nnote = start");   /* no cut before '#': a comment there */
    for (int i = 0; i < 10; i++) strcat(ini, "\n  word #tag word #tag word #tag word #tag word");
    strcat(ini, "\n");
    cfg *a = load_ok(write_ini("long/a.ini", ini));
    char err[512] = "";
    assert_true(strlen(cfg_get(a, "model", "arch", NULL)) > CFG_LINE_MAX);
    assert_int_equal(cfg_sweep_count(a), 61);
    char *text = cfg_effective_text(a);
    assert_non_null(text);
    for (char *line = text; *line; line = strchr(line, '\n') + 1)
        assert_true(strcspn(line, "\n") <= CFG_LINE_MAX);
    cfg *b = cfg_create(), *f = load_ok(write_ini("long/effective.ini", text));
    if (cfg_load_string(b, text, "stored", err, sizeof err) || cfg_validate(b, err, sizeof err)) fail_msg("%s", err);
    assert_string_equal(cfg_get(b, "model", "arch", NULL), cfg_get(a, "model", "arch", NULL));
    assert_string_equal(cfg_get(b, "attack.ft", "note", NULL), cfg_get(a, "attack.ft", "note", NULL));
    assert_string_equal(cfg_get(f, "attack.ft", "note", NULL), cfg_get(a, "attack.ft", "note", NULL));
    char *text2 = cfg_effective_text(b);
    assert_string_equal(text, text2);
    free(text); free(text2);
    cfg_free(a); cfg_free(b); cfg_free(f);

    char set[400] = "attack.x.v=";
    memset(set + 11, 'z', 300); set[311] = 0;
    cfg *c = cfg_create();
    assert_int_equal(cfg_override(c, set, err, sizeof err), 0);
    assert_int_equal(cfg_validate(c, err, sizeof err), -1);
    assert_non_null(strstr(err, "attack.x.v: a value that does not fit on one line of 198 characters"));
    assert_null(cfg_effective_text(c));
    cfg_free(c);
}

/* Names longer than libinih keeps are errors, never cut; a -s value may not start a comment. */
static void test_err_long_names(void **state) {
    char ini[256] = "[attack.", set[256] = "attack.a.";
    memset(ini + 8, 'n', 60); strcpy(ini + 68, "]\ntype = x\n");
    expect_error(write_ini("e_name.ini", ini), (const char *[]){"e_name.ini:1", "section name longer than 49", NULL});
    strcpy(ini, "[attack.a]\n");
    memset(ini + 11, 'k', 60); strcpy(ini + 71, " = 1\n");
    expect_error(write_ini("e_name2.ini", ini), (const char *[]){"e_name2.ini:2", "key name longer than 49", NULL});
    cfg *c = cfg_create();
    char err[512];
    memset(set + 9, 'k', 60); strcpy(set + 69, "=1");
    assert_int_equal(cfg_override(c, set, err, sizeof err), -1);
    assert_non_null(strstr(err, "names of 1 to 49 characters"));
    assert_int_equal(cfg_override(c, "attack.a.v=;x", err, sizeof err), -1);
    assert_non_null(strstr(err, "nor start with ';'"));
    cfg_free(c);
}

/* cfg_point_label returns the label's full length, as snprintf does, so a caller can size it. */
static void test_point_label_length(void **state) {
    cfg *c = load_ok(write_ini("lab.ini", "[train]\nepochs = 1,2\n[pool]\nm = 10,20\n"));
    char buf[64], small[8];
    int n = cfg_point_label(c, 3, NULL, 0);
    assert_int_equal(n, (int)strlen("train.epochs=2,pool.m=20"));
    assert_int_equal(cfg_point_label(c, 3, buf, sizeof buf), n);
    assert_string_equal(buf, "train.epochs=2,pool.m=20");
    assert_int_equal(cfg_point_label(c, 3, small, sizeof small), n);   /* >= len: cut */
    assert_string_equal(small, "train.e");
    cfg_free(c);
}

/* ---- bad inputs: not text, not a file, empty, a key twice, a name that leaves output/ ---- */

/* Writes n bytes (NULs allowed) to <tmpdir>/name and returns the path (static buffer). */
static const char *write_bytes(const char *name, const char *bytes, size_t n) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tu_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
    return path;
}

/* A file of NUL bytes, a directory and a device are refused with the path, before any line is
 * taken for a setting; so are the same things as includes. /dev/zero must not hang. */
static void test_err_not_a_text_file(void **state) {
    static const char zeros[4096];
    expect_error(write_bytes("nul.ini", zeros, sizeof zeros), (const char *[]){"nul.ini:1", "NUL byte", "not a text file", NULL});
    expect_error(write_bytes("nul2.ini", "[train]\nepochs = 1\x00\n", 20), (const char *[]){"nul2.ini:2", "NUL byte", NULL});
    expect_error(tu_tmpdir(), (const char *[]){tu_tmpdir(), "a directory", "expected an INI text file", NULL});
    expect_error("/dev/zero", (const char *[]){"/dev/zero", "a device", NULL});
    expect_error("/dev/null", (const char *[]){"/dev/null", "a device", NULL});
    write_ini("incdir/sub/x.ini", "[train]\nepochs = 1\n");
    expect_error(write_ini("incdir/a.ini", "[train]\ninclude = sub\n"),
                 (const char *[]){"incdir/a.ini:2", "include 'sub'", "a directory", NULL});
    expect_error(write_ini("incdir/b.ini", "[train]\nepochs = 2\ninclude = /dev/zero\n"),
                 (const char *[]){"incdir/b.ini:3", "include '/dev/zero'", "a device", NULL});
    write_bytes("incdir/nul.ini", zeros, 100);
    expect_error(write_ini("incdir/c.ini", "include = nul.ini\n"),
                 (const char *[]){"incdir/c.ini:1", "include 'nul.ini'", "NUL byte", NULL});
}

/* Inputs that would turn a run against its user (issue 26): a named pipe as config or include
 * (it would block: refused at once, like a device), a first seed whose last seed passes
 * INT_MAX, an empty experiment.output (the filesystem root), an attack named none (the
 * un-attacked rows' name), zero permutations (every p_perm NaN), and control characters in
 * experiment.name (shown escaped, refused). */
static void test_err_turned_against_user(void **state) {
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/fifo.ini", tu_tmpdir());
    assert_int_equal(mkfifo(fifo, 0600), 0);
    expect_error(fifo, (const char *[]){"fifo.ini", "a pipe", "expected an INI text file", NULL});
    expect_error(write_ini("incfifo.ini", "[train]\nepochs = 1\ninclude = fifo.ini\n"),
                 (const char *[]){"incfifo.ini:3", "include 'fifo.ini'", "a pipe", NULL});
    expect_error(write_ini("seed.ini", "[experiment]\nseed = 2147483647\nseeds = 2\n"),
                 (const char *[]){"seed.ini:2", "experiment.seed", "2147483647", NULL});
    cfg_free(load_ok(write_ini("seed_ok.ini", "[experiment]\nseed = 2147483646\nseeds = 2\n")));
    expect_error(write_ini("out.ini", "[experiment]\noutput =\n"), (const char *[]){"out.ini:2", "experiment.output", "1 to", NULL});
    expect_error(write_ini("none.ini", "[attack.none]\ntype = prune\n"), (const char *[]){"none.ini:1", "[attack.none]", "reserved", NULL});
    expect_error(write_ini("perm.ini", "[pmi]\npermutations = 0\n"), (const char *[]){"perm.ini:2", "pmi.permutations", "[1, ", NULL});
    expect_error(write_ini("esc.ini", "[experiment]\nname = a\x1b[31mb\n"), (const char *[]){"esc.ini:2", "a\\x1b[31mb", NULL});
    char big[600];
    snprintf(big, sizeof big, "%s/big.ini", tu_tmpdir());
    FILE *f = fopen(big, "w");
    assert_non_null(f);
    assert_int_equal(fseek(f, CFG_FILE_MAX, SEEK_SET), 0);
    fputs("[train]\n", f);
    fclose(f);
    expect_error(big, (const char *[]){"big.ini", "more than a config file may hold", NULL});
}

/* A file without a single setting (empty, or only comments and blank lines) is refused: run
 * with it, the experiment would be the 15-job default. A file of one [attack.x] header is a
 * setting (an attack with its defaults). */
static void test_err_empty_file(void **state) {
    expect_error(write_ini("empty.ini", ""), (const char *[]){"empty.ini", "no settings", "empty", NULL});
    expect_error(write_ini("comments.ini", "; nothing here\n\n# nor here\n   \n"), (const char *[]){"comments.ini", "no settings", NULL});
    write_ini("inc_empty/e.ini", "\n");
    expect_error(write_ini("inc_empty/a.ini", "[train]\nepochs = 1\ninclude = e.ini\n"),
                 (const char *[]){"inc_empty/a.ini:3", "include 'e.ini'", "no settings", NULL});
    cfg *c = load_ok(write_ini("only_attack.ini", "[attack.prune]\n"));
    assert_int_equal(cfg_section_count(c, "attack."), 1);
    cfg_free(c);
}

/* A key set twice in one file is an error naming both lines (redis does the same); across
 * files, includes and -s a later value overrides on purpose. */
static void test_err_duplicate_key(void **state) {
    expect_error(write_ini("dup.ini", "[pmi]\nalpha = 0.01\n\n[train]\nepochs = 3\n[pmi]\n\nalpha = 0.05\n"),
                 (const char *[]){"dup.ini:8: pmi.alpha: already set at ", "dup.ini:2", NULL});
    expect_error(write_ini("dup2.ini", "[attack.ft]\ntype = ftal\ntype = rtal\n"),
                 (const char *[]){"dup2.ini:3", "attack.ft.type", "already set at ", "dup2.ini:2", NULL});
    write_ini("dupinc/b.ini", "[train]\nepochs = 4\n");
    /* set, included, set again in the same file: still a duplicate of line 2 */
    expect_error(write_ini("dupinc/a.ini", "[train]\nepochs = 2\ninclude = b.ini\nepochs = 5\n"),
                 (const char *[]){"dupinc/a.ini:4", "already set at ", "dupinc/a.ini:2", NULL});
    /* an include overriding its includer, and a file loaded over another, are fine */
    char err[1024];
    pmi_params p;
    cfg *c = load_ok(write_ini("dupinc/c.ini", "[train]\nepochs = 2\ninclude = b.ini\n"));
    assert_int_equal(cfg_point(c, 0, &p, err, sizeof err), 0);
    assert_int_equal(p.epochs, 4);
    const char *d = write_ini("dupinc/d.ini", "[train]\nepochs = 6\n");
    assert_int_equal(cfg_load(c, d, err, sizeof err), 0);
    assert_int_equal(cfg_load(c, d, err, sizeof err), 0);
    assert_int_equal(cfg_override(c, "train.epochs=7", err, sizeof err), 0);
    assert_int_equal(cfg_override(c, "train.epochs=8", err, sizeof err), 0);
    assert_int_equal(cfg_point(c, 0, &p, err, sizeof err), 0);
    assert_int_equal(p.epochs, 8);
    cfg_free(c);
    /* continuation lines are one value, not a duplicate */
    c = load_ok(write_ini("dupcont.ini", "[pmi]\nscores = loss,\n  conf\n"));
    cfg_free(c);
}

/* experiment.name is one folder under experiment.output: "..", "." and names with '/' would
 * write elsewhere, and an empty name into output/ itself. */
static void test_err_name_leaves_output(void **state) {
    static const char *bad[] = {"../..", "..", ".", "a/b", "/tmp/x", "x/"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[128];
        snprintf(text, sizeof text, "[experiment]\nseeds = 1\nname = %s\n", bad[i]);
        expect_error(write_ini("e_name.ini", text),
                     (const char *[]){"e_name.ini:3", "experiment.name", "folder name", bad[i], NULL});
    }
    expect_error(write_ini("e_name2.ini", "[experiment]\nname =\n"), (const char *[]){"e_name2.ini:2", "experiment.name", NULL});
    char err[1024];
    cfg *c = cfg_create();
    assert_int_equal(cfg_override(c, "experiment.name=../../etc", err, sizeof err), 0);
    assert_int_equal(cfg_validate(c, err, sizeof err), -1);
    assert_non_null(strstr(err, "-s experiment.name=../../etc: experiment.name"));
    cfg_free(c);
    c = load_ok(write_ini("ok_name.ini", "[experiment]\nname = my-exp.v2..x\n"));
    cfg_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_references_and_repeat),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_include_and_override_order),
        cmocka_unit_test(test_s_override),
        cmocka_unit_test(test_sweep_two_axes),
        cmocka_unit_test(test_continuation_line),
        cmocka_unit_test(test_effective_roundtrip),
        cmocka_unit_test(test_attack_raw),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_err_unknown_section),
        cmocka_unit_test(test_err_unknown_key),
        cmocka_unit_test(test_err_wrong_type),
        cmocka_unit_test(test_err_out_of_range),
        cmocka_unit_test(test_err_bad_enum),
        cmocka_unit_test(test_err_experiment_sweep),
        cmocka_unit_test(test_err_syntax),
        cmocka_unit_test(test_err_missing_file),
        cmocka_unit_test(test_err_missing_include),
        cmocka_unit_test(test_err_include_cycle),
        cmocka_unit_test(test_err_include_depth),
        cmocka_unit_test(test_err_bad_s_syntax),
        cmocka_unit_test(test_err_secret_ge_N),
        cmocka_unit_test(test_names_from_owner_tables),
        cmocka_unit_test(test_err_unknown_arch),
        cmocka_unit_test(test_err_scores_and_decide),
        cmocka_unit_test(test_err_integer_fraction),
        cmocka_unit_test(test_load_string),
        cmocka_unit_test(test_long_values_roundtrip),
        cmocka_unit_test(test_err_long_names),
        cmocka_unit_test(test_point_label_length),
        cmocka_unit_test(test_err_not_a_text_file),
        cmocka_unit_test(test_err_empty_file),
        cmocka_unit_test(test_err_turned_against_user),
        cmocka_unit_test(test_err_duplicate_key),
        cmocka_unit_test(test_err_name_leaves_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
