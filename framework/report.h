/* report: the paper-style tables, computed from a merged results file's /summary alone.
 *
 * Tables (each in Markdown, CSV or LaTeX):
 *   1. models: one row per model and evaluation (seed, role, attack, k, identified, p-values, accuracy);
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
 * Alphas, the decision p-value and the decision score kind (the first of score_kinds) are the
 * file's decision settings, read with store_read_settings(); independent models are the rows
 * with independent = 1. Rows of other score kinds are not shown. */
#ifndef PMI_REPORT_H
#define PMI_REPORT_H
#include <stddef.h>
#include <stdio.h>

typedef enum { REPORT_MD = 0, REPORT_CSV, REPORT_LATEX } report_format;

int report_format_parse(const char *s, report_format *f);   /* 0, or -1 if unknown */
/* Prints all tables of `path`. Returns 0, or -1 with err (unreadable file, other schema, no
 * decision settings). */
int report_print(const char *path, report_format fmt, FILE *out, char *err, size_t errlen);

#endif
