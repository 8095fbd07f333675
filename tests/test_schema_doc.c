/* test_schema_doc: the Python example of docs/results-schema.md runs verbatim.
 *
 * A results file shaped like `make reproduce`'s (job p0-s1-owner, owner / clean / independent
 * models, an attack with a swept parameter, the decision settings) is written through the
 * store API. The ```python block of the document is taken as it stands, only its file path
 * replaced, and run with Debian's /usr/bin/python3: it must exit 0, and its first printed
 * line (secret k, identified, decision p-value, mean decision score of D_k) must equal what
 * the C readers give. Run from the repository root (make test does). */
#include "testutil.h"
#include "fixture.h"

#define DOC "docs/results-schema.md"
#define DOC_PATH "results/small/fingerprint/results.h5"   /* the path the example names */

static const char *const doc_roles[3] = {"owner", "clean", "indep-data"};

/* Writes the fixture's jobs of arch 0 under make reproduce's ids (p0-s<seed>-<role>) and
 * merges them into <tmp>/doc/results.h5. */
static void build_doc_results(char *out, size_t len) {
    char dir[300], shards[340], p[400], err[512];
    snprintf(dir, sizeof dir, "%s/doc", tu_tmpdir());
    snprintf(shards, sizeof shards, "%s/shards", dir);
    mkdir(dir, 0777); mkdir(shards, 0777);
    store_provenance prov = {.config = config_text, .settings = fixture_settings()};
    fixture *x = malloc(sizeof *x);
    for (int r = 0; r < 3; r++)
        for (int s = 1; s <= NSEED; s++) {
            fill_job(x, 0, r, s, 1);
            snprintf(x->job.id, sizeof x->job.id, "p0-s%d-%s%s", s, doc_roles[r], r == 2 ? "-r0" : "");
            snprintf(p, sizeof p, "%s/%s.h5", shards, x->job.id);
            assert_int_equal(store_write_shard(p, &x->job, &prov, err, sizeof err), 0);
        }
    free(x);
    snprintf(out, len, "%s/results.h5", dir);
    if (store_merge(shards, out, &prov, err, sizeof err)) fail_msg("merge: %s", err);
}

/* The document's ```python block (malloc'd), with every DOC_PATH replaced by path. */
static char *doc_example(const char *path) {
    FILE *f = fopen(DOC, "r");
    if (!f) fail_msg("cannot read %s (run from the repository root)", DOC);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    assert_true(n < sizeof text - 1);
    text[n] = 0;
    const char *start = strstr(text, "```python\n");
    assert_non_null(start);
    start += strlen("```python\n");
    assert_null(strstr(start, "```python\n"));           /* one example, so none goes untested */
    const char *end = strstr(start, "\n```");
    assert_non_null(end);
    size_t cap = (size_t)(end - start) * 2 + strlen(path) * 8 + 2, k = 0;
    char *out = malloc(cap);
    int found = 0;
    for (const char *c = start; c <= end;) {
        if (!strncmp(c, DOC_PATH, strlen(DOC_PATH))) {
            assert_true(k + strlen(path) < cap);
            k += (size_t)sprintf(out + k, "%s", path);
            c += strlen(DOC_PATH);
            found++;
        } else {
            assert_true(k + 1 < cap);
            out[k++] = *c++;
        }
    }
    out[k] = 0;
    assert_int_equal(found, 1);
    return out;
}

static void test_python_example_runs(void **state) {
    char res[400], err[512];
    build_doc_results(res, sizeof res);
    char *script = doc_example(res);
    static char out[1 << 16];
    int rc = tu_python(script, NULL, out, sizeof out);
    if (rc != 0) fail_msg("the example of %s exited with %d:\n%s\n---\n%s", DOC, rc, out, script);
    free(script);
    /* the first line, from the C readers */
    store_settings set;
    store_row *rows = NULL;
    int64_t n = 0;
    assert_int_equal(store_read_settings(res, &set, err, sizeof err), 0);
    assert_int_equal(store_read_summary(res, &rows, &n, err, sizeof err), 0);
    const char *score = pmi_score_name((pmi_score_kind)set.kinds[0]);
    const store_row *r = NULL;
    for (int64_t i = 0; i < n && !r; i++)
        if (!strcmp(rows[i].job_id, "p0-s1-owner") && !strcmp(rows[i].attack, "none") && !strcmp(rows[i].score, score))
            r = &rows[i];
    assert_non_null(r);
    double *s = NULL, mean = 0;
    int N = 0, m = 0;
    assert_int_equal(store_read_scores(res, "p0-s1-owner", 0, score, &s, &N, &m, err, sizeof err), 0);
    for (int j = 0; j < m; j++) mean += s[r->secret_k * m + j] / m;
    free(s);
    int k = -1, ident = -2;
    double p = NAN, got_mean = NAN;
    if (sscanf(out, "%d %d %lf %lf", &k, &ident, &p, &got_mean) != 4) fail_msg("unexpected first line:\n%s", out);
    assert_int_equal(k, r->secret_k);
    assert_int_equal(ident, r->identified);
    assert_float_equal(p, store_row_p(r, pmi_pvalue_parse(set.decide)), 1e-12 * fmax(1, p));
    assert_float_equal(got_mean, mean, 1e-12 * fmax(1, fabs(mean)));
    /* the other two outputs: the owners' table names the swept parameter, and the
     * false-positive rate line is there */
    assert_non_null(strstr(out, "sparsity"));
    assert_non_null(strstr(out, "false-positive rate at alpha 0.01"));
    free(rows);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_example_runs),
    };
    return cmocka_run_group_tests_name("schema_doc", tests, NULL, NULL);
}
