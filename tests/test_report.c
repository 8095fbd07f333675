/* test_report: `pmi report`'s tables from the small fixed results file of fixture.h, in all
 * three formats: row counts, identification, the false-positive rates, the calibration bound
 * and the fidelity gap (owner = clean + 0.002 for every pair, by construction). */
#include "testutil.h"
#include "fixture.h"
#include "report.h"

static char results[400];

static int setup(void **state) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/rep", tu_tmpdir());
    build_results(dir, 1, results, sizeof results);
    return 0;
}

static char *render(report_format fmt) {
    static char buf[1 << 17];
    char err[512];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    assert_non_null(f);
    if (report_print(results, fmt, f, err, sizeof err)) fail_msg("report: %s", err);
    fclose(f);
    return buf;
}

static int count_lines_with(const char *text, const char *a, const char *b) {
    int n = 0;
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char line[2048];
        snprintf(line, sizeof line, "%.*s", (int)(len < 2047 ? len : 2047), l);
        n += strstr(line, a) && (!b || strstr(line, b));
    }
    return n;
}

/* One row per model and evaluation: 2 archs x 3 roles x 3 seeds x (1 + 3 attacks). */
static void test_models_table(void **state) {
    char *md = render(REPORT_MD);
    *strstr(md, "### Settings") = 0;   /* the models table only */
    assert_int_equal(count_lines_with(md, "| prune ", "sparsity="), 2 * 3 * 3 * 3);
    assert_int_equal(count_lines_with(md, "| none | - |", NULL), 2 * 3 * 3);
}

/* Settings: 6 owners per setting, all identified un-attacked; 6 independent models. */
static void test_settings_table(void **state) {
    char *md = render(REPORT_MD);
    const char *l = strstr(md, "### Settings");
    assert_non_null(l);
    assert_non_null(strstr(l, "| - | none | - | 6 |"));
    assert_non_null(strstr(l, "| 6/6 |"));
    assert_non_null(strstr(l, "median N-way p_perm (Holm)"));
    assert_int_equal(count_lines_with(l, "| prune | sparsity=", NULL) >= 3, 1);
}

/* Fidelity: the gap is +0.0020 for both architectures, with a zero-width interval. */
static void test_fidelity_gap(void **state) {
    char *md = render(REPORT_MD);
    const char *l = strstr(md, "### Fidelity");
    assert_non_null(l);
    assert_int_equal(count_lines_with(l, "| 3 |", "0.0020 ± 0.0000"), 2);
}

/* Calibration: every p-value kind has a row with the 6 un-attacked independent models. */
static void test_calibration(void **state) {
    char *md = render(REPORT_MD);
    const char *l = strstr(md, "### Calibration");
    assert_non_null(l);
    assert_non_null(strstr(l, "| perm (decision) | 6 |"));
    assert_non_null(strstr(l, "| welch | 6 |"));
}

static void test_csv_and_latex(void **state) {
    char *csv = render(REPORT_CSV);
    assert_non_null(strstr(csv, "seed,role,arch,attack,params,k,identified,p_rank,p_perm,p_welch,p_mw,test_acc"));
    char *tex = render(REPORT_LATEX);
    assert_non_null(strstr(tex, "\\begin{tabular}"));
    assert_non_null(strstr(tex, "p\\_perm"));
    report_format f;
    assert_int_equal(report_format_parse("html", &f), -1);
}

/* The independent models are the rows with independent = 1, whatever their role is called, and a
 * file without decision settings is refused with a message naming the file and the attribute. */
static void test_flags_and_settings(void **state) {
    char dir[300], shards[340], p[400], out[400], err[512];
    snprintf(dir, sizeof dir, "%s/flags", tu_tmpdir());
    snprintf(shards, sizeof shards, "%s/shards", dir);
    mkdir(dir, 0777); mkdir(shards, 0777);
    store_provenance prov = {.config = config_text, .settings = fixture_settings()};
    fixture *x = malloc(sizeof *x);
    for (int r = 0; r < 3; r++)
        for (int s = 1; s <= NSEED; s++) {
            fill_job(x, 0, r, s, 0);
            if (r == 2) snprintf(x->job.role, sizeof x->job.role, "other-data");   /* no "indep" prefix */
            snprintf(p, sizeof p, "%s/%s.h5", shards, x->job.id);
            assert_int_equal(store_write_shard(p, &x->job, &prov, err, sizeof err), 0);
        }
    snprintf(out, sizeof out, "%s/results.h5", dir);
    if (store_merge(shards, out, &prov, err, sizeof err)) fail_msg("merge: %s", err);
    char shared[sizeof results];
    snprintf(shared, sizeof shared, "%s", results);
    snprintf(results, sizeof results, "%s", out);
    char *md = render(REPORT_MD);
    snprintf(results, sizeof results, "%s", shared);
    assert_non_null(strstr(md, "| perm (decision) | 3 |"));     /* 3 independent models */
    assert_int_equal(count_lines_with(md, "| other-data#0 |", NULL), 3);
    /* the same shards, written without settings */
    memset(&prov.settings, 0, sizeof prov.settings);
    snprintf(p, sizeof p, "%s/bare.h5", dir);
    assert_int_equal(store_write_shard(p, &x->job, &prov, err, sizeof err), 0);
    FILE *f = fopen("/dev/null", "w");
    assert_int_equal(report_print(p, REPORT_MD, f, err, sizeof err), -1);
    fclose(f);
    assert_non_null(strstr(err, "bare.h5"));
    assert_non_null(strstr(err, "decide"));
    free(x);
}

static void test_missing_file(void **state) {
    char err[512];
    FILE *f = fopen("/dev/null", "w");
    assert_int_equal(report_print("/nonexistent/results.h5", REPORT_MD, f, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/results.h5"));
    fclose(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models_table),
        cmocka_unit_test(test_settings_table),
        cmocka_unit_test(test_fidelity_gap),
        cmocka_unit_test(test_calibration),
        cmocka_unit_test(test_csv_and_latex),
        cmocka_unit_test(test_flags_and_settings),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests_name("report", tests, setup, NULL);
}
