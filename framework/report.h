/* report: the paper-style tables, computed from a merged results file's /summary alone.
 *
 * Tables (named models, settings, calibration, fidelity):
 *   1. models: one row per model and evaluation (seed, role, arch, sweep point, attack, params,
 *      k, identified, p-values, accuracy);
 *   2. settings: per sweep point and attack setting, over seeds: owner test accuracy (mean and
 *      95% CI), identification rate, ownership claim rate at each alpha on the decision p-value,
 *      median p-values (of the claimed k, and the N-way Holm-corrected one for a verifier who
 *      does not trust the claimed k), false-positive rate of independent models, AUC and TPR at 1% FPR of
 *      owner against independent models on -log10 p;
 *   3. calibration and power: for un-attacked independent models, the fraction with p < alpha
 *      for every p-value kind, with the binomial 95% upper bound expected under a calibrated
 *      test; against owner models, AUC, TPR at 1% FPR and the threshold calibrated on the
 *      independent models at the first alpha;
 *   4. fidelity: owner minus clean test accuracy, paired by seed, mean and 95% CI.
 * Independent models are the rows with independent = 1. Only the rows of one score kind are
 * shown: options.score, by default the file's decision kind (the first of score_kinds); the
 * decision p-value is options.decide, by default the file's decide. Both are read with
 * store_read_settings().
 *
 * Intervals (all 95%):
 *   - rates (identification, claim, false-positive) are k successes of n: the Wilson score
 *     interval, which stays inside [0, 1] and is sensible at k = 0 and k = n;
 *   - mean accuracies: Student-t interval (pmi_mean_ci95) clipped to [0, 1]; the fidelity gap
 *     (a difference) is not clipped. With one value the interval is empty (NaN).
 *
 * Formats:
 *   - md (default): one Markdown table each, to `out`; an interval reads "0.8015 [0.7900, 0.8130]".
 *   - latex: each table with \caption and \label{tab:<experiment>-<name>} (<experiment>: the
 *     results file's folder name, so that the tables of several experiments in one document
 *     never share a label), booktabs rules (\toprule \midrule \bottomrule): a table float
 *     scaled down to \linewidth if wider, or past REPORT_LATEX_LONG rows a longtable that
 *     breaks across pages and repeats its header. Needs \usepackage{booktabs,graphicx,longtable}.
 *   - csv: tidy files <dir>/models.csv, settings.csv, calibration.csv, fidelity.csv (dir and its
 *     parents are created if missing; `out` is unused). One header row; one row per record, and
 *     per alpha where a table has per-alpha quantities (an `alpha` column; settings,
 *     calibration). Without options.score every score kind of the file is in the one table, the
 *     `score` column telling them apart. Plain numbers (the shortest of %.15g, %.16g, %.17g that
 *     reads back exactly), an empty cell for a missing value, strings with a comma quoted. An
 *     interval X is X_mean, X_ci_low, X_ci_high; a rate X is X_k, X_n, X_rate, X_ci_low,
 *     X_ci_high. The settings and models files carry `score`, settings also `decision`.
 *   - json: one object to `out`: {"file", "decision", "score_kinds": [...], "partial" (a partial
 *     merge's note, when there is one), "tables": {"<name>": {"caption", "columns": [...],
 *     "rows": [{"<column>": value, ...}]}}}: the csv's columns and values (every score kind
 *     without options.score), a missing number null. */
#ifndef PMI_REPORT_H
#define PMI_REPORT_H
#include <stddef.h>
#include <stdio.h>

typedef enum { REPORT_MD = 0, REPORT_CSV, REPORT_LATEX, REPORT_JSON } report_format;

/* LaTeX: a table of more rows is a longtable, broken across pages. */
#define REPORT_LATEX_LONG 40

typedef enum {
    REPORT_OK = 0,
    REPORT_ERR_FILE = -1,          /* unreadable file, other schema, no decision settings, I/O */
    REPORT_ERR_USAGE = -2,         /* unknown score kind or p-value, csv without a folder */
} report_status;

typedef struct {
    report_format format;
    const char *score;             /* score kind name; NULL: the file's decision kind */
    const char *decide;            /* rank | perm | welch | mw; NULL: the file's decide */
    const char *dir;               /* REPORT_CSV only: the folder for the four files */
} report_options;

report_options report_default_options(void);               /* md, file's score and decision */
int report_format_parse(const char *s, report_format *f);   /* 0, or -1 if unknown */
/* Writes all tables of `path` as `o` says. Returns REPORT_OK, or a report_status with err
 * (naming the file, or the available score kinds / p-values, or the missing folder). */
int report_write(const char *path, const report_options *o, FILE *out, char *err, size_t errlen);
/* Stores the four tables of `path` (with o's score and decision; format and dir unused) in
 * the file itself, as /report/<table>/<column> (store_write_tables(): the csv columns, same
 * names and values, missing numbers NAN, a missing replica -1), with the attributes score,
 * decision and written (ISO 8601 UTC) on /report; an older /report is replaced. Returns
 * REPORT_OK, or a report_status with err (the file is then unchanged). */
int report_store(const char *path, const report_options *o, char *err, size_t errlen);
/* report_write() with the file's score and decision in format fmt (not csv, which needs a folder). */
int report_print(const char *path, report_format fmt, FILE *out, char *err, size_t errlen);

#endif
