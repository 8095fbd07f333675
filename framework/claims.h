/* claims: one verdict per claim of the paper, from merged results files, and the
 * reproduction report (REPORT.md) that shows them with the tables and figures.
 *
 * The claims (DESIGN.md section 1) and where their numbers come from, on the decision score
 * (the file's first score kind), the decision p-value (root attribute decide) and the file's
 * first alpha:
 *   C1 lossless   owner minus clean test accuracy, paired by seed (un-attacked), mean and
 *                 Student-t 95% interval: from the first file without attacks or sweep;
 *   C2 effective  owner models claimed (decision p < alpha), Wilson 95% interval: same file;
 *   C3 unique     independent models claimed (false positives), Wilson 95% interval and a
 *                 one-sided binomial test against alpha: same file;
 *   C4 robust     per attack family (attack type), the least-claimed attack setting among
 *                 those that keep the model useful: from every file with attacks;
 *   C5 pool size  per pool size (N, m), owner models claimed: from the first file whose
 *                 rows have more than one (N, m).
 * A claim without such a file is "not run". The rule of each verdict is claims_rules[]
 * (printed in the report's footer; docs/claims.md has the same text). */
#ifndef PMI_CLAIMS_H
#define PMI_CLAIMS_H
#include <stddef.h>

typedef enum {
    CLAIM_HOLDS = 0,
    CLAIM_PARTIAL,
    CLAIM_FAILS,            /* "does not hold at this scale" */
    CLAIM_NOT_RUN,          /* no results file holds the experiment */
    CLAIM_NOT_TESTED,       /* C4: every setting of the family cost the model its usefulness */
} claim_verdict;

#define CLAIMS_LOSS_MARGIN 0.01     /* C1: the accuracy loss that still counts as lossless */
#define CLAIMS_MAJORITY 0.5         /* C2, C4, C5: the claim rate the Wilson lower bound must reach */
#define CLAIMS_FPR_FACTOR 2.0       /* C3: the Wilson upper bound of the FPR must be <= this x alpha */
#define CLAIMS_UTILITY_DROP 0.10    /* C4: a setting costing more accuracy than this is not a theft */

typedef struct {
    char claim[96];          /* "C1 lossless", "C4 robust: prune" */
    char measured[512];      /* the number in words ("claimed 2/2 at alpha 0.01, ...") */
    double value, lo, hi;    /* the number and its 95% interval; NAN when there is none */
    char setting[1024];      /* where it was measured */
    char source[256];        /* the results file */
    claim_verdict verdict;
} claim_row;

/* The verdict rules, one line per claim, in claim order. */
extern const char *const claims_rules[];
extern const int claims_n_rules;

/* "holds", "partial", "does not hold at this scale", "not run", "not tested". */
const char *claims_verdict_name(claim_verdict v);

/* Evaluates every claim from the results files paths[0..n) (each readable by store_open).
 * *rows gets a malloc'd array of *nrows rows: C1, C2, C3, one C4 row per attack family (or
 * one "not run" row), C5. Returns 0, or -1 with err naming the file that cannot be read. */
int claims_evaluate(const char *const *paths, int n, claim_row **rows, int *nrows, char *err, size_t errlen);

/* Writes the reproduction report to out_path (outfile.h: a temporary file renamed): the
 * machine and provenance of every file, the claims table with verdicts, each file's tables
 * (report_write, Markdown), the figures found in <plots_dir>/<experiment>/ (*.png, linked
 * relative to out_path's folder; plots_dir may be NULL: no figures) and the verdict rules.
 * <experiment> is the name of the folder that holds each results file. Returns 0, or -1
 * with err. */
int claims_write_report(const char *const *paths, int n, const char *plots_dir, const char *out_path,
                        char *err, size_t errlen);

#endif
