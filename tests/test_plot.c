/* test_plot: gnuplot figures from small fixed results files (framework/plot.h).
 *
 * Results files are built through store_write_shard + store_merge: two architectures, three
 * seeds, owner / clean / indep-data models, and a prune attack at three sparsities whose
 * effect on the synthetic scores grows with the sparsity; the p-values come from pmi_verify.
 * Every figure is rendered and checked (PNG signature and size, .gp and .dat beside it, the
 * .gp redraws from a copy of the folder), the numbers in the data files are compared with the
 * fixture, and failures (no gnuplot, a failing template, a bad format) are checked to name
 * the figure without touching the results file. The new store readers are tested here too. */
#include "testutil.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <sys/stat.h>

#include "fixture.h"
#include "plot.h"
#include "pmi.h"
#include "store.h"

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

static void assert_file(const char *dir, const char *name, const char *ext, long min_size, const char *magic) {
    char p[600];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s.%s", dir, name, ext);
    if (stat(p, &sb)) fail_msg("missing %s", p);
    if (sb.st_size < min_size) fail_msg("%s has %lld bytes, expected at least %ld", p, (long long)sb.st_size, min_size);
    if (magic) {
        size_t n;
        char *b = slurp(p, &n);
        assert_non_null(b);
        if (!memmem(b, n < 512 ? n : 512, magic, strlen(magic))) fail_msg("%s does not start with its signature", p);
        free(b);
    }
}

static const char *results_with_attacks(void) {
    static char path[400];
    if (!path[0]) {
        char dir[300];
        snprintf(dir, sizeof dir, "%s/attacked", tu_tmpdir());
        build_results(dir, 1, path, sizeof path);
    }
    return path;
}

/* Renders into <tmp>/<sub> and returns the log text (malloc'd); asserts the return code. */
static char *render_into(const char *results, const char *sub, const char *fmt, int want_rc, char *err, size_t errlen) {
    char dir[400], *log = NULL;
    size_t n = 0;
    snprintf(dir, sizeof dir, "%s/%s", tu_tmpdir(), sub);
    FILE *f = open_memstream(&log, &n);
    int rc = plot_render(results, dir, fmt, f, err, errlen);
    fclose(f);
    if (rc != want_rc) fail_msg("plot_render returned %d (err: %s), log:\n%s", rc, err, log);
    return log;
}

static const char *const all_figs[] = {"robustness-prune", "robustness", "scores", "roc", "roc-attacked", "fidelity"};

static void test_render_png(void **state) {
    const char *res = results_with_attacks();
    size_t n0, n1;
    char *before = slurp(res, &n0), err[2048], dir[400];
    char *log = render_into(res, "png", "png", 0, err, sizeof err);
    snprintf(dir, sizeof dir, "%s/png", tu_tmpdir());
    for (size_t i = 0; i < sizeof all_figs / sizeof *all_figs; i++) {
        assert_file(dir, all_figs[i], "png", 5 * 1024, "\x89PNG\r\n\x1a\n");
        assert_file(dir, all_figs[i], "gp", 100, NULL);
        assert_file(dir, all_figs[i], "dat", 50, NULL);
        char line[700];
        snprintf(line, sizeof line, "wrote %s/%s.png", dir, all_figs[i]);
        if (!strstr(log, line)) fail_msg("log lacks '%s':\n%s", line, log);
    }
    /* the only figure skipped is the pool ablation: the fixture has no N x m sweep */
    const char *sk = strstr(log, "skipped");
    if (!sk || strncmp(sk, "skipped ablation: no N x m sweep", 32) || strstr(sk + 1, "skipped")) fail_msg("log:\n%s", log);
    char *after = slurp(res, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before); free(after); free(log);
}

/* The kept .gp scripts redraw their figures from a copy of the folder (relative names only). */
static void test_scripts_rerun_elsewhere(void **state) {
    char err[2048], cmd[1400];
    free(render_into(results_with_attacks(), "rerun", "png", 0, err, sizeof err));
    snprintf(cmd, sizeof cmd, "cp -r '%s/rerun' '%s/moved' && cd '%s/moved' && rm -f *.png && "
             "for f in *.gp; do gnuplot \"$f\" || exit 1; done", tu_tmpdir(), tu_tmpdir(), tu_tmpdir());
    assert_int_equal(system(cmd), 0);
    char dir[400];
    snprintf(dir, sizeof dir, "%s/moved", tu_tmpdir());
    for (size_t i = 0; i < sizeof all_figs / sizeof *all_figs; i++) assert_file(dir, all_figs[i], "png", 5 * 1024, "\x89PNG");
}

