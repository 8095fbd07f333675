/* perm_reference: the one-vector permutation test as framework/pmi.c had it before
 * pmi_perm_batch, kept as the reference the batch must reproduce (tests/test_pmi.c) and as the
 * "old" side of scripts/bench/bench-perm.c. Header-only (one static function). */
#ifndef PMI_PERM_REFERENCE_H
#define PMI_PERM_REFERENCE_H
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>

/* The one-vector permutation test as pmi.c had it before the batch (shuffling a copy of the
 * scores themselves, the means sorted, each p by binary search, z two-pass with GSL): the
 * reference the batch must reproduce. p (N) gets every mini-dataset's p-value. */
static void ref_perm(const double *scores, int N, int m, int k, int R, uint64_t seed, double *p, double *z) {
    size_t total = (size_t)N * m;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    double *pool = malloc(total * sizeof *pool), *means = malloc((size_t)R * sizeof *means), mx = 0;
    gsl_rng_set(rng, (unsigned long)seed);
    memcpy(pool, scores, total * sizeof *pool);
    for (int t = 0; t < R; t++) {
        double s = 0;
        for (int j = 0; j < m; j++) {
            size_t u = (size_t)j + gsl_rng_uniform_int(rng, total - (size_t)j);
            double tmp = pool[j];
            pool[j] = pool[u];
            pool[u] = tmp;
            s += pool[j];
        }
        means[t] = s / m;
    }
    gsl_sort(means, 1, (size_t)R);
    for (size_t i = 0; i < total; i++) mx = fmax(mx, fabs(scores[i]));
    double tol = 4.0 * m * DBL_EPSILON * mx;
    for (int i = 0; i < N; i++) {
        double obs = gsl_stats_mean(scores + (size_t)i * m, 1, (size_t)m);
        int lo = 0, hi = R;
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;
            if (means[mid] >= obs - tol) hi = mid; else lo = mid + 1;
        }
        p[i] = (1.0 + (R - lo)) / (1.0 + R);
    }
    double mu = gsl_stats_mean(means, 1, (size_t)R), sd = gsl_stats_sd_m(means, 1, (size_t)R, mu);
    *z = sd > 0 ? (gsl_stats_mean(scores + (size_t)k * m, 1, (size_t)m) - mu) / sd : NAN;
    free(pool); free(means);
    gsl_rng_free(rng);
}

#endif
