/* test_probe: probe_results_file() and probe_results_files() (probe.h) on three results files: a good one (the fixture
 * of fixture.h) passes; one that makes libhdf5 1.10 crash (SIGSEGV in H5HG_read, found by
 * make fuzz-results) is refused with the signal named, and this process goes on; one that
 * makes libhdf5 loop forever is refused after the limit given (2 s), not waited for. */
#include "testutil.h"
#include "fixture.h"
#include "probe.h"
#include <time.h>

#define REGRESS "tests/fuzz/regress-results/"

static void test_good_file(void **state) {
    char dir[300], res[400], err[512];
    snprintf(dir, sizeof dir, "%s/good", tu_tmpdir());
    build_results(dir, 1, res, sizeof res);
    assert_int_equal(probe_results_file(res, 0, err, sizeof err), PROBE_OK);
}

static void test_crash_contained(void **state) {
    char err[512];
    assert_int_equal(probe_results_file(REGRESS "crash-hg-read-config.h5", 0, err, sizeof err), PROBE_CRASHED);
    assert_string_equal(err, REGRESS "crash-hg-read-config.h5: not a readable pmi results file (libhdf5 crashed reading it: signal 11)");
}

static void test_hang_limited(void **state) {
    char err[512];
    time_t t0 = time(NULL);
    assert_int_equal(probe_results_file(REGRESS "hang-hg-read-attr.h5", 2, err, sizeof err), PROBE_CRASHED);
    assert_true(time(NULL) - t0 <= 10);
    assert_non_null(strstr(err, "hang-hg-read-attr.h5: not a readable pmi results file (libhdf5 did not finish reading it within 2 s)"));
}

/* probe_results_files: every file at once; the first refused in the list's order is named
 * (the good file between two others, the crashing one first and last). */
static void test_many_files(void **state) {
    char dir[300], res[400], err[512];
    snprintf(dir, sizeof dir, "%s/many", tu_tmpdir());
    build_results(dir, 1, res, sizeof res);
    const char *good[] = {res, res, res};
    assert_int_equal(probe_results_files(good, 3, err, sizeof err), PROBE_OK);
    const char *mixed[] = {res, REGRESS "crash-hg-read-config.h5", res};
    assert_int_equal(probe_results_files(mixed, 3, err, sizeof err), PROBE_CRASHED);
    assert_string_equal(err, REGRESS "crash-hg-read-config.h5: not a readable pmi results file (libhdf5 crashed reading it: signal 11)");
    const char *missing[] = {res, "/nonexistent/x.h5", REGRESS "crash-hg-read-config.h5"};
    assert_int_equal(probe_results_files(missing, 3, err, sizeof err), PROBE_CRASHED);
    assert_non_null(strstr(err, "crash-hg-read-config.h5: not a readable"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file),
        cmocka_unit_test(test_crash_contained),
        cmocka_unit_test(test_hang_limited),
        cmocka_unit_test(test_many_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