/* Block `block` of a .dat file: its non-comment rows, columns into v[row][col]. */
static int read_block(const char *path, int block, double v[][14], int maxrows) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    int b = 0, blank = 0, rows = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '\n') { if (++blank == 2) { b++; blank = 0; } continue; }
        blank = 0;
        if (line[0] == '#' || b != block || rows == maxrows) continue;
        char *p = line, *end;
        for (int c = 0; c < 14; c++, p = end) { v[rows][c] = strtod(p, &end); if (end == p) break; }
        rows++;
    }
    fclose(f);
    return rows;
}

/* The numbers behind the robustness and fidelity figures equal those of the fixture. */
static void test_data_match_fixture(void **state) {
    char err[2048], p[500];
    free(render_into(results_with_attacks(), "data", "svg", 0, err, sizeof err));
    double v[16][14];
    fixture *x = malloc(sizeof *x);
    snprintf(p, sizeof p, "%s/data/robustness-prune.dat", tu_tmpdir());
    /* shards merge in file-name order, so "s1-cnn-*" (arch 1) comes first: block 1 - a */
    for (int a = 0; a < 2; a++) {
        assert_int_equal(read_block(p, 1 - a, v, 16), NSTR);
        for (int e = 1; e <= NSTR; e++) {
            double lp[NSEED], acc[NSEED], ref = 0;
            int ident = 0;
            for (int s = 1; s <= NSEED; s++) {
                fill_job(x, a, 0, s, 1);
                lp[s - 1] = -log10(x->evals[e].res[0].p[P_PERM]);
                acc[s - 1] = x->evals[e].test_acc;
                ref += x->evals[0].test_acc / NSEED;
                ident += x->evals[e].res[0].identified == x->job.secret_k;
            }
            /* fewer than 5 seeds: the seeds' median and range */
            gsl_sort(lp, 1, NSEED);
            gsl_sort(acc, 1, NSEED);
            const double *row = v[e - 1];
            assert_float_equal(row[0], sparsities[e - 1], 1e-9);
            assert_float_equal(row[1], NSEED, 0);
            assert_float_equal(row[2], (double)ident / NSEED, 1e-5);
            assert_float_equal(row[3], gsl_stats_median_from_sorted_data(lp, 1, NSEED), 1e-4);
            assert_float_equal(row[4], lp[0], 1e-4);
            assert_float_equal(row[5], lp[NSEED - 1], 1e-4);
            assert_float_equal(row[6], gsl_stats_median_from_sorted_data(acc, 1, NSEED), 1e-5);
            assert_float_equal(row[10], ref, 1e-5);
            double wlo, whi;
            pmi_wilson95(ident, NSEED, &wlo, &whi);
            assert_float_equal(row[11], wlo, 1e-5);
            assert_float_equal(row[12], whi, 1e-5);
        }
    }
    assert_int_equal(read_block(p, 2, v, 16), NSTR);    /* the independent models' block */
    size_t len;
    snprintf(p, sizeof p, "%s/data/robustness-prune.gp", tu_tmpdir());
    char *gp = slurp(p, &len);                           /* the x axis is the stored strength_key */
    assert_non_null(gp);
    assert_non_null(strstr(gp, "xlabel_text = \"prune: sparsity (fraction of weights)\""));
    free(gp);
    snprintf(p, sizeof p, "%s/data/fidelity.dat", tu_tmpdir());
    for (int a = 0; a < 2; a++) {
        assert_int_equal(read_block(p, 1 - a, v, 16), NSEED);
        for (int s = 1; s <= NSEED; s++) {
            fill_job(x, a, 1, s, 1);
            assert_float_equal(v[s - 1][0], x->job.test_acc, 1e-6);
            fill_job(x, a, 0, s, 1);
            assert_float_equal(v[s - 1][1], x->job.test_acc, 1e-6);
            for (int q = 4; q < 8; q++) assert_true(v[s - 1][q] >= 0 && v[s - 1][q] <= 1);   /* CIs inside [0, 1] */
            assert_true(v[s - 1][4] <= v[s - 1][2] && v[s - 1][2] <= v[s - 1][5]);
            assert_true(v[s - 1][6] <= v[s - 1][3] && v[s - 1][3] <= v[s - 1][7]);
        }
    }
    snprintf(p, sizeof p, "%s/data/roc.dat", tu_tmpdir());
    int n = read_block(p, 1, v, 16);                     /* p_perm: the curve ends at (1, 1) */
    assert_true(n >= 2);
    assert_float_equal(v[n - 1][0], 1, 1e-9);
    assert_float_equal(v[n - 1][1], 1, 1e-9);
    free(x);
}

