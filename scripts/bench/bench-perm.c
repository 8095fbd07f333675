/* bench-perm: the cost of a job's permutation tests, before and after they shared one set of
 * random subsets (make bench-perm; not a test). T score vectors of one pool (N, m), R resamples:
 *   old      the one-vector test as pmi.c had it until pmi_perm_batch (tests/perm_reference.h): every
 *            vector its own rng stream over a shuffled copy of its scores, sorted means;
 *            vectors in parallel over the OpenMP threads, as eval.c ran the kinds;
 *   alone    pmi_perm_batch with T = 1 per vector, its own seed (the new code, old streams);
 *   batch    one pmi_perm_batch over all T vectors: one stream, chunks shared by the tests.
 * Each at 1 and 2 OpenMP threads. Usage: build/bench-perm [T N m R] (default 126 10 50 99999). */
#include "pmi.h"
#include "../tests/perm_reference.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    int T = argc > 1 ? atoi(argv[1]) : 126, N = argc > 2 ? atoi(argv[2]) : 10, m = argc > 3 ? atoi(argv[3]) : 50;
    int R = argc > 4 ? atoi(argv[4]) : 99999, k = 0;
    if (T < 1 || N < 2 || m < 1 || R < 1) { fprintf(stderr, "usage: bench-perm [T N m R]\n"); return 2; }
    size_t nm = (size_t)N * m;
    double *s = malloc(sizeof *s * nm * T), *p = malloc(sizeof *p * (size_t)T * N), *z = malloc(sizeof *z * T);
    double *pb = malloc(sizeof *pb * (size_t)T * N), *zb = malloc(sizeof *zb * T);
    const double **sv = malloc(sizeof *sv * T);
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    for (size_t i = 0; i < nm * T; i++) s[i] = gsl_ran_gaussian(g, 1);
    gsl_rng_free(g);
    for (int t = 0; t < T; t++) sv[t] = s + nm * t;
    printf("T = %d tests, N = %d, m = %d, R = %d resamples\n", T, N, m, R);
    printf("%-6s %7s %9s %12s\n", "code", "threads", "wall s", "ms per test");
    for (int th = 1; th <= 2; th++) {
        omp_set_num_threads(th);
        double t0 = now_s();
        #pragma omp parallel for schedule(dynamic)
        for (int t = 0; t < T; t++) ref_perm(sv[t], N, m, k, R, (uint64_t)t + 1, p + (size_t)t * N, &z[t]);
        double t1 = now_s();
        #pragma omp parallel for schedule(dynamic)
        for (int t = 0; t < T; t++) pmi_perm_batch(&sv[t], 1, N, m, k, R, (uint64_t)t + 1, pb + (size_t)t * N, &zb[t]);
        double t2 = now_s();
        int same = memcmp(p, pb, sizeof *p * (size_t)T * N) == 0;
        if (pmi_perm_batch(sv, T, N, m, k, R, 1, pb, zb)) { fprintf(stderr, "bench-perm: %s\n", pmi_error()); return 1; }
        double t3 = now_s();
        printf("%-6s %7d %9.3f %12.2f\n", "old", th, t1 - t0, 1e3 * (t1 - t0) / T);
        printf("%-6s %7d %9.3f %12.2f   (p identical to old: %s)\n", "alone", th, t2 - t1, 1e3 * (t2 - t1) / T, same ? "yes" : "NO");
        printf("%-6s %7d %9.3f %12.2f\n", "batch", th, t3 - t2, 1e3 * (t3 - t2) / T);
    }
    free(s); free(p); free(z); free(pb); free(zb); free(sv);
    return 0;
}