static void test_no_attacks(void **state) {
    char dir[300], res[400], err[2048], out[400];
    snprintf(dir, sizeof dir, "%s/plain", tu_tmpdir());
    build_results(dir, 0, res, sizeof res);
    char *log = render_into(res, "plain-out", "png", 0, err, sizeof err);
    if (!strstr(log, "skipped robustness: no attacked evaluations")) fail_msg("log:\n%s", log);
    if (!strstr(log, "skipped roc-attacked: no attacked evaluations")) fail_msg("log:\n%s", log);
    snprintf(out, sizeof out, "%s/plain-out", tu_tmpdir());
    const char *figs[] = {"scores", "roc", "fidelity"};
    for (int i = 0; i < 3; i++) assert_file(out, figs[i], "png", 5 * 1024, "\x89PNG");
    snprintf(out, sizeof out, "%s/plain-out/roc-attacked.png", tu_tmpdir());
    assert_int_not_equal(access(out, F_OK), 0);
    free(log);
}

static void test_gnuplot_missing(void **state) {
    const char *res = results_with_attacks();
    size_t n0, n1;
    char *before = slurp(res, &n0), err[2048];
    setenv("PMI_GNUPLOT", "/nonexistent/gnuplot", 1);
    free(render_into(res, "missing", "png", -1, err, sizeof err));
    unsetenv("PMI_GNUPLOT");
    print_message("gnuplot missing: %s\n", err);
    if (!strstr(err, "figure robustness-prune") || !strstr(err, "/nonexistent/gnuplot") || !strstr(err, "No such file"))
        fail_msg("unexpected message: %s", err);
    char *after = slurp(res, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before); free(after);
}

/* A template gnuplot rejects: the error names the figure and carries gnuplot's message. */
static void test_gnuplot_fails(void **state) {
    char cmd[1400], err[2048], tdir[400];
    snprintf(tdir, sizeof tdir, "%s/broken-templates", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp plots/*.gp '%s/' && echo 'plot no_such_variable_xyz' > '%s/roc.gp'",
             tdir, tdir, tdir);
    assert_int_equal(system(cmd), 0);
    setenv("PMI_PLOTS_DIR", tdir, 1);
    char *log = render_into(results_with_attacks(), "broken", "png", -1, err, sizeof err);
    unsetenv("PMI_PLOTS_DIR");
    print_message("gnuplot failing: %s\n", err);
    if (!strstr(err, "figure roc:") || !strstr(err, "no_such_variable_xyz") || !strstr(err, "undefined variable"))
        fail_msg("unexpected message: %s", err);
    assert_non_null(strstr(log, "robustness-prune.png"));   /* figures before it were drawn */
    free(log);
}

static void test_pdf_and_bad_format(void **state) {
    char err[2048], dir[400];
    free(render_into(results_with_attacks(), "pdf", "pdf", 0, err, sizeof err));
    snprintf(dir, sizeof dir, "%s/pdf", tu_tmpdir());
    assert_file(dir, "roc", "pdf", 2048, "%PDF");
    snprintf(dir, sizeof dir, "%s/data", tu_tmpdir());
    free(render_into(results_with_attacks(), "data", "svg", 0, err, sizeof err));
    assert_file(dir, "fidelity", "svg", 2048, "<svg");
    free(render_into(results_with_attacks(), "gif", "gif", -1, err, sizeof err));
    assert_non_null(strstr(err, "png, pdf or svg"));
    free(render_into("/nonexistent/results.h5", "none", "png", -1, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/results.h5"));
}

/* Reads "name = number" from a generated .gp; fails when it is missing. */
static double gp_number(const char *gp, const char *name) {
    char key[80];
    snprintf(key, sizeof key, "\n%s = ", name);
    const char *p = strstr(gp, key);
    if (!p) fail_msg("no '%s = ' in the script", name);
    return strtod(p + strlen(key), NULL);
}

static char *slurp_out(const char *sub, const char *file) {
    char p[600];
    size_t n;
    snprintf(p, sizeof p, "%s/%s/%s", tu_tmpdir(), sub, file);
    char *b = slurp(p, &n);
    if (!b) fail_msg("cannot read %s", p);
    return b;
}

/* Every block of a .dat file drawn as a line has two or more distinct x values. */
static void assert_blocks_span_x(const char *sub, const char *file) {
    char p[600];
    double v[64][14];
    snprintf(p, sizeof p, "%s/%s/%s", tu_tmpdir(), sub, file);
    for (int b = 0; b < 16; b++) {
        int n = read_block(p, b, v, 64), distinct = 0;
        for (int i = 1; i < n; i++) distinct |= v[i][0] != v[0][0];
        if (n > 0 && !distinct) fail_msg("%s block %d: %d rows, one x value (%g)", p, b, n, v[0][0]);
    }
}

/* Lines only where a parameter is swept; the ROC is log-log with the diagonal y = x; the
 * score histogram spans the data's 1st-99th percentiles. */
static void test_figure_geometry(void **state) {
    char err[2048];
    free(render_into(results_with_attacks(), "geom", "png", 0, err, sizeof err));
    assert_blocks_span_x("geom", "robustness-prune.dat");
    assert_blocks_span_x("geom", "roc.dat");
    assert_blocks_span_x("geom", "roc-attacked.dat");
    char *gp = slurp_out("geom", "roc.gp");
    assert_non_null(strstr(gp, "\nset logscale x\n"));
    assert_non_null(strstr(gp, "\nset logscale y\n"));
    assert_non_null(strstr(gp, "set xrange [rate_min:1]\nset yrange [rate_min:1]"));   /* equal ranges: y = x is the diagonal */
    assert_non_null(strstr(gp, "x with lines dt 3 lc rgb \"#555555\" title \"chance (TPR = FPR)\""));
    assert_null(strstr(gp, "(\"0\""));                                                   /* no 0 tick on a log axis */
    free(gp);
    /* the summary draws points with intervals, never lines */
    gp = slurp_out("geom", "robustness.gp");
    const char *tmpl = strstr(gp, "---- template");
    assert_non_null(tmpl);
    assert_null(strstr(tmpl, "linespoints"));
    free(gp);
    /* score histogram: x range from the 1st to the 99th percentile of the panels' scores */
    gp = slurp_out("geom", "scores.gp");
    double xmin = gp_number(gp, "xmin"), xmax = gp_number(gp, "xmax");
    free(gp);
    char *dat = slurp_out("geom", "scores.dat"), job[128];
    int eval;
    assert_int_equal(sscanf(dat, "# %127s eval %d:", job, &eval), 2);
    free(dat);
    double *s = NULL;
    int N, m;
    assert_int_equal(store_read_scores(results_with_attacks(), job, eval, "loss", &s, &N, &m, err, sizeof err), 0);
    gsl_sort(s, 1, (size_t)(N * m));
    double p1 = gsl_stats_quantile_from_sorted_data(s, 1, (size_t)(N * m), 0.01);
    double p99 = gsl_stats_quantile_from_sorted_data(s, 1, (size_t)(N * m), 0.99);
    print_message("scores: x range [%g, %g], panel 1 percentiles 1st %g 99th %g, min %g max %g\n", xmin, xmax, p1, p99, s[0], s[N * m - 1]);
    assert_true(xmin <= p1 && xmax >= p99);
    assert_true(xmax - xmin < 1.5 * (p99 - p1));   /* a tail does not stretch the axis */
    free(s);
}

/* A file whose only attack has one setting: no curve figure, a point in the summary. */
static void test_single_setting(void **state) {
    char dir[300], shards[400], p[700], res[400], err[2048];
    snprintf(dir, sizeof dir, "%s/single", tu_tmpdir());
    snprintf(shards, sizeof shards, "%s/shards", dir);
    mkdir(dir, 0777); mkdir(shards, 0777);
    store_provenance prov = {.config = config_text, .settings = fixture_settings()};
    fixture *x = malloc(sizeof *x);
    for (int a = 0; a < 2; a++)
        for (int r = 0; r < 3; r++)
            for (int s = 1; s <= NSEED; s++) {
                fill_job(x, a, r, s, 1);
                x->job.n_evals = 2;   /* un-attacked and prune at one sparsity */
                snprintf(p, sizeof p, "%s/%s.h5", shards, x->job.id);
                assert_int_equal(store_write_shard(p, &x->job, &prov, err, sizeof err), 0);
            }
    free(x);
    snprintf(res, sizeof res, "%s/results.h5", dir);
    if (store_merge(shards, res, &prov, err, sizeof err)) fail_msg("merge: %s", err);
    char *log = render_into(res, "single-out", "png", 0, err, sizeof err);
    if (!strstr(log, "skipped robustness-prune: one setting")) fail_msg("log:\n%s", log);
    snprintf(p, sizeof p, "%s/single-out", tu_tmpdir());
    assert_file(p, "robustness", "png", 5 * 1024, "\x89PNG");
    snprintf(p, sizeof p, "%s/single-out/robustness-prune.dat", tu_tmpdir());
    assert_int_not_equal(access(p, F_OK), 0);
    double v[8][14];
    snprintf(p, sizeof p, "%s/single-out/robustness.dat", tu_tmpdir());
    assert_int_equal(read_block(p, 0, v, 8), 2);   /* un-attacked and prune, one row each */
    free(log);
}

/* A pool ablation file: owners and clean models, un-attacked, N in {4, 8} x m in {10, 20}
 * (x pool.repeat in {1, 2} when nrep = 2), two seeds; D_k's losses shrink with m so the
 * evidence grows along m. */
static void build_ablation(const char *dir, int nrep, char *out, size_t len) {
    char shards[400], p[700], err[512];
    snprintf(shards, sizeof shards, "%s/shards", dir);
    mkdir(dir, 0777); mkdir(shards, 0777);
    store_provenance prov = {.config = config_text, .settings = fixture_settings()};
    fixture *x = malloc(sizeof *x);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    const int Nv[2] = {4, 8}, mv[2] = {10, 20};
    for (int e = 0; e < nrep; e++)
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int r = 0; r < 2; r++)
                for (int s = 1; s <= 2; s++) {
                    fill_job(x, 0, r, s, 0);
                    store_job *j = &x->job;
                    int N = Nv[a], m = mv[b];
                    snprintf(j->id, sizeof j->id, "p%d%d%d-s%d-%s", e, a, b, s, roles[r]);
                    if (nrep > 1) snprintf(j->point, sizeof j->point, "pool.N=%d,pool.m=%d,pool.repeat=%d", N, m, e + 1);
                    else snprintf(j->point, sizeof j->point, "pool.N=%d,pool.m=%d", N, m);
                    j->point_index = 4 * e + 2 * a + b; j->N = N; j->m = m; j->secret_k = s % N;
                    double *sc = x->scores[0];
                    for (int i = 0; i < N; i++)
                        for (int q = 0; q < m; q++) {
                            double loss = gsl_ran_exponential(rng, 0.6) * (r == 0 && i == j->secret_k ? 0.5 - 0.01 * m : 1);
                            sc[i * m + q] = -loss;
                            sc[N * m + i * m + q] = exp(-loss);
                        }
                    for (int q = 0; q < 2; q++)
                        assert_int_equal(pmi_verify(sc + q * N * m, N, m, j->secret_k, 200, (uint64_t)s, &x->evals[0].res[q],
                                                    x->mean[0] + q * N, x->median[0] + q * N), 0);
                    snprintf(p, sizeof p, "%s/%s.h5", shards, j->id);
                    assert_int_equal(store_write_shard(p, j, &prov, err, sizeof err), 0);
                }
    gsl_rng_free(rng);
    free(x);
    snprintf(out, len, "%s/results.h5", dir);
    if (store_merge(shards, out, &prov, err, sizeof err)) fail_msg("merge: %s", err);
}

/* The ablation heatmaps: one grid of N x m cells per score kind, with the claimed rate and the
 * median -log10 p of the owners in each cell; skipped with the reason without a sweep (see
 * test_render_png). */
static void test_ablation_heatmap(void **state) {
    char dir[300], res[400], err[2048], out[400], p[600];
    snprintf(dir, sizeof dir, "%s/ablation", tu_tmpdir());
    build_ablation(dir, 1, res, sizeof res);
    char *log = render_into(res, "ablation-out", "png", 0, err, sizeof err);
    snprintf(out, sizeof out, "%s/ablation-out", tu_tmpdir());
    assert_file(out, "ablation", "png", 5 * 1024, "\x89PNG");
    if (!strstr(log, "skipped robustness: no attacked evaluations")) fail_msg("log:\n%s", log);
    snprintf(p, sizeof p, "%s/ablation.dat", out);
    store_row *rows = NULL;
    int64_t n = 0;
    assert_int_equal(store_read_summary(res, &rows, &n, err, sizeof err), 0);
    const char *kinds[2] = {"loss", "conf"};
    for (int k = 0; k < 2; k++) {
        double v[8][14];
        assert_int_equal(read_block(p, k, v, 8), 4);   /* 2 x 2 cells */
        for (int c = 0; c < 4; c++) {
            int claimed = 0, owners = 0;
            for (int64_t i = 0; i < n; i++)
                if (!strcmp(rows[i].role, "owner") && !strcmp(rows[i].score, kinds[k]) && rows[i].N == (int)v[c][2] &&
                    rows[i].m == (int)v[c][3]) { owners++; claimed += rows[i].p_perm < 0.01; }
            assert_int_equal(owners, 2);
            assert_int_equal((int)v[c][6], owners);
            assert_float_equal(v[c][4], (double)claimed / owners, 1e-9);
        }
    }
    free(rows);
    size_t len;
    char *gp = slurp_out("ablation-out", "ablation.gp");
    assert_non_null(strstr(gp, "nkinds = 2"));
    assert_non_null(strstr(gp, "with image"));
    free(gp);
    (void)len;
    free(log);
}

/* With another sweep axis (pool.repeat) the heatmaps come per score kind and value of that
 * axis, each cell holding only its own owners (2 seeds), not those of every repeat. */
static void test_ablation_panel_per_axis(void **state) {
    char dir[300], res[400], err[2048], p[600];
    snprintf(dir, sizeof dir, "%s/ablation-rep", tu_tmpdir());
    build_ablation(dir, 2, res, sizeof res);
    char *log = render_into(res, "ablation-rep-out", "png", 0, err, sizeof err);
    snprintf(p, sizeof p, "%s/ablation-rep-out/ablation.dat", tu_tmpdir());
    for (int k = 0; k < 4; k++) {
        double v[8][14];
        assert_int_equal(read_block(p, k, v, 8), 4);
        for (int c = 0; c < 4; c++) assert_int_equal((int)v[c][6], 2);
    }
    char *gp = slurp_out("ablation-rep-out", "ablation.gp");
    assert_non_null(strstr(gp, "nkinds = 4"));
    assert_non_null(strstr(gp, "\"loss, pool.repeat=2\""));
    assert_non_null(strstr(gp, "\"conf, pool.repeat=1\""));
    free(gp);
    free(log);
}

/* PNG width in pixels from its IHDR chunk; SVG width from its root element. */
static long png_width(const char *path) {
    size_t n;
    unsigned char *b = (unsigned char *)slurp(path, &n);
    assert_non_null(b);
    assert_true(n > 24);
    long w = (long)b[16] << 24 | (long)b[17] << 16 | (long)b[18] << 8 | b[19];
    free(b);
    return w;
}

/* --size column gives 3.5 in wide pictures (PNG 150 px/in, SVG 96 px/in, PDF in inches), page
 * 7 in; every format renders every figure. */
static void test_sizes_and_formats(void **state) {
    const char *fmts[] = {"png", "svg", "pdf"}, *magic[] = {"\x89PNG", "<svg", "%PDF"};
    char err[2048], sub[64], dir[400], p[600];
    for (int f = 0; f < 3; f++)
        for (int col = 0; col < 2; col++) {
            plot_params pp = plot_default_params();
            pp.format = fmts[f];
            pp.size = col ? "column" : "page";
            snprintf(sub, sizeof sub, "size-%s-%s", fmts[f], pp.size);
            snprintf(dir, sizeof dir, "%s/%s", tu_tmpdir(), sub);
            char *log = NULL;
            size_t n = 0;
            FILE *lf = open_memstream(&log, &n);
            int rc = plot_render_ex(results_with_attacks(), dir, &pp, lf, err, sizeof err);
            fclose(lf);
            if (rc) fail_msg("%s: %s\n%s", sub, err, log);
            free(log);
            for (size_t i = 0; i < sizeof all_figs / sizeof *all_figs; i++) {
                assert_file(dir, all_figs[i], fmts[f], 1024, magic[f]);
                snprintf(p, sizeof p, "%s.gp", all_figs[i]);
                char *gp = slurp_out(sub, p), want[64];
                snprintf(want, sizeof want, "# size: %s, %.2f in x ", pp.size, col ? 3.5 : 7.0);
                if (!strstr(gp, want)) fail_msg("%s/%s lacks '%s'", sub, p, want);
                if (f == 2) assert_non_null(strstr(gp, col ? "size 3.50in," : "size 7.00in,"));
                if (f == 2) assert_non_null(strstr(gp, col ? "font \"sans,8\"" : "font \"sans,9\""));
                free(gp);
                snprintf(p, sizeof p, "%s/%s.%s", dir, all_figs[i], fmts[f]);
                if (f == 0) assert_int_equal(png_width(p), col ? 525 : 1050);
                if (f == 1) {
                    size_t len;
                    char *svg = slurp(p, &len);
                    assert_non_null(strstr(svg, col ? "width=\"336\"" : "width=\"672\""));
                    free(svg);
                }
            }
        }
    plot_params bad = plot_default_params();
    bad.size = "poster";
    assert_int_equal(plot_render_ex(results_with_attacks(), "/tmp/unused", &bad, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "'poster'"));
}

/* ---- attainable ranges ---------------------------------------------------------------------
 * Every number a figure draws must be one its quantity can take: -log10 p_perm in
 * [0, log10(permutations + 1)], rates and accuracies in [0, 1], and the -log10 p axis must
 * not reach far above what can be drawn (data in the bottom fifth of a panel). Columns
 * (1-based) of each figure's .dat, by the figure's file name. */
typedef struct { const char *prefix; int lp[6], frac[10], seed_lp; } fig_columns;   /* seed_lp: in an "each seed" block */
static const fig_columns fig_cols[] = {
    {"robustness-", {4, 5, 6, 10}, {3, 7, 8, 9, 11, 12, 13}, 2},
    {"robustness.", {4, 5, 6, 10}, {3, 7, 8, 9, 11, 12}, 1},
    {"fidelity.", {0}, {1, 2, 3, 4, 5, 6, 7, 8}, 0},
    {"ablation.", {6}, {5}, 0},
    {"roc", {0}, {1, 2}, 0},
};

/* Checks every .dat and .gp of the figures in dir against cap (the largest -log10 p) and the
 * alpha line; returns the number of violations, each printed. */
static int check_ranges(const char *dir, double cap, double alpha) {
    char cmd[700], name[256], p[1000];
    snprintf(cmd, sizeof cmd, "ls '%s'", dir);
    FILE *ls = popen(cmd, "r");
    assert_non_null(ls);
    int bad = 0, files = 0;
    double axis_max = 1.1 * fmax(cap, -log10(alpha)) * (1 + 1e-5);   /* the files hold 6 digits */
    while (fgets(name, sizeof name, ls)) {
        name[strcspn(name, "\n")] = 0;
        size_t nl = strlen(name);
        snprintf(p, sizeof p, "%s/%s", dir, name);
        if (nl > 3 && !strcmp(name + nl - 3, ".gp")) {
            size_t n;
            char *gp = slurp(p, &n);
            const char *vars[] = {"\nytop = ", "\nxtop = ", "\nlptop = "};
            for (int i = 0; i < 3; i++) {
                const char *q = strstr(gp, vars[i]);
                double v = q ? strtod(q + strlen(vars[i]), NULL) : 0;
                if (v > axis_max) { print_message("%s: the -log10 p axis reaches %g, above %g\n", p, v, axis_max); bad++; }
            }
            free(gp);
            continue;
        }
        if (nl < 4 || strcmp(name + nl - 4, ".dat")) continue;
        const fig_columns *fc = NULL;
        for (size_t i = 0; i < sizeof fig_cols / sizeof *fig_cols && !fc; i++)
            if (!strncmp(name, fig_cols[i].prefix, strlen(fig_cols[i].prefix))) fc = &fig_cols[i];
        if (!fc) continue;
        files++;
        FILE *f = fopen(p, "r");
        assert_non_null(f);
        char line[1024];
        int seeds = 0;   /* in a block of single seeds: only their -log10 p column */
        for (int ln = 1; fgets(line, sizeof line, f); ln++) {
            if (line[0] == '#') { if (strstr(line, "each seed")) seeds = 1; continue; }
            if (line[0] == '\n') continue;
            double v[16];
            int nc = 0;
            for (char *q = line, *end; nc < 16; q = end, nc++) { v[nc] = strtod(q, &end); if (end == q) break; }
            if (seeds) {
                double x = fc->seed_lp && fc->seed_lp <= nc ? v[fc->seed_lp - 1] : NAN;
                if (!isnan(x) && (x < -1e-9 || x > cap * (1 + 1e-5))) { print_message("%s:%d: a seed's -log10 p = %g outside [0, %g]\n", p, ln, x, cap); bad++; }
                continue;
            }
            for (int k = 0; k < 6 && fc->lp[k]; k++) {
                double x = fc->lp[k] <= nc ? v[fc->lp[k] - 1] : NAN;
                if (!isnan(x) && (x < -1e-9 || x > cap * (1 + 1e-5))) { print_message("%s:%d column %d: -log10 p = %g outside [0, %g]\n", p, ln, fc->lp[k], x, cap); bad++; }
            }
            for (int k = 0; k < 10 && fc->frac[k]; k++) {
                double x = fc->frac[k] <= nc ? v[fc->frac[k] - 1] : NAN;
                if (!isnan(x) && (x < -1e-9 || x > 1 + 1e-9)) { print_message("%s:%d column %d: %g outside [0, 1]\n", p, ln, fc->frac[k], x); bad++; }
            }
        }
        fclose(f);
    }
    pclose(ls);
    if (!files) { print_message("%s: no figure data to check\n", dir); bad++; }
    return bad;
}

/* Renders the figures of a results file at both sizes and checks their ranges. */
static int check_file_ranges(const char *res, const char *sub) {
    char err[2048], dir[600];
    store_settings set;
    assert_int_equal(store_read_settings(res, &set, err, sizeof err), 0);
    double cap = log10(set.permutations + 1.0);
    int bad = 0;
    const char *sizes[] = {"page", "column"};
    for (int s = 0; s < 2; s++) {
        snprintf(dir, sizeof dir, "%s/%s-%s", tu_tmpdir(), sub, sizes[s]);
        plot_params pp = {.format = "svg", .size = sizes[s]};
        if (plot_render_ex(res, dir, &pp, NULL, err, sizeof err)) fail_msg("%s: %s", res, err);
        bad += check_ranges(dir, cap, set.alphas[0]);
    }
    return bad;
}

/* The fixture's figures (3 seeds, 200 permutations: a t-interval at 2 degrees of freedom would
 * reach far above log10(201)), the pool ablation's, and those of every results file of the small
 * reproduction present in results/small (make reproduce), stay inside the attainable ranges. */
static void test_attainable_ranges(void **state) {
    char dir[300], res[400], sub[64];
    int bad = check_file_ranges(results_with_attacks(), "range-fixture");
    snprintf(dir, sizeof dir, "%s/range-ablation", tu_tmpdir());
    build_ablation(dir, 1, res, sizeof res);
    bad += check_file_ranges(res, "range-ablation");
    FILE *ls = popen("ls results/small/*/results.h5 2>/dev/null", "r");
    assert_non_null(ls);
    int nrep = 0;
    while (fgets(res, sizeof res, ls)) {
        res[strcspn(res, "\n")] = 0;
        snprintf(sub, sizeof sub, "range-small-%d", nrep++);
        bad += check_file_ranges(res, sub);
    }
    pclose(ls);
    print_message("checked the figures of the fixture, a pool ablation and %d results file%s of results/small\n", nrep, nrep == 1 ? "" : "s");
    assert_int_equal(bad, 0);
}

/* store_read_evals / store_read_scores read back what store_write_shard wrote. */
static void test_store_readers(void **state) {
    const char *res = results_with_attacks();
    fixture *x = malloc(sizeof *x);
    fill_job(x, 1, 2, 2, 1);
    store_eval_info *ev = NULL;
    int n = 0, N = 0, m = 0;
    char err[512];
    assert_int_equal(store_read_evals(res, x->job.id, &ev, &n, err, sizeof err), 0);
    assert_int_equal(n, 1 + NSTR);
    assert_string_equal(ev[0].attack, "none");
    assert_true(isnan(ev[0].strength));
    assert_string_equal(ev[2].params, "sparsity=0.5,global=1");
    assert_string_equal(ev[0].strength_key, "");
    assert_string_equal(ev[2].strength_key, "sparsity");
    assert_float_equal(ev[3].strength, 0.8, 0);
    assert_float_equal(ev[3].test_acc, x->evals[3].test_acc, 0);
    free(ev);
    double *s = NULL;
    assert_int_equal(store_read_scores(res, x->job.id, 2, "conf", &s, &N, &m, err, sizeof err), 0);
    assert_int_equal(N, PN);
    assert_int_equal(m, PM);
    assert_memory_equal(s, x->scores[2] + PN * PM, sizeof(double) * PN * PM);
    free(s);
    assert_int_equal(store_read_scores(res, x->job.id, 9, "conf", &s, &N, &m, err, sizeof err), -1);
    assert_null(s);
    assert_non_null(strstr(err, "evals/9/conf/sample_scores"));
    assert_int_equal(store_read_evals(res, "no-such-job", &ev, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "/jobs/no-such-job/evals"));
    free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_png),
        cmocka_unit_test(test_scripts_rerun_elsewhere),
        cmocka_unit_test(test_data_match_fixture),
        cmocka_unit_test(test_no_attacks),
        cmocka_unit_test(test_gnuplot_missing),
        cmocka_unit_test(test_gnuplot_fails),
        cmocka_unit_test(test_pdf_and_bad_format),
        cmocka_unit_test(test_store_readers),
        cmocka_unit_test(test_figure_geometry),
        cmocka_unit_test(test_single_setting),
        cmocka_unit_test(test_sizes_and_formats),
        cmocka_unit_test(test_ablation_heatmap),
        cmocka_unit_test(test_ablation_panel_per_axis),
        cmocka_unit_test(test_attainable_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
